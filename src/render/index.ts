/**
 * The Handlebars environment for templates and playbook values: strict (an unknown variable is an
 * error naming the template, line, column, the full path and the nearest existing key), no HTML
 * escaping (we render config files), compiled templates cached by their text.
 *
 * Optional keys under strict mode. Handlebars' strict check is uneven:
 * - `{{host.vars.x}}` (printed) fails when any segment is missing: good.
 * - `{{#if host.vars.x}}` passes when only the LAST segment is missing (the key is simply falsy),
 *   but throws when an intermediate one is (`{{#if host.varz.x}}` with no `varz`).
 * - A path passed to a helper is not checked at all, so our helpers refuse undefined arguments,
 *   except the lenient three below.
 * So templates test optional data with the lenient helpers, which never fail on a missing path:
 *   {{#if (has "host.vars.archive_timeout")}}...{{/if}}       does the path exist (and is not undefined)?
 *   {{get "host.vars.port" 5432}}                             value at the path, or the fallback
 *   {{default host.vars.port 5432}}                           the value unless undefined/null
 *                                                             (only the last segment may be missing)
 * Paths given to `has`/`get` are strings read from the current context (`this`); start them with
 * `@root.` inside {{#each}}/{{#with}} to read from the top.
 * Block parameters (`{{#each hosts as |h|}}`) are refused: Handlebars never checks paths through
 * them, so `{{h.adress}}` would render nothing. Use `this.key`, `../key`, `@root.key`, `@index`.
 *
 * Printing an object (`{{host.vars}}`) is an error rather than "[object Object]" in a config file;
 * print a key of it or use {{json x}}. Lists print comma-joined; use join or json to choose.
 *
 * Helpers: eq ne lt le gt ge (numbers also against numeric strings, like the condition language),
 * and or not (Python truthiness: 0, '', [] and {} are false), default get has, json (optional
 * indent), join (list, separator = ", "), upper lower, indent (text, spaces; every non-empty line), add (two numbers),
 * pgconf (postgresql.conf value), shquote (POSIX shell word), conninfo (libpq conninfo value),
 * hbaaddr (pg_hba.conf address: an IP literal gets /32 or /128, a host name stays bare), dirname (a path's directory).
 * The built-ins each/with refuse an undefined argument (null iterates nothing) and lookup refuses a
 * missing key, so dynamic reads are as strict as written paths.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type Handlebars from 'handlebars';
import { PgplayError } from '../core/errors.js';
import { ValueNotRead } from '../core/not-read.js';
import { didYouMean, listNames } from '../expr/suggest.js';
import { describe, typeName } from '../expr/values.js';
import { findAt, isPathNode, walk, type HbNode, type HbPath, type Loc } from './ast.js';
import { asPairs, checkTree, singlePath } from './checks.js';
import { explainPath, valuesOf, type Explanation } from './explain.js';
import { compileAst, handlebarsCompiler, handlebarsRuntime } from './handlebars-lib.js';
import { HELPER_NAMES, HelperError, registerHelpers } from './helpers.js';
import { PRECOMPILED_DIR, findPrecompiled } from './precompiled.js';
import { syntaxError, where } from './syntax.js';

export { conninfoValue, pgconfValue, shquote } from './quote.js';

export interface Renderer {
  renderString(text: string, context: object, name: string): string;
  /** Renders a template file found by resolveTemplate. */
  renderFile(src: string, context: object): Promise<string>;
  /** The absolute path of a template: `src` itself if absolute, else the first template dir holding it. */
  resolveTemplate(src: string): Promise<string | null>;
  /**
   * Deep-renders the strings inside a value. A string that is exactly one `{{ path }}` yields the raw
   * value (number, boolean, object), so `retries: "{{params.n}}"` stays a number.
   */
  renderValue<T>(value: T, context: object, name: string): T;
  /**
   * How many texts were compiled in this process, how many were found precompiled by the build, and
   * how many renders reused one of either.
   */
  readonly stats: { compiled: number; precompiled: number; hits: number };
}

interface Compiled {
  /** The syntax tree; a precompiled text parses it only when an error must be explained. */
  readonly ast: HbNode;
  render: Handlebars.TemplateDelegate;
  /** checks.singlePath of the tree. */
  single: HbPath | null;
}

const CACHE_LIMIT = 5000;

export interface RendererOptions {
  templateDirs: string[];
  /** The build's precompiled modules (default: dist/precompiled/handlebars/); false compiles every text. */
  precompiled?: string | false;
}

export function createRenderer(options: RendererOptions): Renderer {
  // The runtime alone runs templates; the parser and compiler load only when a text was not precompiled.
  // Even the runtime (about 25 ms of CPU to require) waits for the first text with a `{{`: a run whose
  // steps render nothing (a command with a literal argv) never loads Handlebars.
  let environment: typeof Handlebars | undefined;
  const hb = (): typeof Handlebars => {
    if (!environment) {
      environment = handlebarsRuntime().create();
      registerHelpers(environment);
    }
    return environment;
  };
  const parseText = (text: string): HbNode => handlebarsCompiler().parse(text) as unknown as HbNode;
  const helperNames = new Set(HELPER_NAMES);
  const cache = new Map<string, Compiled>();
  const stats = { compiled: 0, precompiled: 0, hits: 0 };

  function precompiled(text: string, name: string): Compiled | undefined {
    if (options.precompiled === false) return undefined;
    const found = findPrecompiled(options.precompiled ?? PRECOMPILED_DIR, text, hb().VERSION);
    if (!found) return undefined;
    let render: Handlebars.TemplateDelegate;
    try {
      render = hb().template(found.spec as TemplateSpecification);
    } catch {
      return undefined; // a spec this runtime refuses (another compiler revision): compile the text
    }
    let ast: HbNode | undefined;
    return {
      get ast(): HbNode {
        if (!ast) {
          try {
            ast = parseText(text);
          } catch (e) {
            throw syntaxError(text, name, e as Error);
          }
        }
        return ast;
      },
      render,
      single: found.single,
    };
  }

  function compile(text: string, name: string): Compiled {
    const hit = cache.get(text);
    if (hit) {
      stats.hits++;
      return hit;
    }
    let compiled = precompiled(text, name);
    if (compiled) {
      stats.precompiled++;
    } else {
      let ast: HbNode;
      try {
        ast = parseText(text);
      } catch (e) {
        throw syntaxError(text, name, e as Error);
      }
      checkTree(ast, name);
      let render: Handlebars.TemplateDelegate;
      try {
        render = hb().template(compileAst(ast as unknown as hbs.AST.Program) as TemplateSpecification);
      } catch (e) {
        throw syntaxError(text, name, e as Error);
      }
      compiled = { ast, render, single: singlePath(ast) };
      stats.compiled++;
    }
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(text, compiled);
    return compiled;
  }

  function unknownVariable(x: Explanation, loc: Loc, name: string, extra = ''): PgplayError {
    const isLast = x.failedPath === x.path;
    const inside = x.within ? ` (inside ${x.within})` : '';
    let message = `unknown variable "${x.path}"${inside}${extra} ${where(name, loc.start.line, loc.start.column + 1)}`;
    if (x.reason === 'scalar') {
      message += `: "${x.parentPath}" is ${typeName(x.parentValue)} ${describe(x.parentValue)}, it has no key "${x.segment}"`;
    } else if (!isLast) {
      message += x.parentPath ? `: "${x.parentPath}" has no key "${x.segment}"` : `: "${x.segment}" is not defined`;
    }
    if (x.suggestion) message += `; did you mean "${x.suggestion}"?`;
    return new PgplayError({
      code: 'RENDER',
      message,
      expected:
        x.reason === 'missing'
          ? `a key of ${x.parentPath || (x.within ? `the ${x.within} item` : 'the template context')}: ${listNames(x.keys)}`
          : undefined,
      hint:
        x.reason === 'missing'
          ? `if it is optional, test it with {{#if (has "${x.path}")}} or read it with {{get "${x.path}" fallback}}`
          : undefined,
    });
  }

  /** Turns whatever Handlebars or a helper threw into a RENDER error that points into the template. */
  function explainFailure(e: unknown, compiled: Compiled, context: object, name: string): PgplayError {
    if (e instanceof PgplayError) return e;
    const err = e as Error & { lineNumber?: number; column?: number };

    if (e instanceof HelperError) {
      const loc = e.loc;
      if (loc && e.missingArg !== undefined) {
        const visit = findAt(compiled.ast, loc.start.line, loc.start.column, (v) => v.node.type !== 'PathExpression' && Array.isArray(v.node.params));
        const param = (visit?.node.params as HbNode[] | undefined)?.[e.missingArg];
        if (visit && isPathNode(param)) {
          const x = explainPath(param, visit.frames, context);
          if (x) return unknownVariable(x, param.loc, name, ` (argument ${e.missingArg + 1} of ${e.helper})`);
        }
      }
      const at = loc ? where(name, loc.start.line, loc.start.column + 1) : `in template "${name}"`;
      return new PgplayError({ code: 'RENDER', message: `${e.message} ${at}`, hint: e.hint });
    }

    const strict = /^"(.*)" not defined in /.exec(err.message ?? '');
    if (strict && err.lineNumber !== undefined) {
      const visit = findAt(compiled.ast, err.lineNumber, err.column ?? 0, (v) => v.node.type === 'PathExpression');
      if (visit && isPathNode(visit.node)) {
        const owner = visit.owner;
        const calls = owner && owner.path === visit.node && ((owner.params as unknown[]).length > 0 || asPairs(owner.hash).length > 0);
        if (calls) {
          const helper = visit.node.original;
          return new PgplayError({
            code: 'RENDER',
            message: `unknown helper "${helper}" ${where(name, err.lineNumber, (err.column ?? 0) + 1)}${suggest(helper, helperNames)}`,
            expected: `one of ${[...helperNames].join(', ')}`,
          });
        }
        const x = explainPath(visit.node, visit.frames, context);
        if (x) return unknownVariable(x, visit.node.loc, name);
        return new PgplayError({
          code: 'RENDER',
          message: `unknown variable "${visit.node.original}" ${where(name, err.lineNumber, (err.column ?? 0) + 1)}`,
        });
      }
    }
    if (err.lineNumber !== undefined) return syntaxError('', name, err);

    // A missing intermediate segment inside a helper argument or {{#if}} surfaces as a TypeError
    // without a location; find the path that breaks at that key.
    const key = /reading '([^']*)'/.exec(err.message ?? '')?.[1] ?? /search for '([^']*)' in/.exec(err.message ?? '')?.[1];
    if (e instanceof TypeError && key !== undefined) {
      for (const visit of walk(compiled.ast)) {
        if (!isPathNode(visit.node)) continue;
        const at = visit.node.parts.indexOf(key);
        if (at < 1) continue;
        const x = explainPath(visit.node, visit.frames, context);
        if (x && (x.index === at - 1 || (x.reason === 'scalar' && x.index === at))) {
          return unknownVariable(x, visit.node.loc, name);
        }
      }
    }
    return new PgplayError({ code: 'RENDER', message: `cannot render template "${name}": ${err.message ?? String(e)}`, cause: e });
  }

  function run(text: string, context: object, name: string): string {
    const compiled = compile(text, name);
    let out: string;
    try {
      out = compiled.render(context);
    } catch (e) {
      // A value not read yet is for the caller to read (core/not-read.ts), not a template's error.
      if (e instanceof ValueNotRead) throw e;
      throw explainFailure(e, compiled, context, name);
    }
    // Handlebars prints an object as "[object Object]"; in a config file that is always a mistake.
    if (out.includes('[object Object]') && !text.includes('[object Object]')) throw printedObject(compiled, context, name);
    return out;
  }

  function printedObject(compiled: Compiled, context: object, name: string): PgplayError {
    for (const visit of walk(compiled.ast)) {
      const p = visit.node.path as HbNode | undefined;
      if (visit.node.type !== 'MustacheStatement' || !isPathNode(p) || (visit.node.params as unknown[]).length > 0) continue;
      const values = valuesOf(p, visit.frames, context);
      if (values?.some((v) => v !== null && typeof v === 'object' && !Array.isArray(v))) {
        return new PgplayError({
          code: 'RENDER',
          message: `"${p.original}" is an object and would print as "[object Object]" ${where(name, p.loc.start.line, p.loc.start.column + 1)}`,
          hint: `print one of its keys, or all of it with {{json ${p.original}}}`,
        });
      }
    }
    return new PgplayError({
      code: 'RENDER',
      message: `template "${name}" printed an object as "[object Object]"`,
      hint: 'print one of its keys, or all of it with the json helper',
    });
  }

  /** `{{ path }}` alone: look the value up strictly and return it unchanged. */
  function rawValue(text: string, context: object, name: string): { value: unknown } | undefined {
    const p = compile(text, name).single;
    if (!p) return undefined;
    const x = explainPath(p, [], context);
    if (x) throw unknownVariable(x, p.loc, name);
    let value: unknown = context;
    for (const part of p.data ? p.parts.slice(1) : p.parts) value = (value as Record<string, unknown>)[part];
    return { value };
  }

  function renderString(text: string, context: object, name: string): string {
    if (!text.includes('{{')) return text;
    return run(text, context, name);
  }

  function renderValueAt(value: unknown, context: object, name: string): unknown {
    if (typeof value === 'string') {
      if (!value.includes('{{')) return value;
      const raw = rawValue(value, context, name);
      return raw ? raw.value : run(value, context, name);
    }
    if (Array.isArray(value)) return value.map((item, i) => renderValueAt(item, context, `${name}[${i}]`));
    if (value !== null && typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = renderValueAt(v, context, name ? `${name}.${k}` : k);
      return out;
    }
    return value;
  }

  async function resolveTemplate(src: string): Promise<string | null> {
    const candidates = path.isAbsolute(src)
      ? src.endsWith('.hbs') ? [src] : [src, `${src}.hbs`]
      : options.templateDirs.flatMap((dir) => {
          const p = path.resolve(dir, src);
          return src.endsWith('.hbs') ? [p] : [p, `${p}.hbs`];
        });
    for (const candidate of candidates) {
      try {
        if ((await stat(candidate)).isFile()) return candidate;
      } catch {
        /* not in this directory */
      }
    }
    return null;
  }

  async function renderFile(src: string, context: object): Promise<string> {
    const file = await resolveTemplate(src);
    if (!file) {
      throw new PgplayError({
        code: 'RENDER',
        message: `template "${src}" not found`,
        expected: path.isAbsolute(src) ? 'an existing file' : `a file in ${options.templateDirs.join(', ') || '(no template directories)'}`,
      });
    }
    const text = await readFile(file, 'utf8');
    const relative = path.relative(process.cwd(), file);
    const name = relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
    return renderString(text, context, name);
  }

  return {
    renderString,
    renderFile,
    resolveTemplate,
    renderValue: <T>(value: T, context: object, name: string): T => renderValueAt(value, context, name) as T,
    stats,
  };
}

function suggest(name: string, candidates: Iterable<string>): string {
  const near = didYouMean(name, candidates);
  return near ? `; did you mean "${near}"?` : '';
}
