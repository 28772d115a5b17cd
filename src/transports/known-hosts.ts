import { createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * OpenSSH known_hosts: parsing, host matching (plain, wildcard, negated, hashed `|1|salt|hash`,
 * `[host]:port`), fingerprints and the lines pgplay appends. Pure functions; file access and the
 * accept/refuse policy live in the SSH transport.
 *
 * `@cert-authority` lines are parsed but never used to accept a key: ssh2 does not verify host
 * certificates, so such hosts need a plain key line (the error message says so).
 */

export type Marker = 'cert-authority' | 'revoked';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number, for messages. */
  line: number;
  marker?: Marker;
  /** The host pattern field as written (comma list or a hashed entry). */
  hosts: string;
  keyType: string;
  /** Base64 of the public key blob as written. */
  keyBase64: string;
  key: Buffer;
}

export function parseKnownHosts(text: string, file = 'known_hosts'): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/[ \t]+/);
    let marker: Marker | undefined;
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!.slice(1).toLowerCase();
      if (m !== 'cert-authority' && m !== 'revoked') continue; // unknown marker: OpenSSH skips the line too
      marker = m;
    }
    if (fields.length < 3) continue;
    const [hosts, keyType, keyBase64] = fields as [string, string, string];
    const key = Buffer.from(keyBase64, 'base64');
    // A line whose blob is not valid base64 of that key type is ignored, as OpenSSH does.
    if (key.length === 0 || blobKeyType(key) !== keyType) continue;
    entries.push({ file, line: i + 1, marker, hosts, keyType, keyBase64, key });
  }
  return entries;
}

/** How OpenSSH names a host in known_hosts: the bare name on port 22, `[name]:port` otherwise. */
export function knownHostsName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Whether an entry's host field matches `name` (already in knownHostsName form). */
export function entryMatchesHost(hostsField: string, name: string): boolean {
  if (hostsField.startsWith('|1|')) return hashedMatches(hostsField, name);
  return patternListMatches(hostsField, name);
}

/** OpenSSH match_hostname: comma list, `*` and `?` wildcards, `!` negation wins over any match. */
export function patternListMatches(list: string, name: string): boolean {
  const subject = name.toLowerCase();
  let matched = false;
  for (const rawPattern of list.split(',')) {
    const negated = rawPattern.startsWith('!');
    const pattern = (negated ? rawPattern.slice(1) : rawPattern).toLowerCase();
    if (pattern === '') continue;
    if (wildcardMatch(pattern, subject)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function wildcardMatch(pattern: string, subject: string): boolean {
  const re = new RegExp(
    `^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`,
    's',
  );
  return re.test(subject);
}

function hashedMatches(field: string, name: string): boolean {
  const parts = field.split('|');
  // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && actual.equals(expected);
}

/** A hashed host field as `ssh-keygen -H` / HashKnownHosts write it. */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

/** The key type encoded at the start of an SSH public key blob (string length + name). */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return undefined;
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:<base64 without padding>`, exactly as `ssh-keygen -l` and ssh print it. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The line to add to known_hosts to trust `blob` for host:port. */
export function knownHostsLine(host: string, port: number, blob: Buffer, hashed = false): string {
  const name = knownHostsName(host, port);
  const type = blobKeyType(blob) ?? 'unknown';
  return `${hashed ? hashHostName(name) : name} ${type} ${blob.toString('base64')}`;
}

export type HostKeyVerdict =
  | { status: 'known'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry }
  | { status: 'changed'; entries: KnownHostEntry[] }
  | { status: 'unknown'; certAuthorityOnly: boolean };

/**
 * Decides what known_hosts says about `blob` presented by host:port.
 * - revoked anywhere for this host (or any host with `*`) wins;
 * - a plain entry with the same key: known;
 * - plain entries for the host with any other key: changed. OpenSSH prefers a host key algorithm
 *   it already knows; a host that offers only a different type than the ones on record is treated
 *   as changed too, since a reinstalled or impersonated host looks exactly like that.
 */
export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const forHost = entries.filter((e) => entryMatchesHost(e.hosts, name));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(blob));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => e.marker === undefined);
  const same = plain.find((e) => e.key.equals(blob));
  if (same) return { status: 'known', entry: same };
  if (plain.length > 0) return { status: 'changed', entries: plain };
  return { status: 'unknown', certAuthorityOnly: forHost.some((e) => e.marker === 'cert-authority') };
}

/** Host key algorithms to offer, preferring the types already on record for this host. */
export function preferredHostKeyAlgorithms(entries: KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const known = new Set(
    entries.filter((e) => e.marker === undefined && entryMatchesHost(e.hosts, name)).map((e) => e.keyType),
  );
  const all = [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'rsa-sha2-512',
    'rsa-sha2-256',
    'ssh-rsa',
  ];
  const keyTypeOf = (algo: string): string => (algo.startsWith('rsa-sha2-') ? 'ssh-rsa' : algo);
  return [...all.filter((a) => known.has(keyTypeOf(a))), ...all.filter((a) => !known.has(keyTypeOf(a)))];
}
