/** What a wait reads in a server's log: the error that keeps repeating, and the cause it names. */
import { describe, expect, test } from 'vitest';
import { causeOf, relevantLines, repeatingError } from '../../src/postgres/server-watch.js';

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
