import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import { PgplayError } from '../../core/errors.js';
import type { ConnectionConfig } from '../../model/inventory.js';
import {
  blobKeyType,
  checkHostKey,
  knownHostsLine,
  knownHostsName,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  sha256Fingerprint,
  type KnownHostEntry,
} from '../known-hosts.js';
import { shQuote } from '../quote.js';
import { expandHome } from './paths.js';

export interface HostKeyPolicy {
  /** Files read, in order (the first is the one new keys are appended to). */
  files: string[];
  acceptNew: boolean;
}

export const SYSTEM_KNOWN_HOSTS = '/etc/ssh/ssh_known_hosts';

/**
 * `knownHosts` names the file; the special value "accept-new" means the default file with new keys
 * accepted. `hostKeyChecking` set explicitly wins over that shorthand. Without an explicit file, the
 * system-wide file is read as well, as ssh does.
 */
export function hostKeyPolicy(conn: ConnectionConfig, home: string = homedir()): HostKeyPolicy {
  const userDefault = `${home}/.ssh/known_hosts`;
  const explicitFile = conn.knownHosts !== undefined && conn.knownHosts !== 'accept-new';
  const files = explicitFile ? [expandHome(conn.knownHosts!, home)] : [userDefault, SYSTEM_KNOWN_HOSTS];
  const acceptNew =
    conn.hostKeyChecking !== undefined ? conn.hostKeyChecking === 'accept-new' : conn.knownHosts === 'accept-new';
  return { files, acceptNew };
}

/** What a host key check needs to know about the server it talks to. */
export interface HostKeyTarget {
  hostName: string;
  address: string;
  port: number;
}

export async function loadKnownHosts(files: string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const file of files) {
    const text = await readIfExists(file);
    if (text !== null) all.push(...parseKnownHosts(text, file));
  }
  return all;
}

export async function hostKeyAlgorithms(policy: HostKeyPolicy, target: HostKeyTarget): Promise<string[]> {
  return preferredHostKeyAlgorithms(await loadKnownHosts(policy.files), target.address, target.port);
}

/**
 * Resolves when the key is trusted (or was just added under accept-new); rejects with a PgplayError
 * TRANSPORT that shows the fingerprint and how to trust the key otherwise. Never accepts silently:
 * an added key is reported through onAdded.
 */
export async function verifyHostKey(
  policy: HostKeyPolicy,
  target: HostKeyTarget,
  blob: Buffer,
  onAdded?: (line: string) => void,
): Promise<void> {
  const verdict = checkHostKey(await loadKnownHosts(policy.files), target.address, target.port, blob);
  if (verdict.status === 'known') return;
  if (verdict.status === 'revoked') throw revokedError(target, blob, verdict.entry);
  if (verdict.status === 'changed') throw changedError(target, blob, verdict.entries);
  if (!policy.acceptNew) throw unknownError(policy, target, blob, verdict.certAuthorityOnly);
  await appendNewKey(policy, target, blob, onAdded);
}

// Hosts connecting in parallel under accept-new must not append the same key twice.
const appendLocks = new Map<string, Promise<unknown>>();

async function appendNewKey(
  policy: HostKeyPolicy,
  target: HostKeyTarget,
  blob: Buffer,
  onAdded?: (line: string) => void,
): Promise<void> {
  const file = policy.files[0]!;
  const previous = appendLocks.get(file) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(async () => {
    // Re-check under the lock: another connection may have added (or a user changed) the entry.
    const again = checkHostKey(await loadKnownHosts(policy.files), target.address, target.port, blob);
    if (again.status === 'known') return;
    if (again.status === 'revoked') throw revokedError(target, blob, again.entry);
    if (again.status === 'changed') throw changedError(target, blob, again.entries);
    const line = knownHostsLine(target.address, target.port, blob);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const existing = (await readIfExists(file)) ?? '';
    const prefix = existing.length > 0 && !existing.endsWith('\n') ? '\n' : '';
    await appendFile(file, `${prefix}${line}\n`, { mode: 0o600 });
    onAdded?.(line);
  });
  appendLocks.set(file, run);
  try {
    await run;
  } finally {
    if (appendLocks.get(file) === run) appendLocks.delete(file);
  }
}

function where(target: HostKeyTarget): string {
  return `${target.hostName} (${target.address}:${target.port})`;
}

function unknownError(policy: HostKeyPolicy, target: HostKeyTarget, blob: Buffer, certOnly: boolean): PgplayError {
  const type = blobKeyType(blob) ?? 'unknown';
  const file = policy.files[0]!;
  const line = knownHostsLine(target.address, target.port, blob);
  const name = knownHostsName(target.address, target.port);
  const certNote = certOnly
    ? ' Only an @cert-authority entry matches this host; pgplay does not verify host certificates, so it needs the plain key.'
    : '';
  return new PgplayError({
    code: 'TRANSPORT',
    host: target.hostName,
    message:
      `the host key of ${where(target)} is not known: the server offered ${type} ${sha256Fingerprint(blob)}, ` +
      `which is not in ${policy.files.join(' or ')}.${certNote}`,
    expected: `a known_hosts entry for ${name}`,
    hint:
      `check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_${shortType(type)}_key.pub), then trust it ` +
      `by adding this line to ${file}:\n    ${line}\n  ` +
      `or set connection.hostKeyChecking: accept-new for this host to add new keys automatically ` +
      `(ssh-keygen -F ${shQuote(name)} -f ${shQuote(file)} shows what is recorded).`,
  });
}

function changedError(target: HostKeyTarget, blob: Buffer, known: KnownHostEntry[]): PgplayError {
  const type = blobKeyType(blob) ?? 'unknown';
  const recorded = known.map((e) => `${e.keyType} ${sha256Fingerprint(e.key)} (${e.file}:${e.line})`).join(', ');
  const name = knownHostsName(target.address, target.port);
  const files = [...new Set(known.map((e) => e.file))];
  return new PgplayError({
    code: 'TRANSPORT',
    host: target.hostName,
    message:
      `HOST KEY CHANGED for ${where(target)}: the server offered ${type} ${sha256Fingerprint(blob)}, ` +
      `but known_hosts records ${recorded}. Someone may be intercepting the connection (man-in-the-middle), ` +
      `or the host was reinstalled. Refusing to connect.`,
    expected: `the recorded host key of ${name}`,
    hint:
      `if the change is expected, verify the new fingerprint on the host, then remove the old entry with ` +
      files.map((f) => `ssh-keygen -R ${shQuote(name)} -f ${shQuote(f)}`).join(' and ') +
      ` and connect again. pgplay never replaces a recorded key, even with accept-new.`,
  });
}

function revokedError(target: HostKeyTarget, blob: Buffer, entry: KnownHostEntry): PgplayError {
  return new PgplayError({
    code: 'TRANSPORT',
    host: target.hostName,
    message:
      `the host key of ${where(target)} (${entry.keyType} ${sha256Fingerprint(blob)}) is marked @revoked in ` +
      `${entry.file}:${entry.line}; refusing to connect`,
    hint: 'the host must be given a new host key; a revoked key is never accepted',
  });
}

function shortType(type: string): string {
  if (type === 'ssh-ed25519') return 'ed25519';
  if (type.startsWith('ecdsa-')) return 'ecdsa';
  if (type === 'ssh-rsa') return 'rsa';
  return type;
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PgplayError({
      code: 'TRANSPORT',
      message: `cannot read known_hosts file ${file}: ${(e as Error).message}`,
      cause: e,
    });
  }
}
