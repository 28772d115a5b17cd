/**
 * Handlebars in two parts: the runtime (runs compiled templates, holds the helpers) is always loaded;
 * the parser and compiler only when a text must be compiled in this process. A run whose templates
 * and step strings were all precompiled by the build (precompiled.ts) never loads the compiler.
 * Both parts are CommonJS and the renderer is synchronous, so they are required, not imported; the
 * bundle ships each as one file (core/libraries.ts).
 */
import type Handlebars from 'handlebars';
import { requireLibrary } from '../core/libraries.js';

export type HandlebarsLib = typeof Handlebars;
export type TemplateSpec = object;

/** The options every pgplay template is compiled with, at build time and at run time alike. */
export const COMPILE_OPTIONS = Object.freeze({ strict: true, noEscape: true, data: true });

let full: HandlebarsLib | undefined;
let runtime: HandlebarsLib | undefined;

/** The runtime alone: `create()` gives an environment that runs template specs. */
export function handlebarsRuntime(): HandlebarsLib {
  runtime ??= requireLibrary<HandlebarsLib>('handlebars/runtime');
  return runtime;
}

/** Whether this process has needed the runtime (tests check that a run rendering no `{{` does not). */
export function runtimeLoaded(): boolean {
  return runtime !== undefined;
}

/** The full library (parser and compiler), loaded on first use. */
export function handlebarsCompiler(): HandlebarsLib {
  full ??= requireLibrary<HandlebarsLib>('handlebars');
  return full;
}

/** Whether this process has needed the compiler (tests check that a precompiled run does not). */
export function compilerLoaded(): boolean {
  return full !== undefined;
}

type Compilers = {
  Compiler: new () => { compile(ast: unknown, options: object): unknown };
  JavaScriptCompiler: new () => { compile(environment: unknown, options: object, context?: unknown, asObject?: boolean): unknown };
};

/**
 * An already parsed (and whitespace-processed) template as a spec object the runtime runs: what
 * Handlebars.compile does inside, without parsing the text again. `asSource` gives the JavaScript
 * text of the same spec, which the build writes into the precompiled module.
 */
export function compileAst(ast: hbs.AST.Program, asSource: true): string;
export function compileAst(ast: hbs.AST.Program, asSource?: false): TemplateSpec;
export function compileAst(ast: hbs.AST.Program, asSource = false): TemplateSpec | string {
  const lib = handlebarsCompiler() as unknown as Compilers;
  const options = { ...COMPILE_OPTIONS };
  const environment = new lib.Compiler().compile(ast, options);
  return new lib.JavaScriptCompiler().compile(environment, options, undefined, !asSource) as TemplateSpec | string;
}
