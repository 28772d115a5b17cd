import { existsSync } from 'node:fs';
import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import commandDefault, { commandAction, formatArgv, type CommandInput } from '../../src/actions/command.js';
import { PgplayError } from '../../src/core/errors.js';
import { validateRenderedInput } from '../../src/engine/input.js';
import { tempDir, testContext } from './support/action-context.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir('command');
  await chown(dir.path, 101, 104);
});
afterAll(() => dir.cleanup());

const ctx = () => testContext({ become: 'postgres', timeoutMs: 10_000 });

/** check, then apply when check says so: what the engine does outside check mode. */
async function run(input: CommandInput) {
  const c = ctx();
  const planned = await commandAction.check(c, input);
  if (!planned.changed) return { planned, outcome: planned };
  return { planned, outcome: await commandAction.apply(c, input, planned) };
}

describe('command action', () => {
  it('is the default export too', () => {
    expect(commandDefault).toBe(commandAction);
    expect(commandAction.name).toBe('command');
  });

  it('check never runs the command; it says what would run', async () => {
    const marker = join(dir.path, 'marker-check');
    const planned = await commandAction.check(ctx(), { argv: ['touch', marker] });
    expect(planned).toEqual({ changed: true, msg: `would run: touch ${marker}` });
    const shellPlanned = await commandAction.check(ctx(), { shell: `touch ${marker} && echo "it's done"` });
    expect(shellPlanned.msg).toBe(`would run: /bin/sh -c 'touch ${marker} && echo "it'\\''s done"'`);
    expect(existsSync(marker)).toBe(false);
  });

  it('apply runs argv as the become user and returns rc, stdout, stderr, stdout_lines, argv', async () => {
    const { outcome } = await run({ argv: ['sh', '-c', 'id -un; echo second; echo warn >&2'] });
    expect(outcome).toEqual({
      changed: true,
      msg: 'rc 0',
      data: {
        rc: 0,
        stdout: 'postgres\nsecond',
        stderr: 'warn',
        stdout_lines: ['postgres', 'second'],
        argv: ['sh', '-c', 'id -un; echo second; echo warn >&2'],
      },
    });
  });

  it('shell runs through /bin/sh -c with chdir, env and stdin', async () => {
    const { outcome } = await run({ shell: 'pwd; echo "$GREETING"; tr a-z A-Z', chdir: dir.path, env: { GREETING: 'hi there' }, stdin: 'abc' });
    expect(outcome.data).toMatchObject({ rc: 0, stdout_lines: [dir.path, 'hi there', 'ABC'], argv: ['/bin/sh', '-c', 'pwd; echo "$GREETING"; tr a-z A-Z'] });
  });

  it('produces no stdout_lines for empty output', async () => {
    const { outcome } = await run({ argv: ['true'] });
    expect(outcome.data).toMatchObject({ stdout: '', stdout_lines: [] });
  });

  describe('guards', () => {
    it('creates: skipped when the path exists (relative paths against chdir), runs otherwise', async () => {
      const marker = join(dir.path, 'created-by-command');
      const input: CommandInput = { argv: ['touch', marker], creates: 'created-by-command', chdir: dir.path };
      const first = await run(input);
      expect(first.planned).toEqual({ changed: true, msg: `would run: touch ${marker}` });
      expect(first.outcome.changed).toBe(true);
      expect(existsSync(marker)).toBe(true);
      const second = await run(input);
      expect(second.outcome).toEqual({ changed: false, msg: `${marker} exists` });
    });

    it('removes: skipped when the path is missing, runs when present', async () => {
      const victim = join(dir.path, 'to-remove');
      const input: CommandInput = { argv: ['rm', victim], removes: victim };
      expect((await run(input)).outcome).toEqual({ changed: false, msg: `${victim} does not exist` });
      await writeFile(victim, 'x');
      await chown(victim, 101, 104);
      expect((await run(input)).outcome.changed).toBe(true);
      expect(existsSync(victim)).toBe(false);
    });

    it('unless: skipped when the probe exits 0 (argv or shell), the probe running as the become user', async () => {
      const marker = join(dir.path, 'unless-marker');
      const skippedArgv = await run({ argv: ['touch', marker], unless: ['test', '-d', dir.path] });
      expect(skippedArgv.outcome).toEqual({ changed: false, msg: `unless probe succeeded: test -d ${dir.path}` });
      const skippedShell = await run({ argv: ['touch', marker], unless: 'test "$(id -un)" = postgres' });
      expect(skippedShell.outcome).toMatchObject({ changed: false });
      expect(existsSync(marker)).toBe(false);
      const ran = await run({ argv: ['touch', marker], unless: ['test', '-e', marker] });
      expect(ran.outcome.changed).toBe(true);
      expect(existsSync(marker)).toBe(true);
    });

    it('the guards are read under check mode and the command still never runs', async () => {
      const marker = join(dir.path, 'check-guard-marker');
      const c = testContext({ become: 'postgres', checkMode: true });
      const planned = await commandAction.check(c, { argv: ['touch', marker], unless: ['false'], removes: dir.path });
      expect(planned.msg).toBe(`would run: touch ${marker}`);
      expect(existsSync(marker)).toBe(false);
    });
  });

  describe('results', () => {
    it('changed_when as an expression over the result, and as a boolean', async () => {
      const yes = await run({ shell: 'echo created thing', changed_when: "'created' in stdout and rc == 0" });
      expect(yes.outcome.changed).toBe(true);
      const no = await run({ shell: 'echo nothing to do', changed_when: "'created' in stdout" });
      expect(no.outcome).toMatchObject({ changed: false, msg: 'rc 0' });
      const lines = await run({ shell: 'printf "a\\nb\\n"', changed_when: 'length(stdout_lines) == 2 and result.rc == 0' });
      expect(lines.outcome.changed).toBe(true);
      const never = await run({ argv: ['true'], changed_when: false });
      expect(never.outcome.changed).toBe(false);
    });

    it('a non-zero rc fails with the rc and the last lines of stderr', async () => {
      const err = await run({ shell: 'for i in 1 2 3 4 5 6 7; do echo "line $i" >&2; done; exit 3' }).catch((e) => e);
      expect(err).toBeInstanceOf(PgplayError);
      expect(err.code).toBe('STEP_FAILED');
      expect(err.message).toBe('/bin/sh exited with rc 3: line 3\nline 4\nline 5\nline 6\nline 7');
      expect(err.expected).toBe('rc 0');
    });

    it('never puts env values in a failure message', async () => {
      const err = await run({ argv: ['sh', '-c', 'exit 4'], env: { PGPASSWORD: 'hunter2-secret' } }).catch((e) => e);
      expect(err.message).toBe('sh exited with rc 4');
      expect(JSON.stringify({ ...err, message: err.message })).not.toContain('hunter2-secret');
    });

    it('expect_rc lists the accepted exit codes', async () => {
      const ok = await run({ shell: 'exit 2', expect_rc: [0, 2] });
      expect(ok.outcome.data).toMatchObject({ rc: 2 });
      const err = await run({ shell: 'echo boom >&2; exit 3', expect_rc: [0, 2] }).catch((e) => e);
      expect(err.message).toBe('/bin/sh exited with rc 3: boom');
      expect(err.expected).toBe('rc in 0, 2');
    });

    it('failed_when decides alone when given', async () => {
      const tolerated = await run({ shell: 'echo "already exists" >&2; exit 1', failed_when: "rc != 0 and not ('already exists' in stderr)", changed_when: 'rc == 0' });
      expect(tolerated.outcome).toMatchObject({ changed: false, data: { rc: 1 } });
      const err = await run({ shell: 'echo "ERROR: bad"', failed_when: "'ERROR' in stdout" }).catch((e) => e);
      expect(err.code).toBe('STEP_FAILED');
      expect(err.message).toBe('failed_when "\'ERROR\' in stdout" is true (rc 0)');
      const never = await run({ shell: 'exit 9', failed_when: false });
      expect(never.outcome.data).toMatchObject({ rc: 9 });
    });

    it('a command that outlives the timeout is killed and reported as TIMEOUT', async () => {
      const c = testContext({ become: 'postgres', timeoutMs: 300 });
      const started = Date.now();
      const err = await commandAction.apply(c, { argv: ['sleep', '30'] }, { changed: true }).catch((e) => e);
      expect(err.code).toBe('TIMEOUT');
      expect(err.message).toBe('sleep timed out after 300ms and was killed');
      expect(Date.now() - started).toBeLessThan(5000);
    });
  });

  describe('schema', () => {
    it('accepts argv or shell, and rejects both, neither and unknown keys', () => {
      expect(validateRenderedInput(commandAction, { argv: ['true'], expect_rc: ['0', 2] })).toEqual({ argv: ['true'], expect_rc: [0, 2] });
      expect(() => validateRenderedInput(commandAction, { argv: ['a'], shell: 'b' })).toThrow(/must match exactly one schema in oneOf/);
      expect(() => validateRenderedInput(commandAction, { chdir: '/tmp' })).toThrow(/must match exactly one schema in oneOf/);
      expect(() => validateRenderedInput(commandAction, { argv: ['a'], cmd: 'x' })).toThrow('command input is invalid after rendering: command: unknown key "cmd"');
    });
  });

  it('formatArgv quotes only what a shell would misread', () => {
    expect(formatArgv(['pg_ctl', '-D', '/var/lib/pg data', "it's", 'a=b'])).toBe(`pg_ctl -D '/var/lib/pg data' 'it'\\''s' a=b`);
  });
});
