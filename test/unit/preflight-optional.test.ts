import { describe, expect, it } from 'vitest';
import preflightAction from '../../src/actions/preflight.js';
import type { ActionContext } from '../../src/engine/action.js';
import { FakeTransport } from '../../src/transports/fake.js';
import { actionContext, host } from './support/engine-harness.js';

/*
 * preflight's optional tools: a tool the playbook has another way for is reported with what is done
 * instead and registered in unfit, never refused; a required one still refuses (exit 3).
 * pg_archivecleanup reads WAL file names only, so any major serves.
 */
function context(versions: Record<string, string>, serverMajor: number): ActionContext {
  const t = new FakeTransport('bk1', (argv) => {
    const tool = argv[0]!.split('/').at(-1)!;
    return versions[tool] ? { exitCode: 0, stdout: `${tool} (PostgreSQL) ${versions[tool]}\n` } : { exitCode: 127, stderr: 'not found' };
  });
  const h = { ...host('bk1', 'repository' as never), pgdata: undefined } as never;
  return actionContext({
    step: { id: 'tools', name: 'tools' },
    host: h,
    hosts: { db1: host('db1', 'primary'), bk1: h },
    inventory: { cluster: 'main', postgres: { version: serverMajor }, hosts: {} } as never,
    transport: t,
    factsOf: async () => ({ reachable: true, version: serverMajor }) as never,
  });
}

describe('preflight: optional tools', () => {
  it('an unfit optional tool is reported with its consequence and registered, not refused; pg_archivecleanup of any major serves', async () => {
    const ctx = context({ pg_basebackup: '15.8', pg_archivecleanup: '15.8', pg_dumpall: '17.2' }, 17);
    const out = await preflightAction.check(ctx, {
      tools: ['pg_archivecleanup'],
      optional: { pg_basebackup: 'the copy method is used', pg_dumpall: 'no globals' },
    });
    expect(out.data).toEqual({
      tools: { pg_archivecleanup: '15.8', pg_dumpall: '17.2' },
      unfit: ['pg_basebackup'],
      why_unfit: { pg_basebackup: 'pg_basebackup on bk1 is from PostgreSQL 15.8, the server runs 17: pg_basebackup works only with servers up to its own major' },
    });
    expect(out.msg).toBe('pg_archivecleanup 15.8, pg_dumpall 17.2; pg_basebackup on bk1 is from PostgreSQL 15.8, the server runs 17: pg_basebackup works only with servers up to its own major: the copy method is used');
  });

  it('a required tool that does not fit still refuses (GUARD), whatever is optional', async () => {
    const ctx = context({ pg_basebackup: '15.8' }, 17);
    await expect(preflightAction.check(ctx, { tools: ['pg_basebackup'], optional: { pg_dumpall: 'no globals' } })).rejects.toMatchObject({
      code: 'GUARD',
      message: expect.stringContaining('pg_basebackup on bk1 is from PostgreSQL 15.8, the server runs 17'),
    });
  });
});

describe('preflight: the tools are asked at the same time', () => {
  it('pgbackrest as pgplay runs it, pgbackrest on the server\'s PATH and pg_dumpall all run before any of them has answered', async () => {
    let inFlight = 0;
    let most = 0;
    const waiting: (() => void)[] = [];
    const t = new FakeTransport('db1', async (argv) => {
      inFlight++;
      most = Math.max(most, inFlight);
      // Each command answers once all three have started (or, run one at a time, after a moment).
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length === 3) waiting.forEach((w) => w());
        else setTimeout(resolve, 50);
      });
      inFlight--;
      const tool = argv.includes('version') ? 'pgbackrest' : argv[0]!.split('/').at(-1)!;
      return { exitCode: 0, stdout: tool === 'pgbackrest' ? 'pgBackRest 2.54.2\n' : `${tool} (PostgreSQL) 16.4\n` };
    });
    const out = await preflightAction.check(primary16(t), { tools: ['pgbackrest', 'pg_dumpall'] });
    expect(out.data).toEqual({ tools: { pgbackrest: '2.54.2', pg_dumpall: '16.4' }, unfit: [], why_unfit: {} });
    expect(most).toBe(3);
  });
});

describe("preflight: pgBackRest on the server's PATH", () => {
  /** db1 (PostgreSQL 16) where pgplay's PATH finds pgBackRest `asRun` and the server's PATH `forServer`. */
  function pgbackrestContext(asRun: string, forServer: string): ActionContext {
    return primary16(new FakeTransport('db1', (argv) => ({ exitCode: 0, stdout: `pgBackRest ${argv[0] === 'env' ? forServer : asRun}\n` })));
  }

  it("refuses another release there that does not support the server (archive_command runs that one)", async () => {
    await expect(preflightAction.check(pgbackrestContext('2.54.2', '2.20'), { tools: ['pgbackrest'] })).rejects.toMatchObject({
      code: 'GUARD',
      message: expect.stringContaining(
        'pgbackrest where the PostgreSQL server on db1 finds commands (PATH /usr/local/bin:/usr/bin:/bin) does not support it: PostgreSQL 16 needs pgBackRest',
      ),
    });
  });

  it('accepts another release there that supports the server, and reports the one pgplay runs', async () => {
    const out = await preflightAction.check(pgbackrestContext('2.54.2', '2.53'), { tools: ['pgbackrest'] });
    expect(out.data).toEqual({ tools: { pgbackrest: '2.54.2' }, unfit: [], why_unfit: {} });
  });
});

/** The preflight step on db1, a primary with PGDATA whose server runs PostgreSQL 16, over `transport`. */
function primary16(transport: FakeTransport): ActionContext {
  const h = host('db1', 'primary');
  return actionContext({
    step: { id: 'tools', name: 'tools' },
    host: h,
    hosts: { db1: h },
    inventory: { cluster: 'main', postgres: { version: 16 }, hosts: {} } as never,
    transport,
    factsOf: async () => ({ reachable: true, version: 16 }) as never,
  });
}
