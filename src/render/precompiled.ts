/**
 * Templates compiled by the build: every shipped template file and every templated string of the
 * shipped playbooks, as Handlebars template specs, one generated CommonJS module per text
 * (dist/precompiled/handlebars/<hash>.cjs, written by precompile-build.ts): a run loads only the texts
 * it renders. A text is found by the hash of its content, so an edited template or a user's own
 * playbook finds nothing and is compiled as before.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../core/paths.js';
import { requireExact } from '../core/require-exact.js';
import type { HbPath } from './ast.js';
import { handlebarsRuntime, type TemplateSpec } from './handlebars-lib.js';
import { REF_KINDS, type TemplateRefs, type TemplateRefsJson } from './template-refs.js';

/** Written by `npm run build`; only ever in dist/, never committed. */
export const PRECOMPILED_DIR = join(PACKAGE_ROOT, 'dist', 'precompiled', 'handlebars');

export interface PrecompiledText {
  spec: TemplateSpec;
  /** checks.singlePath of the text's tree, decided at build time. */
  single: HbPath | null;
}

/** What a generated module exports. */
export interface PrecompiledModule extends PrecompiledText {
  /** The Handlebars version that compiled the spec. */
  handlebars: string;
  /** What the text reads (template-refs.ts), from the same parse: the pre-flight's answer without the parser. */
  refs?: TemplateRefsJson;
}

export function textKey(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

export function precompiledFileName(key: string): string {
  return `${key}.cjs`;
}

const require = createRequire(import.meta.url);

/** The generated module of a text (require-exact.ts: by its path, without node's resolution); throws when there is none. */
function precompiledModule(dir: string, text: string): PrecompiledModule {
  const file = join(dir, precompiledFileName(textKey(text)));
  return requireExact(file, undefined, () => require(file)) as PrecompiledModule;
}

/**
 * The build's spec of exactly this text, or undefined (no build, not a shipped text, another Handlebars):
 * then the text is compiled.
 */
export function findPrecompiled(dir: string, text: string, handlebarsVersion: string): PrecompiledText | undefined {
  let mod: PrecompiledModule;
  try {
    mod = precompiledModule(dir, text);
  } catch {
    return undefined;
  }
  return mod.handlebars === handlebarsVersion && mod.spec ? mod : undefined;
}

/**
 * What a shipped text reads, as the build's parse found it (the same Handlebars as this run's), or
 * undefined: then the text is parsed.
 */
export function findPrecompiledRefs(text: string, dir = PRECOMPILED_DIR): TemplateRefs | undefined {
  let mod: PrecompiledModule;
  try {
    mod = precompiledModule(dir, text);
  } catch {
    return undefined;
  }
  const json = mod.refs;
  if (!json || mod.handlebars !== handlebarsRuntime().VERSION) return undefined;
  const refs = {} as TemplateRefs;
  for (const kind of REF_KINDS) refs[kind] = new Set(json[kind]);
  return refs;
}
