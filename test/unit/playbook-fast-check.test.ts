/**
 * A valid playbook is checked by parts (load/playbook-fast-check.ts): the generated shell validator and
 * each step's action input against that action's part of the schema, without loading the full playbook
 * validator (over a megabyte of generated code). The built dist/ is what runs (the build stamp trusts
 * generated validators there only), in a fresh node per probe, as the CLI runs.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PLAYBOOKS = join(ROOT, 'playbooks');
const shipped = readdirSync(PLAYBOOKS).filter((f) => f.endsWith('.yml')).map((f) => join(PLAYBOOKS, f));
const included = readdirSync(join(PLAYBOOKS, 'include'), { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(PLAYBOOKS, 'include', f));

function node(script: string): unknown {
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' }));
}

describe('a valid playbook does not load the full playbook validator', () => {
  test.each(shipped.map((f) => [f.slice(ROOT.length + 1), f]))('%s', (_name, file) => {
    const r = node(`
      import { createRequire } from 'node:module';
      import { readFileSync } from 'node:fs';
      const registry = await import('./dist/actions/registry.js');
      const { loadPlaybook } = await import('./dist/load/playbook.js');
      await loadPlaybook(${JSON.stringify(file)}, { actions: registry.shippedActions ?? registry.actions });
      const manifest = JSON.parse(readFileSync('dist/validators/manifest.json', 'utf8'));
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/dist/validators/'));
      process.stdout.write(JSON.stringify(loaded.map((k) => manifest.files[k.slice(k.lastIndexOf('/') + 1)] ?? 'formats')));
    `) as string[];
    expect(r).toContain('playbook-shell');
    expect(r.filter((v) => v === 'playbook' || v === 'playbook-included')).toEqual([]);
  });
});

describe('by parts and whole agree on every playbook, valid or not', () => {
  // Each shipped playbook and include, and per step: an unknown key in its action input, an object
  // where the input's first key holds something else, a template there, and the input removed.
  test('shipped playbooks and their mutations', () => {
    const r = node(`
      const { shippedActions } = await import('./dist/actions/registry.js');
      const { validByParts } = await import('./dist/load/playbook-fast-check.js');
      const { loadYamlFile } = await import('./dist/load/yaml.js');
      const { validateDocument } = await import('./dist/schema/validate.js');
      const { playbookDocument } = await import('./dist/schema/documents.js');
      await shippedActions.loadAll();
      const out = { compared: 0, validByParts: 0, disagree: [] };
      const files = ${JSON.stringify([...shipped.map((f) => [f, false]), ...included.map((f) => [f, true])])};
      for (const [file, inc] of files) {
        const doc = await loadYamlFile(file);
        const variants = [['as shipped', structuredClone(doc.data)]];
        (doc.data.steps ?? []).forEach((step, i) => {
          const name = shippedActions.map((a) => a.name).find((n) => n in step);
          if (!name || !step[name] || typeof step[name] !== 'object') return;
          const first = Object.keys(step[name])[0];
          const variant = (what, change) => { const data = structuredClone(doc.data); change(data.steps[i][name], data.steps[i]); variants.push([what + ' in step ' + i, data]); };
          variant('unknown key', (body) => { body.bogus_key = 1; });
          if (first) variant('object for ' + first, (body) => { body[first] = { nested: true }; });
          if (first) variant('template for ' + first, (body) => { body[first] = '{{params.x}}'; });
          variant('no input', (_body, s) => { s[name] = 'text'; });
        });
        const whole = playbookDocument(shippedActions, { hostsOptional: inc });
        for (const [what, data] of variants) {
          const d = { ...doc, data };
          const parts = validByParts(d, shippedActions, { included: inc });
          const full = validateDocument(d, whole).length === 0;
          out.compared++;
          if (parts) out.validByParts++;
          if (parts !== full) out.disagree.push(file + ': ' + what + ': parts ' + parts + ', whole ' + full);
        }
      }
      process.stdout.write(JSON.stringify(out));
    `) as { compared: number; validByParts: number; disagree: string[] };
    expect(r.disagree).toEqual([]);
    // Both verdicts occur: the comparison covers valid and invalid documents.
    expect(r.validByParts).toBeGreaterThanOrEqual(shipped.length + included.length);
    expect(r.compared - r.validByParts).toBeGreaterThan(100);
  });
});
