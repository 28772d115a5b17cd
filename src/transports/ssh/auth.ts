import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ParsedKey } from 'ssh2';
import { PgplayError } from '../../core/errors.js';
import type { Host } from '../../model/inventory.js';
import { expandHome } from './paths.js';

export type ResolveSecret = (ref: unknown) => Promise<string | undefined>;

export interface AuthPlan {
  methods: AnyAuthMethod[];
  /** What was offered, for the message when the server refuses all of it. */
  offered: string[];
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/**
 * The credentials to offer, in order: the configured identity file, then the agent, then (only
 * when no identity file is configured) the default ~/.ssh keys that need no passphrase, which is
 * what ssh itself would try.
 */
export async function authPlan(host: Host, username: string, resolveSecret: ResolveSecret): Promise<AuthPlan> {
  const conn = host.connection;
  const methods: AnyAuthMethod[] = [];
  const offered: string[] = [];

  if (conn.identityFile) {
    const path = expandHome(conn.identityFile);
    const passphrase = conn.passphrase === undefined ? undefined : await resolvePassphrase(host, resolveSecret);
    methods.push({ type: 'publickey', username, key: await loadKey(host, path, passphrase, conn.passphrase !== undefined) });
    offered.push(`identity file ${path}`);
  }

  const agent = agentSocket(host);
  if (agent) {
    methods.push({ type: 'agent', username, agent });
    offered.push(`ssh-agent at ${agent}`);
  }

  if (!conn.identityFile) {
    for (const name of DEFAULT_IDENTITIES) {
      const path = `${homedir()}/.ssh/${name}`;
      const data = await readFile(path).catch(() => null);
      if (!data) continue;
      const key = ssh2.utils.parseKey(data);
      // Encrypted default keys are skipped: without a configured passphrase they cannot be used.
      if (key instanceof Error) continue;
      methods.push({ type: 'publickey', username, key });
      offered.push(`identity file ${path}`);
    }
  }

  if (methods.length === 0) {
    throw new PgplayError({
      code: 'TRANSPORT',
      host: host.name,
      message: `no SSH credentials for ${host.name} (${host.address}): no identityFile, no ssh-agent and no key in ~/.ssh`,
      expected: 'connection.identityFile or connection.agent (or SSH_AUTH_SOCK set)',
    });
  }
  return { methods, offered };
}

function agentSocket(host: Host): string | undefined {
  const agent = host.connection.agent;
  if (agent === false) return undefined;
  if (typeof agent === 'string') return expandHome(agent);
  const fromEnv = process.env.SSH_AUTH_SOCK;
  if (agent === true && !fromEnv) {
    throw new PgplayError({
      code: 'TRANSPORT',
      host: host.name,
      message: `connection.agent is true for ${host.name} but SSH_AUTH_SOCK is not set`,
      expected: 'a running ssh-agent (SSH_AUTH_SOCK) or the agent socket path in connection.agent',
    });
  }
  return fromEnv || undefined;
}

async function resolvePassphrase(host: Host, resolveSecret: ResolveSecret): Promise<string> {
  const value = await resolveSecret(host.connection.passphrase);
  if (value === undefined) {
    throw new PgplayError({
      code: 'TRANSPORT',
      host: host.name,
      message: `the passphrase for the identity file of ${host.name} resolved to nothing (${describeRef(host.connection.passphrase)})`,
      expected: 'the referenced environment variable or file to hold the passphrase',
    });
  }
  return value;
}

async function loadKey(host: Host, path: string, passphrase: string | undefined, passphraseConfigured: boolean): Promise<ParsedKey> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (e) {
    throw new PgplayError({
      code: 'TRANSPORT',
      host: host.name,
      message: `cannot read the identity file ${path} for ${host.name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      expected: 'connection.identityFile to name a readable private key',
      cause: e,
    });
  }
  const key = ssh2.utils.parseKey(data, passphrase);
  if (key instanceof Error) {
    const encrypted = /passphrase|encrypted|decrypt/i.test(key.message);
    throw new PgplayError({
      code: 'TRANSPORT',
      host: host.name,
      message: encrypted
        ? passphraseConfigured
          ? `cannot decrypt the identity file ${path} for ${host.name}: wrong passphrase (${describeRef(host.connection.passphrase)})`
          : `the identity file ${path} for ${host.name} is encrypted and no passphrase is configured`
        : `the identity file ${path} for ${host.name} is not a private key ssh2 can read: ${key.message}`,
      expected: encrypted ? 'connection.passphrase: {env: NAME} or {file: PATH} holding the key passphrase' : 'an OpenSSH or PEM private key',
    });
  }
  if (!key.isPrivateKey()) {
    throw new PgplayError({
      code: 'TRANSPORT',
      host: host.name,
      message: `the identity file ${path} for ${host.name} holds a public key, not a private key`,
      expected: 'the private key file (not the .pub)',
    });
  }
  return key;
}

function describeRef(ref: unknown): string {
  if (ref && typeof ref === 'object') {
    if ('env' in ref) return `from environment variable ${String((ref as { env: unknown }).env)}`;
    if ('file' in ref) return `from file ${String((ref as { file: unknown }).file)}`;
  }
  return 'from connection.passphrase';
}
