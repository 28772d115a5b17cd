/**
 * The pre-flight reads what each templated string of a playbook refers to (engine/template-refs.ts).
 * For the shipped playbooks the build has read it already, from the same parse that precompiled the
 * text (render/precompile-build.ts): a run of them does not load Handlebars' parser and compiler for
 * the pre-flight. Its own file: whether the compiler is loaded is per test file. Needs `npm run build`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { templateRefs } from '../../src/engine/template-refs.js';
import type { HbNode } from '../../src/render/ast.js';
import { compilerLoaded, handlebarsCompiler } from '../../src/render/handlebars-lib.js';
import { shippedTexts } from '../../src/render/precompile-build.js';
import { PRECOMPILED_DIR, precompiledFileName, textKey } from '../../src/render/precompiled.js';
import { refsOfTree } from '../../src/render/template-refs.js';

describe("a shipped playbook's templated strings", () => {
  it('have their references from the build, as a parse finds them, without loading the compiler', () => {
    const texts = shippedTexts(PACKAGE_ROOT).filter((t) => existsSync(join(PRECOMPILED_DIR, precompiledFileName(textKey(t)))));
    expect(texts.length).toBeGreaterThan(100);
    const fromBuild = texts.map((t) => templateRefs(t));
    expect(compilerLoaded()).toBe(false);
    const parsed = texts.map((t) => refsOfTree(handlebarsCompiler().parse(t) as unknown as HbNode));
    expect(fromBuild).toEqual(parsed);
    // A text the build never saw (a user's own playbook) is parsed, as before.
    expect(templateRefs('{{params.mine}} {{get "registered.x"}}').params).toEqual(new Set(['mine']));
  });
});
