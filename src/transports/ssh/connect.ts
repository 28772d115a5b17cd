import { userInfo } from 'node:os';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client as ClientType, ConnectConfig } from 'ssh2';
import { parseDuration } from '../../core/duration.js';
import { PgplayError, isPgplayError } from '../../core/errors.js';
import type { Host } from '../../model/inventory.js';
import { authPlan, type ResolveSecret } from './auth.js';
import { hostKeyAlgorithms, hostKeyPolicy, verifyHostKey, type HostKeyTarget } from './host-key.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
export const DEFAULT_KEEPALIVE_MS = 15_000;
/** Unanswered keepalives before the connection counts as lost (3 x 15 s, as ServerAliveCountMax). */
const KEEPALIVE_COUNT_MAX = 3;

export interface Endpoint {
  hostName: string;
  address: string;
  port: number;
  user: string;
}

export function endpointOf(host: Host): Endpoint {
  return {
    hostName: host.name,
    address: host.address,
    port: host.connection.port ?? 22,
    user: host.connection.user ?? userInfo().username,
  };
}

/** `db2 (127.0.0.3:2222)`: how every transport message names a host. */
export function describeEndpoint(e: Endpoint): string {
  return `${e.hostName} (${e.address}:${e.port})`;
}

export interface OpenOptions {
  resolveSecret: ResolveSecret;
  onHostKeyAdded?: (line: string) => void;
  /** ProxyJump: reach the host through an SSH connection to this one. */
  jump?: Host;
}

export interface OpenedConnection {
  client: ClientType;
  /** The connection to the jump host, closed together with this one. */
  via?: ClientType;
}

/**
 * Opens and authenticates one SSH connection, verifying the host key against known_hosts first.
 * Every failure becomes a PgplayError TRANSPORT naming the host, its address:port and the user.
 */
export async function openConnection(host: Host, options: OpenOptions): Promise<OpenedConnection> {
  const endpoint = endpointOf(host);
  let via: OpenedConnection | undefined;
  let sock: Duplex | undefined;
  if (options.jump) {
    via = await openConnection(options.jump, { resolveSecret: options.resolveSecret, onHostKeyAdded: options.onHostKeyAdded });
    try {
      sock = await forwardTo(via.client, endpoint, endpointOf(options.jump));
    } catch (e) {
      via.client.end();
      throw e;
    }
  }
  try {
    const client = await handshake(host, endpoint, options, sock);
    if (via) {
      const jumpClient = via.client;
      client.once('close', () => jumpClient.end());
      // A broken jump connection ends the forwarded socket and so this connection too.
      return { client, via: jumpClient };
    }
    return { client };
  } catch (e) {
    via?.client.end();
    throw e;
  }
}

/** RFC 4254's reason code when the server could not connect to the forwarded address. */
const SSH_OPEN_CONNECT_FAILED = 2;

function forwardTo(jump: ClientType, target: Endpoint, jumpEndpoint: Endpoint): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    jump.forwardOut('127.0.0.1', 0, target.address, target.port, (err, stream) => {
      if (err) {
        reject(
          new PgplayError({
            code: 'TRANSPORT',
            host: target.hostName,
            message:
              `cannot reach ${describeEndpoint(target)} through the jump host ${describeEndpoint(jumpEndpoint)}: ` +
              `${err.message.replace(/^\(SSH\) /, '')}`,
            hint: 'the jump host must be able to connect to that address and port, and allow TCP forwarding (AllowTcpForwarding)',
            // The jump host answered but could not connect onward (SSH_OPEN_CONNECT_FAILED): the target is down or cut off.
            unreachable: (err as Error & { reason?: number }).reason === SSH_OPEN_CONNECT_FAILED,
          }),
        );
        return;
      }
      resolve(stream);
    });
  });
}

async function handshake(host: Host, endpoint: Endpoint, options: OpenOptions, sock: Duplex | undefined): Promise<ClientType> {
  const conn = host.connection;
  const policy = hostKeyPolicy(conn);
  const target: HostKeyTarget = { hostName: endpoint.hostName, address: endpoint.address, port: endpoint.port };
  const [serverHostKey, auth] = await Promise.all([
    hostKeyAlgorithms(policy, target),
    authPlan(host, endpoint.user, options.resolveSecret),
  ]);
  const readyTimeout =
    conn.connectTimeout === undefined ? DEFAULT_CONNECT_TIMEOUT_MS : parseDuration(conn.connectTimeout, 'connection.connectTimeout');
  const keepaliveInterval =
    conn.keepaliveInterval === undefined ? DEFAULT_KEEPALIVE_MS : parseDuration(conn.keepaliveInterval, 'connection.keepaliveInterval');

  const client = new ssh2.Client();
  let hostKeyError: PgplayError | undefined;
  const config: ConnectConfig = {
    host: endpoint.address,
    port: endpoint.port,
    username: endpoint.user,
    sock,
    readyTimeout,
    keepaliveInterval,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    authHandler: auth.methods,
    algorithms: { serverHostKey: serverHostKey as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
    hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
      verifyHostKey(policy, target, key, options.onHostKeyAdded).then(
        () => verify(true),
        (e: unknown) => {
          hostKeyError = isPgplayError(e)
            ? e
            : new PgplayError({ code: 'TRANSPORT', host: endpoint.hostName, message: String(e), cause: e });
          verify(false);
        },
      );
    },
  };

  return new Promise<ClientType>((resolve, reject) => {
    let settled = false;
    const fail = (err: PgplayError): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(err);
    };
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      resolve(client);
    });
    // Keep one error listener for the connection's whole life: ssh2 emits 'error' after ready too
    // (keepalive timeout, resets) and an unhandled 'error' would crash the process.
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      fail(hostKeyError ?? connectError(endpoint, err, auth.offered, readyTimeout));
    });
    client.once('close', () => {
      fail(
        hostKeyError ??
          new PgplayError({
            code: 'TRANSPORT',
            host: endpoint.hostName,
            message: `cannot connect to ${describeEndpoint(endpoint)} as ${endpoint.user}: the server closed the connection during the handshake`,
            hint: 'sshd may be refusing connections (MaxStartups, a firewall, or a TCP wrapper); see its log',
          }),
      );
    });
    try {
      client.connect(config);
      // Nagle's algorithm holds each small SSH packet until the previous one is acknowledged, and the
      // peer delays that ACK by up to 40 ms: every command round trip paid it (~45 ms instead of ~5
      // on loopback). Node applies this once the socket connects; a jump host's channel has no such knob.
      client.setNoDelay(true);
    } catch (e) {
      fail(new PgplayError({ code: 'TRANSPORT', host: endpoint.hostName, message: `cannot connect to ${describeEndpoint(endpoint)}: ${(e as Error).message}`, cause: e }));
    }
  });
}

function connectError(
  endpoint: Endpoint,
  err: Error & { level?: string; code?: string },
  offered: string[],
  readyTimeout: number,
): PgplayError {
  const where = describeEndpoint(endpoint);
  if (err.level === 'client-authentication') {
    return new PgplayError({
      code: 'TRANSPORT',
      host: endpoint.hostName,
      message: `authentication failed for ${endpoint.user}@${where}: the server accepted none of: ${offered.join(', ')}`,
      expected: `a key authorized for ${endpoint.user} on ${endpoint.hostName}`,
      hint: `check connection.user and connection.identityFile, and that the public key is in ~${endpoint.user}/.ssh/authorized_keys on the host`,
      cause: err,
    });
  }
  if (err.level === 'client-timeout') {
    return new PgplayError({
      code: 'TRANSPORT',
      host: endpoint.hostName,
      message: `cannot connect to ${where} as ${endpoint.user}: no SSH session within ${formatMs(readyTimeout)} (connection.connectTimeout)`,
      hint: 'the host may be down, firewalled, or not running sshd on that port',
      unreachable: true,
      cause: err,
    });
  }
  return new PgplayError({
    code: 'TRANSPORT',
    host: endpoint.hostName,
    message: `cannot connect to ${where} as ${endpoint.user}: ${socketReason(err)}`,
    unreachable: err.code !== undefined && UNREACHABLE_SOCKET_CODES.has(err.code),
    cause: err,
  });
}

/**
 * Socket errors that mean nothing answers at the address: the host is down, cut off, or its sshd is gone.
 * Not a reset (something answered), not a name that does not resolve (a typo is not a dead host).
 */
const UNREACHABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ETIMEDOUT']);

function socketReason(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listens on that port)';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable (${err.code})`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the address does not resolve (${err.code})`;
    case 'ETIMEDOUT':
      return 'the TCP connection timed out';
    case 'ECONNRESET':
      return 'connection reset by the server';
    default:
      return err.code ? `${err.message} (${err.code})` : err.message;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
