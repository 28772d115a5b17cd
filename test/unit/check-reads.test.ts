import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pgbackrestAction } from '../../src/actions/pgbackrest.js';
import type { PgbackrestInput } from '../../src/actions/pgbackrest/input.js';
import { IDENTITY_HEADER } from '../../src/postgres/identity.js';
import { FakeTransport, type FakeExecHandler } from '../../src/transports/fake.js';
import { localHost, testContext } from './support/action-context.js';

/*
 * One probe per fact per step (issue 14) for a restore: check reads what the restore would destroy (the
 * directory's identity, whether a postmaster runs there, whether it is empty) and the repository's info,
 * and guards on them; apply of the same attempt acts on that read instead of reading it all again,
 * unless the engine emptied ctx.checkReads (a human was asked in between) or there is none.
 */
const info = readFileSync(join(import.meta.dirname, '../fixtures/pgbackrest/info3.json'), 'utf8');
const SYSID = /"system-id":(\d+)/.exec(info)![1]!;
const LABEL = /"label":"([^"]+)"/.exec(info)![1]!;

/** `gate`: awaited before a command answers (what it is, what ran so far). */
function fakeHost(state: { running: boolean }, gate?: (what: string, ran: string[]) => Promise<void>) {
  const ran: string[] = [];
  const answer: FakeExecHandler = (argv) => {
    if (argv[3] === 'pgplay-identity') {
      ran.push('identity');
      return { stdout: `${IDENTITY_HEADER}\n1.exists=1\n1.directory=1\n1.key=boot:1:2\n1.real=/pg/data\n1.pg_version=15\n1.control=1\n1.control.system_identifier=${SYSID}\n${state.running ? '1.pid=4242\n1.running=1\n' : ''}end=1\n` };
    }
    if (argv[3] === 'pgplay-restore-probe') {
      ran.push('restore-probe');
      return { stdout: `${state.running ? 'running=4242\n' : ''}contents=nonempty\npgdata=1\n` };
    }
    const command = argv.at(-1);
    if (argv.some((a) => a.endsWith('pgbackrest')) && command === 'info') {
      ran.push('pgbackrest info');
      return { stdout: info };
    }
    if (argv.some((a) => a.endsWith('pgbackrest')) && command === 'restore') {
      ran.push('pgbackrest restore');
      return { stderr: `P00   INFO: repo1: restore backup set ${LABEL}, recovery will start at 2026-11-21 13:39:00\n` };
    }
    ran.push(argv.join(' '));
    return { exitCode: 0 };
  };
  const handler: FakeExecHandler = async (argv, options, transport) => {
    const answered = await answer(argv, options, transport);
    await gate?.(ran.at(-1)!, ran);
    return answered;
  };
  return { ran, transport: new FakeTransport('db2', handler) };
}

const input: PgbackrestInput = { command: 'restore', stanza: 'demo', type: 'standby', delta: true };

function context(transport: FakeTransport, checkReads?: Map<string, unknown>) {
  const host = localHost({ name: 'db2', role: 'standby', pgdata: '/pg/data' });
  return { ...testContext({ host, transport }), ...(checkReads ? { checkReads } : {}) };
}

/** What a restore's check reads, once each: the target's identity and state, the repository's info. */
const CHECK_READS = ['identity', 'pgbackrest info', 'restore-probe'];

describe('a restore acts on what its check read and guarded', () => {
  it('check reads the target and the repository once (one pgbackrest info for the identity guard and the backups); apply restores without reading them again and describes the set from that info', async () => {
    const { ran, transport } = fakeHost({ running: false });
    const ctx = context(transport, new Map());
    const planned = await pgbackrestAction.check(ctx, input);
    expect(planned.changed).toBe(true);
    const outcome = await pgbackrestAction.apply(ctx, input, planned);
    expect(outcome.data).toMatchObject({ set: LABEL, backup_type: 'full', pgdata: '/pg/data', pgdata_before: 'nonempty', delta: true });
    // The identity guard asks for the stanza's system identifier (no database host to ask here), the check
    // for its backups: one info serves both. The three reads run side by side.
    expect(ran.slice(0, 3).sort()).toEqual(CHECK_READS);
    expect(ran.slice(3)).toEqual(['pgbackrest restore']);
  });

  it('the three reads run side by side: the identity answers only once the other two have started', async () => {
    let started!: () => void;
    const othersStarted = new Promise<void>((resolve) => (started = resolve));
    const { ran, transport } = fakeHost({ running: false }, async (what, so) => {
      if (so.includes('restore-probe') && so.includes('pgbackrest info')) started();
      // One after the other, the probe and the info would start only after this answer: never.
      if (what === 'identity') await Promise.race([othersStarted, new Promise((_, reject) => setTimeout(() => reject(new Error('read one after the other')), 2000))]);
    });
    const planned = await pgbackrestAction.check(context(transport, new Map()), input);
    expect(planned.changed).toBe(true);
    expect([...ran].sort()).toEqual(CHECK_READS);
  });

  it('with no check read to act on (a human was asked, or apply alone), apply guards again: a postmaster started meanwhile is refused', async () => {
    const state = { running: false };
    const { ran, transport } = fakeHost(state);
    const ctx = context(transport, new Map());
    const planned = await pgbackrestAction.check(ctx, input);
    // What the engine does when a human answered a confirmation: they may have taken their time.
    ctx.checkReads!.clear();
    state.running = true;
    await expect(pgbackrestAction.apply(ctx, input, planned)).rejects.toMatchObject({ code: 'GUARD', message: expect.stringContaining('PostgreSQL is running in /pg/data') });
    expect([ran.slice(0, 3).sort(), ran.slice(3).sort()]).toEqual([CHECK_READS, CHECK_READS]);
    expect(ran).not.toContain('pgbackrest restore');
  });
});

const noBackups = readFileSync(join(import.meta.dirname, '../fixtures/pgbackrest/info-nobackup.json'), 'utf8').replace('"other"', '"demo"');

/**
 * A target that holds no cluster yet (a standby's first build): the identity guard compares nothing, so it
 * asks the repository nothing. `infoAnswers`: awaited before pgbackrest info answers.
 */
function emptyTarget(o: { backups: boolean; infoFails?: boolean; infoAnswers?: (ran: string[]) => Promise<void> }) {
  const ran: string[] = [];
  const transport = new FakeTransport('db2', async (argv) => {
    if (argv[3] === 'pgplay-identity') {
      ran.push('identity');
      return { stdout: `${IDENTITY_HEADER}\n1.exists=1\n1.directory=1\n1.key=boot:1:2\n1.real=/pg/data\nend=1\n` };
    }
    if (argv[3] === 'pgplay-restore-probe') {
      ran.push('restore-probe');
      return { stdout: 'contents=empty\n' };
    }
    const command = argv.at(-1);
    if (argv.some((a) => a.endsWith('pgbackrest')) && command === 'info') {
      ran.push('pgbackrest info begins');
      await o.infoAnswers?.(ran);
      ran.push('pgbackrest info ends');
      if (o.infoFails) return { exitCode: 1, stderr: 'P00  ERROR: [029]: unable to read the repository\n' };
      return { stdout: o.backups ? info : noBackups };
    }
    if (argv.some((a) => a.endsWith('pgbackrest')) && command === 'restore') {
      ran.push('pgbackrest restore');
      if (!o.backups) return { exitCode: 75, stderr: 'P00  ERROR: [075]: no backup set found to restore\n' };
      return { stderr: `P00   INFO: repo1: restore backup set ${LABEL}, recovery will start at 2026-11-21 13:39:00\n` };
    }
    ran.push(argv.join(' '));
    return { exitCode: 0 };
  });
  return { ran, transport };
}

/** A run under --yes: no human is asked between check and apply (ActionContext.assumeYes). */
const underYes = (transport: FakeTransport) => ({ ...context(transport, new Map()), assumeYes: true });

describe('a restore whose guards need nothing from the repository does not wait for its info (under --yes)', () => {
  it('the restore begins while pgbackrest info is still running; the info then describes the set restored', async () => {
    let restoreBegan!: () => void;
    const began = new Promise<void>((resolve) => (restoreBegan = resolve));
    const { ran, transport } = emptyTarget({
      backups: true,
      // Before, the check waited for this answer and the restore began only after it: never.
      infoAnswers: () => Promise.race([began, new Promise<void>((_, reject) => setTimeout(() => reject(new Error('info was awaited before the restore')), 2000))]),
    });
    const gate = setInterval(() => ran.includes('pgbackrest restore') && restoreBegan(), 5);
    try {
      const ctx = underYes(transport);
      const planned = await pgbackrestAction.check(ctx, input);
      expect(planned.changed).toBe(true);
      const outcome = await pgbackrestAction.apply(ctx, input, planned);
      expect(outcome.data).toMatchObject({ set: LABEL, backup_type: 'full', pgdata: '/pg/data', pgdata_before: 'empty' });
      expect(ran.indexOf('pgbackrest restore')).toBeLessThan(ran.indexOf('pgbackrest info ends'));
      // Still one info: the one begun beside the guards.
      expect(ran.filter((r) => r === 'pgbackrest info begins')).toHaveLength(1);
    } finally {
      clearInterval(gate);
    }
  });

  it('with no backup in the repository the step still fails saying so (pgBackRest refused before touching PGDATA)', async () => {
    const { ran, transport } = emptyTarget({ backups: false });
    const ctx = underYes(transport);
    const step = async () => pgbackrestAction.apply(ctx, input, await pgbackrestAction.check(ctx, input));
    // As when check waited for the info and refused: the same error, now after pgBackRest's own refusal.
    await expect(step()).rejects.toMatchObject({
      code: 'STEP_FAILED',
      message: 'nothing to restore: stanza demo has no backups',
      hint: 'take a backup first (command: backup)',
    });
    expect(ran).toContain('pgbackrest restore');
  });

  it('an info that fails does not fail a restore that succeeded: the set is named from pgBackRest\'s log', async () => {
    const { ran, transport } = emptyTarget({ backups: true, infoFails: true });
    const ctx = underYes(transport);
    const outcome = await pgbackrestAction.apply(ctx, input, await pgbackrestAction.check(ctx, input));
    expect(outcome).toMatchObject({ changed: true, msg: `restored backup set ${LABEL} into /pg/data (type standby)`, data: { set: LABEL, backup: null, backup_type: null } });
    // Read again once the restore had ended (it failed again), and said so.
    expect(ran.filter((r) => r === 'pgbackrest info begins')).toHaveLength(2);
    expect(ctx.logs.some((l) => l.startsWith('pgbackrest info after the restore:'))).toBe(true);
  });

  it('where a human is asked first (no --yes), check still refuses an empty repository before the question', async () => {
    const { ran, transport } = emptyTarget({ backups: false });
    await expect(pgbackrestAction.check(context(transport, new Map()), input)).rejects.toMatchObject({
      code: 'STEP_FAILED',
      message: 'nothing to restore: stanza demo has no backups',
    });
    expect(ran).not.toContain('pgbackrest restore');
  });

  it('under --check it still reads the info first, to say which set a restore would take', async () => {
    const { ran, transport } = emptyTarget({ backups: true });
    const planned = await pgbackrestAction.check({ ...context(transport), checkMode: true }, input);
    expect(planned.msg).toMatch(/^would restore backup set latest \(\d{8}-\d{6}F_\d{8}-\d{6}I\) into \/pg\/data with delta \(type standby\)$/);
    expect(ran).not.toContain('pgbackrest restore');
  });
});

describe('the identity guard asks the other hosts at the same time, and takes the primary\'s system identifier from that read', () => {
  it('a stop guard on a standby: its own read and the primary\'s PGDATA identity, no facts script on the primary', async () => {
    const { guardDestruction } = await import('../../src/actions/identity-guard.js');
    const log: string[] = [];
    let inFlight = 0;
    let overlapped = false;
    const identity = (path: string) => `${IDENTITY_HEADER}\n1.exists=1\n1.directory=1\n1.key=boot:1:${path.endsWith("1") ? 1 : 2}\n1.real=${path}\n1.pg_version=15\n1.control=1\n1.control.system_identifier=${SYSID}\nend=1\n`;
    const transportOf = (name: string) =>
      new FakeTransport(name, async (argv) => {
        const what = argv[3] === 'pgplay-identity' ? 'identity' : argv.join(' ').includes('pgplay-facts 1') ? 'facts' : argv[0]!;
        log.push(`${what}@${name}`);
        inFlight++;
        if (inFlight > 1) overlapped = true;
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
        if (what !== 'identity') return { stdout: '' };
        // The standby reads its own path and where the primary's PGDATA leads on this machine.
        return { stdout: name === 'db2' ? identity('/pg/db2').replace('end=1\n', `2.exists=0\nend=1\n`) : identity('/pg/db1') };
      });
    // Two machines: each host's PGDATA is read on its own.
    const db1 = localHost({ name: 'db1', role: 'primary', pgdata: '/pg/db1', address: '10.0.0.1', connection: { transport: 'ssh' } });
    const db2 = localHost({ name: 'db2', role: 'standby', pgdata: '/pg/db2', address: '10.0.0.2', connection: { transport: 'ssh' } });
    const transports = { db1: transportOf('db1'), db2: transportOf('db2') };
    const base = testContext({ host: db2, transport: transports.db2 });
    const ctx = {
      ...base,
      hosts: { db1, db2 },
      transportFor: (name: string) => transports[name as 'db1' | 'db2'],
      factsIfRead: () => ({ reachable: true, pgdata_present: true, running: true }),
    };
    const examined = await guardDestruction(ctx, { verb: 'stop the server of', path: '/pg/db2', cluster: true });
    expect(examined.target.systemIdentifier).toBe(SYSID);
    expect(log.sort()).toEqual(['identity@db1', 'identity@db2']);
    expect(overlapped).toBe(true);
  });

  it('hosts on the local transport read as one user: one identity command reads every PGDATA, the primary\'s whole', async () => {
    const { guardDestruction } = await import('../../src/actions/identity-guard.js');
    const calls: string[][] = [];
    const transport = new FakeTransport('db2', (argv) => {
      calls.push(argv);
      // identityArgv: sh -c SCRIPT pgplay-identity BINDIR WHOLE PATH...; each path its own directory.
      const paths = argv.slice(6);
      const lines = paths.flatMap((p, i) => [`${i + 1}.exists=1`, `${i + 1}.directory=1`, `${i + 1}.key=boot:1:${i + 10}`, `${i + 1}.real=${p}`]);
      const whole = Number(argv[5]);
      for (let i = 0; i < whole; i++) lines.push(`${i + 1}.control=1`, `${i + 1}.control.system_identifier=${paths[i] === '/pg/db1' ? SYSID : '42'}`);
      return { stdout: [IDENTITY_HEADER, ...lines, 'end=1', ''].join('\n') };
    });
    const db1 = localHost({ name: 'db1', role: 'primary', pgdata: '/pg/db1' });
    const db2 = localHost({ name: 'db2', role: 'standby', pgdata: '/pg/db2' });
    const drill = localHost({ name: 'drill1', role: 'drill', pgdata: '/pg/drill1' });
    const base = testContext({ host: db2, transport });
    const ctx = { ...base, hosts: { drill1: drill, db2, db1 }, transportFor: () => transport, factsIfRead: () => ({ reachable: true, pgdata_present: true, running: true }) };
    // db2's data is another cluster's (42): the primary's identifier, read in the same command, says so.
    await expect(guardDestruction(ctx, { verb: 'restore into', path: '/pg/db2', cluster: true })).rejects.toMatchObject({
      code: 'GUARD',
      message: expect.stringContaining(`not the inventory's cluster ${base.inventory.cluster} (system identifier ${SYSID}, from the primary db1)`),
    });
    // The directories above the target come last: their keys say whether it lies inside another host's PGDATA.
    expect(calls.map((argv) => argv.slice(5))).toEqual([['2', '/pg/db2', '/pg/db1', '/pg/drill1', '/pg']]);
    // Another path to a local host's PGDATA (the same key) is refused, with no command of that host's own.
    calls.length = 0;
    const aliased = new FakeTransport('db2', (argv) => (calls.push(argv), { stdout: [IDENTITY_HEADER, ...argv.slice(6).flatMap((p, i) => [`${i + 1}.exists=1`, `${i + 1}.directory=1`, `${i + 1}.key=boot:1:${p === '/pg/drill1' || p === '/srv/alias' ? 10 : i + 20}`, `${i + 1}.real=${p}`]), 'end=1', ''].join('\n') }));
    await expect(guardDestruction({ ...ctx, transport: aliased, transportFor: () => aliased }, { verb: 'remove', path: '/srv/alias', cluster: false })).rejects.toMatchObject({
      code: 'GUARD',
      message: expect.stringContaining("drill drill1's PGDATA"),
    });
    // No cluster compared: no pg_control read (0 paths whole), only which directory each path is.
    expect(calls.map((argv) => argv.slice(5))).toEqual([['0', '/srv/alias', '/pg/db2', '/pg/db1', '/pg/drill1', '/srv']]);
    // A directory above the path is db1's PGDATA under another name (a bind mount: its own real path, db1's key).
    calls.length = 0;
    const mounted = new FakeTransport('db2', (argv) => (calls.push(argv), { stdout: [IDENTITY_HEADER, ...argv.slice(6).flatMap((p, i) => [`${i + 1}.exists=1`, `${i + 1}.directory=1`, `${i + 1}.key=boot:1:${p === '/pg/db1' || p === '/srv/mnt' ? 11 : i + 30}`, `${i + 1}.real=${p}`]), 'end=1', ''].join('\n') }));
    await expect(guardDestruction({ ...ctx, transport: mounted, transportFor: () => mounted }, { verb: 'remove', path: '/srv/mnt/global', cluster: false })).rejects.toMatchObject({
      code: 'GUARD',
      message: expect.stringContaining("lies inside the primary db1's PGDATA (/pg/db1 on 127.0.0.1; /srv/mnt is db1's PGDATA, the same directory on the same machine)"),
    });
  });

  it('a guard that compares no cluster (a standby\'s stop, a copy into a directory) reads no pg_control: which directory each PGDATA is', async () => {
    const { guardDestruction } = await import('../../src/actions/identity-guard.js');
    const wholes: string[] = [];
    const transport = new FakeTransport('db2', (argv) => {
      // identityArgv: sh -c SCRIPT pgplay-identity BINDIR WHOLE PATH...
      wholes.push(argv[5]!);
      const lines = argv.slice(6).flatMap((p, i) => [`${i + 1}.exists=1`, `${i + 1}.directory=1`, `${i + 1}.key=boot:1:${i + 40}`, `${i + 1}.real=${p}`]);
      return { stdout: [IDENTITY_HEADER, ...lines, 'end=1', ''].join('\n') };
    });
    const db1 = localHost({ name: 'db1', role: 'primary', pgdata: '/pg/db1' });
    const db2 = localHost({ name: 'db2', role: 'standby', pgdata: '/pg/db2' });
    const ctx = { ...testContext({ host: db2, transport }), hosts: { db1, db2 }, transportFor: () => transport, factsIfRead: () => ({ reachable: true, pgdata_present: true, running: true }) };
    await guardDestruction(ctx, { verb: 'stop the server of', path: '/pg/db2', cluster: false });
    await guardDestruction(ctx, { verb: 'copy into', path: '/pg/db2', cluster: false });
    // Where the cluster is compared, the target's pg_control and the primary's are read in the same command.
    await guardDestruction(ctx, { verb: 'restore into', path: '/pg/db2', cluster: true }).catch(() => undefined);
    expect(wholes).toEqual(['0', '0', '2']);
  });

  it('a local host read as another user still reads its own PGDATA', async () => {
    const { guardDestruction } = await import('../../src/actions/identity-guard.js');
    const log: string[] = [];
    const transportOf = (name: string) =>
      new FakeTransport(name, (argv, options) => {
        log.push(`${argv.slice(6).join(',')}@${name} as ${options?.become}`);
        return { stdout: [IDENTITY_HEADER, ...argv.slice(6).flatMap((p, i) => [`${i + 1}.exists=1`, `${i + 1}.directory=1`, `${i + 1}.key=boot:1:${p}`, `${i + 1}.real=${p}`]), 'end=1', ''].join('\n') };
      });
    const db1 = localHost({ name: 'db1', role: 'primary', pgdata: '/pg/db1' });
    const db2 = localHost({ name: 'db2', role: 'standby', pgdata: '/pg/db2', postgres: { ...localHost().postgres, osUser: 'pg2' } });
    const transports = { db1: transportOf('db1'), db2: transportOf('db2') };
    const ctx = { ...testContext({ host: db2, transport: transports.db2 }), hosts: { db1, db2 }, transportFor: (n: string) => transports[n as 'db1' | 'db2'], factsIfRead: () => ({ reachable: true, pgdata_present: true, running: true }) };
    await guardDestruction(ctx, { verb: 'stop the server of', path: '/pg/db2', cluster: false });
    expect(log.sort()).toEqual(['/pg/db1@db1 as postgres', '/pg/db2,/pg/db1,/pg@db2 as pg2']);
  });
});
