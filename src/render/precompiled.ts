/**
 * Templates compiled by the build: every shipped template file and every templated string of the
 * shipped playbooks, as Handlebars template specs in one generated CommonJS module
 * (dist/precompiled/handlebars.cjs, written by precompile-build.ts). A text is found by the hash of
 * its content, so an edited template or a user's own playbook finds nothing and is compiled as before.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../core/paths.js';
import type { HbPath } from './ast.js';
import type { TemplateSpec } from './handlebars-lib.js';

/** Written by `npm run build`; only ever in dist/, never committed. */
export const PRECOMPILED_FILE = join(PACKAGE_ROOT, 'dist', 'precompiled', 'handlebars.cjs');

export interface PrecompiledText {
  spec: TemplateSpec;
  /** checks.singlePath of the text's tree, decided at build time. */
  single: HbPath | null;
}

export interface PrecompiledModule {
  /** The Handlebars version that compiled the specs. */
  handlebars: string;
  texts: Record<string, PrecompiledText>;
}

export function textKey(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

const require = createRequire(import.meta.url);

/** The generated module, or nothing (no build yet, another Handlebars): then every text is compiled. */
export function loadPrecompiled(file: string, handlebarsVersion: string): Map<string, PrecompiledText> {
  let mod: PrecompiledModule;
  try {
    mod = require(file) as PrecompiledModule;
  } catch {
    return new Map();
  }
  if (mod.handlebars !== handlebarsVersion || !mod.texts) return new Map();
  return new Map(Object.entries(mod.texts));
}
