/**
 * schemas/report.schema.json: the run report (--report FILE) has a published schema, exactly what the
 * code builds, and real run reports (one that succeeds, one whose step fails with a command error)
 * validate against the file on disk with ajv in strict mode.
 */
import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMAS_DIR } from '../../src/core/paths.js';
import { publishedReportSchema, REPORT_SCHEMA_FILE } from '../../src/schema/report.js';
import { runCli } from '../support/cli.js';

const published = () => readFileSync(join(SCHEMAS_DIR, REPORT_SCHEMA_FILE), 'utf8');

function validator() {
  // The one format the schema uses: an ISO 8601 time as pgplay writes it (toISOString).
  const ajv = new Ajv({ strict: true, allErrors: true, formats: { 'date-time': (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(s) } });
  return ajv.compile(JSON.parse(published()) as object);
}

describe('schemas/report.schema.json', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-report-schema-'));
    await writeFile(join(dir, 'inventory.yml'), `cluster: t\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/pg }\n`);
    await writeFile(
      join(dir, 'two.yml'),
      [
        'name: two',
        'params:',
        '  fail: { type: boolean, default: false }',
        'steps:',
        '  - id: hello',
        '    hosts: db1',
        '    command: { argv: [echo, hello], changed_when: false }',
        '  - id: maybe-fail',
        '    hosts: db1',
        '    when: params.fail',
        '    command: { argv: [sh, -c, "echo broken >&2; exit 4"] }',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is exactly what the code builds (regenerate with npm run schemas)', () => {
    expect(published()).toBe(publishedReportSchema());
    const schema = JSON.parse(published()) as Record<string, unknown>;
    expect(schema).toMatchObject({ $schema: 'http://json-schema.org/draft-07/schema#', $id: 'https://pgplay.dev/schemas/report.schema.json', title: 'pgplay report' });
  });

  it('real run reports validate: a run that succeeds and one whose step fails', async () => {
    const validate = validator();
    for (const [fail, exit] of [['false', 0], ['true', 1]] as const) {
      const file = join(dir, `report-${fail}.json`);
      const r = await runCli(['run', join(dir, 'two.yml'), '-i', join(dir, 'inventory.yml'), '-p', `fail=${fail}`, '--report', file, '--state-dir', join(dir, 'state')]);
      expect(r.exitCode, r.stderr).toBe(exit);
      const report = JSON.parse(readFileSync(file, 'utf8')) as { events: Array<{ type: string; error?: { command?: unknown } }> };
      expect(validate(report), JSON.stringify(validate.errors, null, 2)).toBe(true);
      expect(report.events.map((e) => e.type).filter((t) => t !== 'log')).toEqual(fail === 'true' ? ['run-start', 'step-start', 'step-result', 'step-start', 'step-result', 'run-end'] : ['run-start', 'step-start', 'step-result', 'step-start', 'step-result', 'run-end']);
      if (fail === 'true') expect(report.events.at(-1)!.error?.command).toMatchObject({ rc: 4 });
    }
  });

  it('rejects what is not a run report: an unknown event, a status pgplay never writes', () => {
    const validate = validator();
    const time = '2026-05-01T03:00:00.000Z';
    expect(validate({ events: [{ type: 'run-start', runId: 'r', playbook: 'p', inventory: 'i', check: false, hosts: [], steps: [], time }] })).toBe(true);
    expect(validate({ events: [{ type: 'surprise', time }] })).toBe(false);
    expect(validate({ events: [{ type: 'run-start', runId: 'r', playbook: 'p', inventory: 'i', check: false, hosts: [], steps: [], time: 'yesterday' }] })).toBe(false);
    expect(validate({ events: [{ type: 'step-result', step: 's', name: 'n', host: 'h', status: 'great', handler: false, attempts: 1, durationMs: 1, time }] })).toBe(false);
  });
});
