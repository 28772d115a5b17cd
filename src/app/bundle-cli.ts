import { rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { build, transform, type Plugin } from 'esbuild';
import type { BundledLibrary } from '../core/libraries.js';
import { BUNDLE_DIR, BUNDLE_METAFILE, PACKAGE_ROOT } from '../core/paths.js';

/*
 * `npm run build`, last: the CLI as the `pgplay` bin runs it, one esbuild bundle of dist/cli/main.js in
 * dist/bundle/. Node 20's ESM loader resolves, reads and compiles every module of dist/ and of the
 * packages one by one (265 files before a local run's first command); a bundle is a few files. Each
 * dynamic import (a command, an action, the terminal renderer, pg, execa, ...) stays a lazy chunk of its
 * own (splitting), so a run still loads only what it uses. It bundles the already compiled dist/, after
 * build-validators stamped dist/schema/build-stamp.js: the bundle trusts the validators of its own build.
 *
 * dist/bundle sits at the depth of dist/cli, so PACKAGE_ROOT (two directories up from a module) is the
 * package root in both, and templates/, schemas/, playbooks/ and dist/validators are found alike.
 *
 * The chunks are CommonJS (asCommonJs, below): esbuild splits code into ES modules only, and node 20's
 * ESM loader costs ~0.4 ms more per file than require() (each URL resolved, each file read through four
 * asynchronous calls, linked and instantiated); a run loads ~100 chunks.
 */

// pg-native is pg's optional native driver, never installed.
const EXTERNAL = ['pg-native'];

/**
 * One chunk of the split ES module bundle rewritten as a CommonJS file of the same name: its imports become
 * require() calls (a dynamic import() a require() in a resolved promise, still loaded only when reached),
 * its exports getters on module.exports, so bindings stay live between chunks as between ES modules.
 * Strict, as an ES module is. `import.meta.url` becomes the file's own URL; `require` and `__dirname` are
 * CommonJS's own (esbuild's shim for the require() calls of bundled CommonJS packages finds the real one).
 * dist/bundle/package.json says "commonjs", so the files keep their names (a schedule's unit runs
 * dist/bundle/main.js). Warnings were the bundling's to give: here they would only repeat them, or be
 * about packages' code; but two things the rewrite cannot keep fail the build: an `import.meta` other
 * than its url (esbuild would make it an empty object) and an import() of a computed specifier (a
 * require() of it would not take a file: URL).
 */
async function asCommonJs(file: string): Promise<void> {
  let source = await readFile(file, 'utf8');
  // A hashbang line (main.js's, from src/cli/main.ts) stays first.
  const hashbang = source.startsWith('#!') ? source.slice(0, source.indexOf('\n') + 1) : '';
  source = source.slice(hashbang.length);
  const computed = /\bimport\(\s*(?!["'])/.exec(source);
  if (computed) throw new Error(`${file}: an import() of a computed specifier (${source.slice(computed.index, computed.index + 40)}...): require() cannot stand for it (see asCommonJs)`);
  const metaUrl = source.includes('import.meta') ? 'const __pgplayMetaUrl = require("node:url").pathToFileURL(__filename).href;\n' : '';
  const { code, warnings } = await transform(source, {
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    loader: 'js',
    supported: { 'dynamic-import': false },
    define: { 'import.meta.url': '__pgplayMetaUrl' },
    banner: `"use strict";\n${metaUrl}`,
    logLevel: 'silent',
  });
  const meta = warnings.filter((w) => w.text.includes('import.meta'));
  if (meta.length) throw new Error(`${file}: ${meta.map((w) => w.text).join('; ')} (see asCommonJs)`);
  await writeFile(file, hashbang + asciiOnly(code));
}

/**
 * A source with a single character beyond ASCII is a two-byte string to V8: twice the memory for as long as
 * the module lives (V8 keeps the source for the functions it compiles later), and a slower read, hash and
 * compile of the whole file: pg's chunk (184 KB, one em dash in a comment) took ~2 ms more to load, in
 * every run that connects. esbuild escapes such characters in strings and identifiers, not in comments,
 * regular expressions or tagged templates, where an escape could change the program (`/é/` is not
 * `/\u{e9}/` without the u flag; String.raw sees the escape). So only lines that are a line comment as a
 * whole (`// ...`) are escaped; any other character stays as it is, and the startup-imports test names the file.
 */
function asciiOnly(code: string): string {
  return code.replace(/^[ \t]*\/\/.*$/gmu, (line: string) => line.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`));
}

/**
 * Handlebars' code generator requires source-map (63 KB) at load, in a try, for the source maps of
 * templates compiled with a `srcName`; pgplay never passes one, and without the package Handlebars uses
 * its own small stand-in. So the bundle gets an empty module in its place: a run compiles 63 KB less.
 */
const withoutSourceMap: Plugin = {
  name: 'handlebars-without-source-map',
  setup(b) {
    b.onResolve({ filter: /^source-map$/ }, (args) => (/[\\/]handlebars[\\/]/.test(args.importer) ? { path: 'source-map', namespace: 'empty' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

/**
 * Native addons stay where npm built them: a `.node` file cannot be bundled, and a path fixed at build
 * time would be the builder's. Each becomes a module that requires it by its package path (ssh2's
 * `sshcrypto.node`, cpu-features' `cpufeatures.node`), resolved when the run loads it, through the
 * bundle's own require, from wherever pgplay is installed. Both are optional to their packages (ssh2
 * falls back to node's crypto when its binding is missing): a failing require still throws into their
 * own try, as it did from node_modules.
 */
const nativeAddonsInPlace: Plugin = {
  name: 'native-addons-in-place',
  setup(b) {
    b.onResolve({ filter: /\.node$/ }, (args) => {
      // The stand-in's own require: left to node at run time.
      if (args.namespace === 'native-addon') return { path: args.path, external: true };
      const file = join(args.resolveDir, args.path);
      const marker = `${sep}node_modules${sep}`;
      const at = file.lastIndexOf(marker);
      if (at < 0) throw new Error(`${args.importer}: a native addon outside node_modules (${file})`);
      return { path: file.slice(at + marker.length).split(sep).join('/'), namespace: 'native-addon' };
    });
    b.onLoad({ filter: /.*/, namespace: 'native-addon' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * ssh2's modules that pgplay never uses, each required when ssh2 loads: its HTTP agents (SSH-tunnelled
 * http.Agent and https.Agent, with node's http, https and tls), its server, its key generator, and SFTP
 * (112 KB: pgplay runs commands and streams, never an SFTP session). A small stand-in replaces each: the
 * SSH chunk was 760 KB, ~170 KB of it these. What ssh2's client and utils take from SFTP.js at load is kept
 * in shape: `SFTP` is a class that nothing constructs (a channel is never one; `client.sftp()` would fail
 * with a clear error), and the four helpers ssh2's index re-exports refuse to run. The build fails if ssh2
 * no longer has one of the files, rather than bundle it unnoticed.
 */
const SSH2_UNUSED: Array<{ file: RegExp; name: string; contents: string }> = [
  { file: /[\\/]ssh2[\\/]lib[\\/]http-agents\.js$/, name: 'lib/http-agents.js', contents: 'module.exports = {};' },
  {
    file: /[\\/]ssh2[\\/]lib[\\/]server\.js$/,
    name: 'lib/server.js',
    contents: "module.exports = class Server { constructor() { throw new Error('pgplay bundles no SSH server'); } };",
  },
  { file: /[\\/]ssh2[\\/]lib[\\/]keygen\.js$/, name: 'lib/keygen.js', contents: 'module.exports = {};' },
  {
    file: /[\\/]ssh2[\\/]lib[\\/]protocol[\\/]SFTP\.js$/,
    name: 'lib/protocol/SFTP.js',
    contents: [
      "const unused = () => { throw new Error('pgplay bundles no SFTP'); };",
      'class SFTP { constructor() { unused(); } }',
      'module.exports = { SFTP, flagsToString: unused, stringToFlags: unused, OPEN_MODE: {}, STATUS_CODE: {} };',
    ].join('\n'),
  },
];
const ssh2WithoutUnusedParts: Plugin = {
  name: 'ssh2-without-unused-parts',
  setup(b) {
    const replaced = new Set<string>();
    for (const part of SSH2_UNUSED) {
      b.onLoad({ filter: part.file }, () => {
        replaced.add(part.name);
        return { contents: part.contents, loader: 'js' };
      });
    }
    b.onEnd((result) => {
      const missing = SSH2_UNUSED.filter((p) => !replaced.has(p.name)).map((p) => `ssh2/${p.name}`);
      if (result.errors.length === 0 && missing.length) throw new Error(`${missing.join(', ')} not bundled: ssh2 changed (see ssh2WithoutUnusedParts)`);
    });
  },
};

/**
 * pg asks, when it loads, whether it runs on Cloudflare Workers: on node 20 (no `navigator`) by
 * constructing a `Response`, and that global's first use loads node's bundled undici (fetch and all,
 * ~25 ms of compiling) into every run that connects to PostgreSQL. pgplay runs on node only, where the
 * answer is no: the bundle's copy of pg/lib/stream.js asks `navigator` alone (node 21 and later have
 * one). The build fails if the test is no longer there to take out, rather than silently keep it.
 */
const PG_CLOUDFLARE_PROBE = "typeof Response === 'function'";
const pgWithoutCloudflareProbe: Plugin = {
  name: 'pg-without-cloudflare-probe',
  setup(b) {
    b.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(PG_CLOUDFLARE_PROBE)) throw new Error(`${args.path}: no \`${PG_CLOUDFLARE_PROBE}\` to take out (pg changed: see pgWithoutCloudflareProbe)`);
      return { contents: source.replace(PG_CLOUDFLARE_PROBE, 'false'), loader: 'js' };
    });
  },
};

/**
 * The CommonJS libraries a run requires synchronously on first use (src/core/libraries.ts), each as one
 * file beside the chunks: required from node_modules, yaml is ~75 files and ~65 ms of CPU, Handlebars'
 * runtime ~20 files and ~13 ms, the whole of Handlebars ~35 files and ~36 ms; as one file ~15, ~3 and
 * ~9 ms. Handlebars' runtime and the whole library are two files (the whole one holds a runtime of its
 * own): a run whose templates were all precompiled by the build loads the small one only. Any static
 * import of one of them is pointed at its file, so the bundle never holds a second copy.
 */
const ONE_FILE_LIBRARIES: Record<BundledLibrary, string> = { yaml: 'yaml.cjs', 'handlebars/runtime': 'handlebars-runtime.cjs', handlebars: 'handlebars.cjs' };
const librariesAsOneFile: Plugin = {
  name: 'libraries-as-one-file',
  setup(b) {
    // The filter is the table's own specifiers, each matched whole and literally.
    const specifiers = Object.keys(ONE_FILE_LIBRARIES).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    b.onResolve({ filter: new RegExp(`^(${specifiers.join('|')})$`) }, (args) => ({ path: `./${ONE_FILE_LIBRARIES[args.path as BundledLibrary]}`, external: true }));
  },
};

rmSync(BUNDLE_DIR, { recursive: true, force: true });
const resolvePackage = createRequire(import.meta.url).resolve;
const libraryBuilds = await Promise.all(
  Object.entries(ONE_FILE_LIBRARIES).map(([specifier, file]) =>
    build({
      absWorkingDir: PACKAGE_ROOT,
      entryPoints: [resolvePackage(specifier)],
      outfile: join(BUNDLE_DIR, file),
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      plugins: [withoutSourceMap],
      metafile: true,
      logLevel: 'warning',
    }),
  ),
);
const result = await build({
  absWorkingDir: PACKAGE_ROOT,
  entryPoints: [join(PACKAGE_ROOT, 'dist', 'cli', 'main.js')],
  outdir: BUNDLE_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  define: {
    PGPLAY_BUNDLED_LIBRARIES: JSON.stringify(JSON.stringify(Object.fromEntries(Object.entries(ONE_FILE_LIBRARIES).map(([specifier, file]) => [specifier, `./${file}`])))),
  },
  plugins: [librariesAsOneFile, pgWithoutCloudflareProbe, nativeAddonsInPlace, ssh2WithoutUnusedParts],
  metafile: true,
  logLevel: 'warning',
});
await Promise.all(Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).map((f) => asCommonJs(join(PACKAGE_ROOT, f))));
await Promise.all(Object.values(ONE_FILE_LIBRARIES).map(async (file) => {
  const path = join(BUNDLE_DIR, file);
  await writeFile(path, asciiOnly(await readFile(path, 'utf8')));
}));
writeFileSync(join(BUNDLE_DIR, 'package.json'), '{ "type": "commonjs" }\n');
// Which inputs went into which file: test/e2e/startup-imports.test.ts maps the files a run opened back to modules and packages.
const builds = [...libraryBuilds, result];
const metafile = {
  inputs: Object.assign({}, ...builds.map((b) => b.metafile.inputs)) as Record<string, unknown>,
  outputs: Object.assign({}, ...builds.map((b) => b.metafile.outputs)) as Record<string, unknown>,
};
writeFileSync(BUNDLE_METAFILE, JSON.stringify(metafile));
process.stdout.write(`bundled the CLI into ${Object.keys(metafile.outputs).length} files in ${BUNDLE_DIR}\n`);
