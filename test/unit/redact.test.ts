import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MASK, processRedactor, Redactor } from '../../src/core/redact.js';

describe('redactor', () => {
  it('masks registered secrets and the forms tools print them in', () => {
    const r = new Redactor();
    r.add('pa:ss\\word');
    r.add('c1pher/Pass+');
    expect(r.redact('echo pa:ss\\word')).toBe(`echo ${MASK}`);
    expect(r.redact('db1:5432:*:rep:pa\\:ss\\\\word')).toBe(`db1:5432:*:rep:${MASK}`);
    expect(r.redact('https://x/?p=c1pher%2FPass%2B')).toBe(`https://x/?p=${MASK}`);
  });

  it('masks secret shapes whose value it was never told', () => {
    const r = new Redactor();
    expect(r.redact("host=db1 user=rep password='with space' sslmode=require")).toBe(`host=db1 user=rep password=${MASK} sslmode=require`);
    expect(r.redact('primary_conninfo = host=db1 password=plain application_name=db2')).toBe(
      `primary_conninfo = host=db1 password=${MASK} application_name=db2`,
    );
    expect(r.redact('postgresql://replicator:t0p@db1:5432/postgres')).toBe(`postgresql://replicator:${MASK}@db1:5432/postgres`);
    expect(r.redact('PGPASSWORD=abc123 psql -h db1')).toBe(`PGPASSWORD=${MASK} psql -h db1`);
    expect(r.redact('{"password":"x\\"y","user":"u"}')).toBe(`{"password":"${MASK}","user":"u"}`);
    expect(r.redact('repo1-cipher-pass=Zm9vYmFy')).toBe(`repo1-cipher-pass=${MASK}`);
  });

  it('masks .pgpass lines in a file, a diff and indented output, and leaves positioned messages alone', () => {
    const r = new Redactor();
    const pgpass = 'db1:5432:replication:replicator:never-told\n*:*:*:postgres:other\\:one\n';
    expect(r.redact(pgpass)).toBe(`db1:5432:replication:replicator:${MASK}\n*:*:*:postgres:${MASK}\n`);
    expect(r.redact('--- a\n+++ b\n@@ -1 +1 @@\n-db1:5432:*:rep:old-pass\n+db1:5433:*:rep:new-pass')).toBe(
      `--- a\n+++ b\n@@ -1 +1 @@\n-db1:5432:*:rep:${MASK}\n+db1:5433:*:rep:${MASK}`,
    );
    expect(r.redact('    +127.0.0.1:5432:*:rep:x y z')).toBe(`    +127.0.0.1:5432:*:rep:${MASK}`);
    for (const untouched of [
      'playbook.yml:3:7: unknown key: backup (expected one of: a, b)',
      'root:x:0:0:root:/root:/bin/bash',
      'at 2024-01-01T03:00:00.000Z: started',
      'step restore, host db2: timed out after 1s',
    ]) {
      expect(r.redact(untouched)).toBe(untouched);
    }
  });

  it('masks short secrets only as whole words', () => {
    const r = new Redactor();
    r.add('pw1');
    expect(r.redact('pw1 and pw12 and xpw1')).toBe(`${MASK} and pw12 and xpw1`);
  });

  it('redacts every string of a value deeply and keeps its shape', () => {
    const r = new Redactor();
    r.add('sekrit-value');
    const value = { a: ['x sekrit-value y', 3, null, { b: 'sekrit-value' }], when: new Date(0), ok: true };
    expect(r.redactValue(value)).toEqual({ a: [`x ${MASK} y`, 3, null, { b: MASK }], when: new Date(0), ok: true });
    expect(value.a[0]).toBe('x sekrit-value y');
  });

  it('never lets a registered secret through, whatever surrounds it (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4, maxLength: 24 }), fc.string(), fc.string(), (secret, before, after) => {
        const r = new Redactor();
        r.add(secret);
        expect(r.redact(before + secret + after)).not.toContain(secret);
      }),
      { numRuns: 500 },
    );
  });

  it('masks a secret registered after it has redacted (the secrets are ordered once per change), the longest whole', () => {
    const r = new Redactor();
    r.add('abc');
    expect(r.redact('x abc y')).toBe(`x ${MASK} y`);
    r.add('abc-longer-secret');
    r.add('zq');
    expect(r.redact('x abc-longer-secret y abc zq')).toBe(`x ${MASK} y ${MASK} ${MASK}`);
    // Strings without an '=' or a ':' hold none of the shapes, and their secrets are still masked.
    expect(r.redact('plain abc-longer-secret text')).toBe(`plain ${MASK} text`);
    expect(r.redact('password = hunter22')).toBe(`password = ${MASK}`);
  });

  it('has one process-wide instance for what the CLI prints outside the run', () => {
    expect(processRedactor()).toBe(processRedactor());
    expect(processRedactor()).toBeInstanceOf(Redactor);
  });
});
