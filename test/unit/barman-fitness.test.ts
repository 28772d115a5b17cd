/** Item 6: the barman action refuses (exit 3, before any change) where Barman cannot serve the server's major. */
import { describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import barmanAction from '../../src/actions/barman.js';

function ctxFor(major: number, versionOutput: string, exitCode = 0) {
  const ran: string[][] = [];
  const transport = {
    exec: async (argv: string[]) => {
      ran.push(argv);
      return { argv, exitCode, stdout: versionOutput, stderr: exitCode === 127 ? 'barman: command not found' : '', durationMs: 1, timedOut: false };
    },
  };
  const hosts = {
    db1: { name: 'db1', role: 'primary', address: '10.0.0.11', postgres: { version: major } },
    bk1: { name: 'bk1', role: 'repository', address: '10.0.0.20', postgres: { version: major } },
  };
  const ctx = {
    host: hosts.bk1,
    hosts,
    inventory: { cluster: 'main', backup: { tool: 'barman', repoHost: 'bk1', barman: { password: { env: 'P' } } } },
    transport,
    transportFor: () => transport,
    checkMode: false,
    signal: new AbortController().signal,
    log: () => undefined,
  };
  return { ctx: ctx as never, ran };
}

describe('barman version', () => {
  it('Barman 3.4 and PostgreSQL 15: ok, naming both', async () => {
    const { ctx, ran } = ctxFor(15, '3.4.0 Barman by EnterpriseDB (www.enterprisedb.com)\n');
    const r = await barmanAction.check(ctx, { command: 'version' });
    expect(r).toMatchObject({ changed: false, msg: 'Barman 3.4.0 on bk1 serves PostgreSQL 15' });
    expect(ran).toEqual([['barman', '--version']]);
  });

  it('Barman 3.4 and PostgreSQL 16 or 17: refused with the release that would serve it', async () => {
    for (const [major, min] of [[16, '3.8'], [17, '3.11']] as const) {
      const { ctx } = ctxFor(major, '3.4.0 Barman by EnterpriseDB (www.enterprisedb.com)\n');
      const e = await barmanAction.check(ctx, { command: 'version' }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(PgplayError);
      expect((e as PgplayError).code).toBe('GUARD');
      expect((e as PgplayError).message).toBe(
        `Barman on bk1 cannot serve this cluster: PostgreSQL ${major} needs Barman ${min} or later; the repository host has Barman 3.4.0; nothing was changed`,
      );
    }
  });

  it('Barman missing on the repository host: refused, naming the package', async () => {
    const { ctx } = ctxFor(15, '', 127);
    const e = (await barmanAction.check(ctx, { command: 'version' }).catch((x: unknown) => x)) as PgplayError;
    expect(e.code).toBe('GUARD');
    expect(e.message).toBe('barman is not installed on bk1');
    expect(e.hint).toContain('apt-get install barman');
  });
});
