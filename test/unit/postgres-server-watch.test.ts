/** What a wait reads in a server's log: the error that keeps repeating, and the cause it names. */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';

// The waits below last seconds of their own clock (the watch begins after a second and reads once a
// second): each delay a wait asks for moves that clock at once instead of being slept.
let clock = 0;
vi.mock('../../src/core/sleep.js', () => ({
  sleep: async (ms: number) => {
    clock += ms;
  },
}));
beforeEach(() => {
  clock = 1_000_000;
  vi.spyOn(Date, 'now').mockImplementation(() => clock);
});
afterEach(() => {
  vi.restoreAllMocks();
});
import waitAction from '../../src/actions/wait.js';
import { causeOf, relevantLines, repeatingError } from '../../src/postgres/server-watch.js';
import type { FakeExecHandler } from '../../src/transports/fake.js';
import { harness } from './support/engine-harness.js';

const at = (n: number, line: string) => `2026-12-03 13:0${n}:01.123 UTC [${4000 + n}] ${line}`;

describe('server-watch', () => {
  test('an error repeating three times (timestamps and pids aside) is found; twice is not enough', () => {
    const fatal = 'FATAL:  could not connect to the primary server: connection to server at "10.0.0.1", port 5432 failed: FATAL:  role "replicator" does not exist';
    const twice = [at(1, fatal), at(2, 'LOG:  waiting for WAL to become available at 0/3000018'), at(3, fatal)].join('\n');
    expect(repeatingError(twice)).toBeUndefined();
    expect(repeatingError(`${twice}\n${at(4, fatal)}`)).toBe(at(4, fatal));
  });

  test('known causes are named, the role first even when authentication is what the standby saw', () => {
    expect(causeOf(['FATAL:  password authentication failed for user "replicator"', 'DETAIL:  Role "replicator" does not exist.'])).toMatch(
      /the role "replicator" does not exist on the upstream/,
    );
    expect(causeOf(['FATAL:  could not connect to the primary server: FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.12", user "replicator", no encryption'])).toMatch(
      /no pg_hba\.conf entry for this replication connection/,
    );
    expect(causeOf(['FATAL:  highest timeline 1 of the primary is behind recovery timeline 2', 'LOG:  new timeline 3 forked off current database system timeline 2 before current recovery point 0/5000028'])).toMatch(/timeline mismatch/);
    expect(causeOf(['FATAL:  could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 has already been removed'])).toMatch(/WAL missing/);
    expect(causeOf(['LOG:  checkpoint complete'])).toBeUndefined();
  });

  test('the relevant lines are the errors and their details, else the last lines', () => {
    expect(relevantLines(['LOG:  a', 'FATAL:  b', 'DETAIL:  c', 'LOG:  d'].join('\n'))).toEqual(['FATAL:  b', 'DETAIL:  c']);
    expect(relevantLines(['LOG:  a', 'LOG:  d'].join('\n'))).toEqual(['LOG:  a', 'LOG:  d']);
  });
});

/**
 * The wait action through the engine over the fake transport: db1 waits for db2 to stream; what db2's
 * postmaster and log do is scripted (the watch's two shell scripts are answered by the handler).
 */
function streamingWait(db2: (poll: number) => { alive: boolean; log: string }) {
  let polls = 0;
  let size = 100;
  const handler: FakeExecHandler = (argv, _o, transport) => {
    if (argv[3] === 'pgplay-log-locate') return { exitCode: 0, stdout: `/var/log/${transport.hostName}.log\n` };
    if (argv[3] === 'pgplay-log-poll') {
      if (transport.hostName !== 'db2') return { exitCode: 0, stdout: `alive=1 size=${size}\n` };
      const now = db2(polls++);
      size += now.log.length;
      return { exitCode: 0, stdout: `alive=${now.alive ? 1 : 0} size=${size}\n${now.log}` };
    }
    return { exitCode: 0 };
  };
  const h = harness(['db1', 'db2'], handler, 0, [], undefined, { actions: [waitAction] });
  return h.run({ steps: [{ id: 'streaming', hosts: 'db1', wait: { streaming: 'db2', timeout: '10s', interval: '50ms' } }] as never }).then((r) => ({
    r,
    message: (h.events.find((e) => e.type === 'step-result' && e.status === 'failed') as { error?: { message: string } } | undefined)?.error?.message ?? '',
  }));
}

describe('a streaming wait reads its standby', () => {
  test('a standby that stops during the wait fails it at once, with the last lines of its log', async () => {
    const { r, message } = await streamingWait((n) =>
      n === 0 ? { alive: true, log: 'LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n' } : { alive: n < 3, log: '' },
    );
    expect(r.exitCode).toBe(1);
    expect(message).toMatch(/PostgreSQL on db2 is not running; the last lines of its log \(\/var\/log\/db2\.log\):\nLOG: {2}started streaming WAL/);
    expect(message).not.toMatch(/condition not met after 10s/);
  });

  test('the same FATAL three times ends the wait, naming the missing role', async () => {
    const fatal = 'FATAL:  could not connect to the primary server: connection to server at "10.0.0.1", port 5432 failed: FATAL:  role "replicator" does not exist';
    const { r, message } = await streamingWait((n) => ({ alive: true, log: n === 0 ? 'LOG:  entering standby mode\n' : at(n % 10, `${fatal}\n`) + '\n' }));
    expect(r.exitCode).toBe(1);
    expect(message).toMatch(/the role "replicator" does not exist on the upstream \(prepare\.yml creates the replication role\)\. db2 logged this 3 times/);
    expect(message).not.toMatch(/condition not met after 10s/);
  });

  test('a timeout shows what the logs said', async () => {
    const { r, message } = await streamingWait((n) => ({ alive: true, log: n === 1 ? 'LOG:  waiting for WAL to become available at 0/3000018\n' : '' }));
    expect(r.exitCode).toBe(1);
    expect(message).toMatch(/condition not met after 10s: no postgres in engine tests\ndb2's log \(\/var\/log\/db2\.log\):\nLOG: {2}waiting for WAL/);
  });
});
