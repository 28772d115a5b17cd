import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import {
  blobKeyType,
  checkHostKey,
  entryMatchesHost,
  hashHostName,
  knownHostsLine,
  knownHostsName,
  parseKnownHosts,
  patternListMatches,
  preferredHostKeyAlgorithms,
  sha256Fingerprint,
} from '../../src/transports/known-hosts.js';
import { hostKeyPolicy, verifyHostKey } from '../../src/transports/ssh/host-key.js';

const work = mkdtempSync(join(tmpdir(), 'pgplay-kh-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function newKey(name: string, type = 'ed25519'): { pub: string; blob: Buffer; keygenFingerprint: string } {
  const path = join(work, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', path]);
  const pub = readFileSync(`${path}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const keygenFingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { pub, blob: Buffer.from(pub.split(' ')[1]!, 'base64'), keygenFingerprint };
}

const a = newKey('a');
const b = newKey('b');
const r = newKey('r', 'rsa');

describe('fingerprints and key blobs', () => {
  test('SHA256 fingerprint matches ssh-keygen -l (base64, no padding)', () => {
    expect(sha256Fingerprint(a.blob)).toBe(a.keygenFingerprint);
    expect(sha256Fingerprint(r.blob)).toBe(r.keygenFingerprint);
    expect(sha256Fingerprint(a.blob)).not.toContain('=');
  });

  test('key type is read from the blob', () => {
    expect(blobKeyType(a.blob)).toBe('ssh-ed25519');
    expect(blobKeyType(r.blob)).toBe('ssh-rsa');
    expect(blobKeyType(Buffer.from([0, 0]))).toBeUndefined();
  });
});

describe('parsing', () => {
  test('plain, comma lists, markers, comments and broken lines', () => {
    const text = [
      '# comment',
      '',
      `db1,10.0.0.11 ${a.pub} comment here`,
      `@revoked * ${b.pub}`,
      `@cert-authority *.example.com ${r.pub}`,
      `@weird host ${a.pub}`,
      'broken-line-with-two fields',
      `mismatch ssh-rsa ${a.pub.split(' ')[1]}`,
      `[10.0.0.12]:2222 ${b.pub}\r`,
    ].join('\n');
    const entries = parseKnownHosts(text, '/kh');
    expect(entries.map((e) => [e.line, e.marker, e.hosts, e.keyType])).toEqual([
      [3, undefined, 'db1,10.0.0.11', 'ssh-ed25519'],
      [4, 'revoked', '*', 'ssh-ed25519'],
      [5, 'cert-authority', '*.example.com', 'ssh-rsa'],
      [9, undefined, '[10.0.0.12]:2222', 'ssh-ed25519'],
    ]);
    expect(entries[0]!.file).toBe('/kh');
  });
});

describe('host matching', () => {
  test('names: bare on port 22, [host]:port otherwise', () => {
    expect(knownHostsName('10.0.0.1')).toBe('10.0.0.1');
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  test('patterns: lists, wildcards, negation, case, ports', () => {
    expect(patternListMatches('db1,10.0.0.11', '10.0.0.11')).toBe(true);
    expect(patternListMatches('DB1', 'db1')).toBe(true);
    expect(patternListMatches('10.0.0.*', '10.0.0.200')).toBe(true);
    expect(patternListMatches('10.0.0.?', '10.0.0.20')).toBe(false);
    expect(patternListMatches('10.0.0.*,!10.0.0.13', '10.0.0.13')).toBe(false);
    expect(patternListMatches('[127.0.0.2]:2222', '[127.0.0.2]:2222')).toBe(true);
    expect(patternListMatches('[127.0.0.2]:2222', '127.0.0.2')).toBe(false);
    expect(patternListMatches('127.0.0.2', '[127.0.0.2]:2222')).toBe(false);
    expect(patternListMatches('[127.0.0.*]:2222', '[127.0.0.9]:2222')).toBe(true);
    expect(patternListMatches('db.1', 'dbx1')).toBe(false);
  });

  test('hashed entries written by ssh-keygen -H match only their host', () => {
    const file = join(work, 'hashed');
    writeFileSync(file, `db1 ${a.pub}\n[127.0.0.3]:2222 ${b.pub}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const entries = parseKnownHosts(readFileSync(file, 'utf8'));
    expect(entries).toHaveLength(2);
    expect(entries.every((e) => e.hosts.startsWith('|1|'))).toBe(true);
    expect(checkHostKey(entries, 'db1', 22, a.blob).status).toBe('known');
    expect(checkHostKey(entries, '127.0.0.3', 2222, b.blob).status).toBe('known');
    expect(checkHostKey(entries, '127.0.0.3', 22, b.blob).status).toBe('unknown');
    expect(checkHostKey(entries, 'db2', 22, a.blob).status).toBe('unknown');
  });

  test('our hashed names are found by ssh-keygen -F', () => {
    const file = join(work, 'ours-hashed');
    writeFileSync(file, `${hashHostName('[10.1.1.1]:2200')} ${a.pub}\n`);
    const out = execFileSync('ssh-keygen', ['-F', '[10.1.1.1]:2200', '-f', file], { encoding: 'utf8' });
    expect(out).toContain(a.pub);
    expect(entryMatchesHost(hashHostName('x'), 'x')).toBe(true);
    expect(entryMatchesHost(hashHostName('x'), 'y')).toBe(false);
    expect(entryMatchesHost('|1|garbage', 'x')).toBe(false);
  });
});

describe('checkHostKey', () => {
  const entries = parseKnownHosts(
    [`[h]:2222 ${a.pub}`, `other ${b.pub}`, `@revoked * ${r.pub}`, `@cert-authority ca-only ${b.pub}`].join('\n'),
    '/kh',
  );

  test('known, changed, unknown, revoked, cert-authority only', () => {
    expect(checkHostKey(entries, 'h', 2222, a.blob)).toMatchObject({ status: 'known', entry: { line: 1 } });
    const changed = checkHostKey(entries, 'h', 2222, b.blob);
    expect(changed.status).toBe('changed');
    expect(changed.status === 'changed' && changed.entries.map((e) => e.line)).toEqual([1]);
    expect(checkHostKey(entries, 'new', 22, a.blob)).toEqual({ status: 'unknown', certAuthorityOnly: false });
    expect(checkHostKey(entries, 'h', 2222, r.blob)).toMatchObject({ status: 'revoked', entry: { line: 3 } });
    expect(checkHostKey(entries, 'ca-only', 22, b.blob)).toEqual({ status: 'unknown', certAuthorityOnly: true });
  });

  test('known key types are offered first', () => {
    const rsaOnly = parseKnownHosts(`h ${r.pub}`);
    expect(preferredHostKeyAlgorithms(rsaOnly, 'h', 22).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(preferredHostKeyAlgorithms(rsaOnly, 'other', 22)[0]).toBe('ssh-ed25519');
  });

  test('knownHostsLine is what the matcher accepts', () => {
    const line = knownHostsLine('127.0.0.5', 2022, a.blob);
    expect(line).toBe(`[127.0.0.5]:2022 ${a.pub}`);
    expect(checkHostKey(parseKnownHosts(line), '127.0.0.5', 2022, a.blob).status).toBe('known');
    expect(checkHostKey(parseKnownHosts(knownHostsLine('127.0.0.5', 2022, a.blob, true)), '127.0.0.5', 2022, a.blob).status).toBe('known');
  });
});

describe('host key policy', () => {
  test('knownHosts names the file; "accept-new" means the default file with new keys added', () => {
    expect(hostKeyPolicy({}, '/home/u')).toEqual({ files: ['/home/u/.ssh/known_hosts', '/etc/ssh/ssh_known_hosts'], acceptNew: false });
    expect(hostKeyPolicy({ knownHosts: 'accept-new' }, '/home/u')).toEqual({
      files: ['/home/u/.ssh/known_hosts', '/etc/ssh/ssh_known_hosts'],
      acceptNew: true,
    });
    expect(hostKeyPolicy({ knownHosts: '~/kh', hostKeyChecking: 'accept-new' }, '/home/u')).toEqual({ files: ['/home/u/kh'], acceptNew: true });
    expect(hostKeyPolicy({ knownHosts: 'accept-new', hostKeyChecking: 'strict' }, '/home/u').acceptNew).toBe(false);
  });

  const target = { hostName: 'db9', address: '127.0.0.9', port: 2222 };

  test('unknown key: TRANSPORT error with the fingerprint and the line to add', async () => {
    const file = join(work, 'strict-kh');
    writeFileSync(file, '');
    const err = await verifyHostKey({ files: [file], acceptNew: false }, target, a.blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgplayError);
    const e = err as PgplayError;
    expect(e.code).toBe('TRANSPORT');
    expect(e.host).toBe('db9');
    expect(e.message).toContain('db9 (127.0.0.9:2222)');
    expect(e.message).toContain(a.keygenFingerprint);
    expect(e.hint).toContain(`[127.0.0.9]:2222 ${a.pub}`);
    expect(e.hint).toContain('accept-new');
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  test('accept-new appends once (0600, parent created) and reports the line; a changed key is never replaced', async () => {
    const file = join(work, 'new-dir', 'known_hosts');
    const added: string[] = [];
    const policy = { files: [file], acceptNew: true };
    await Promise.all([
      verifyHostKey(policy, target, a.blob, (l) => added.push(l)),
      verifyHostKey(policy, target, a.blob, (l) => added.push(l)),
    ]);
    expect(added).toEqual([`[127.0.0.9]:2222 ${a.pub}`]);
    expect(readFileSync(file, 'utf8')).toBe(`[127.0.0.9]:2222 ${a.pub}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const err = (await verifyHostKey(policy, target, b.blob).catch((e: unknown) => e)) as PgplayError;
    expect(err.code).toBe('TRANSPORT');
    expect(err.message).toContain('HOST KEY CHANGED for db9 (127.0.0.9:2222)');
    expect(err.message).toContain(b.keygenFingerprint);
    expect(err.message).toContain(a.keygenFingerprint);
    expect(err.hint).toContain(`ssh-keygen -R '[127.0.0.9]:2222'`);
    expect(readFileSync(file, 'utf8')).toBe(`[127.0.0.9]:2222 ${a.pub}\n`);
  });

  test('a revoked key is refused even under accept-new', async () => {
    const file = join(work, 'revoked-kh');
    writeFileSync(file, `@revoked * ${b.pub}\n`);
    const err = (await verifyHostKey({ files: [file], acceptNew: true }, target, b.blob).catch((e: unknown) => e)) as PgplayError;
    expect(err.message).toMatch(/marked @revoked in .*revoked-kh:1; refusing to connect/);
    expect(readFileSync(file, 'utf8')).toBe(`@revoked * ${b.pub}\n`);
  });
});
