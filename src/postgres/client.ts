/**
 * A pg.Client connected to a host's PostgreSQL through its unix socket, as the OS user that owns the
 * cluster, so peer authentication works the same locally (root + runuser) and over SSH: no password,
 * no TCP listener needed. A tiny bridge process (perl, else python3) joins its stdin/stdout to the
 * socket; the transport carries those as one stream, and pg speaks its protocol over it.
 */
import { lstat } from 'node:fs/promises';
import { Duplex } from 'node:stream';
import type { Client } from 'pg';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { PERL_SOCKET_BRIDGE } from '../transports/socket-bridge.js';
import type { Transport } from '../transports/types.js';

export interface ConnectOptions {
  database?: string;
  /** Server port; host.postgres.port by default (a drill instance runs on its own port). */
  port?: number;
  /** OS user that opens the socket; host.postgres.osUser by default (peer auth maps it to the role). */
  become?: string;
  /** Database role; host.postgres.superuser by default. */
  user?: string;
  /** Only for clusters whose local rules ask for md5/scram instead of peer. */
  password?: string;
  /** Socket directory; host.postgres.socketDir by default. */
  socketDir?: string;
  /** Give up connecting after this long (ms). */
  connectTimeoutMs?: number;
  /** Which bridge to run; 'auto' tries perl, then python3. */
  bridge?: 'auto' | 'perl' | 'python3';
}

/**
 * The bridge's Perl: socket-bridge.ts's. A perl that cannot load Socket where it needs it hands over to
 * python3 (the same protocol, below; its source is the second argument): one process either way.
 */
const PERL_BRIDGE = String.raw`
use strict;
binmode STDIN; binmode STDOUT;
${PERL_SOCKET_BRIDGE}
bridge($ARGV[0], sub {
  return unless defined $ARGV[1];
  exec('python3', '-c', $ARGV[1], $ARGV[0]);
  syswrite(STDOUT, "ERR neither perl (with Socket) nor python3 is installed\n"); exit 127;
});
`;

const PYTHON_BRIDGE = String.raw`
import os, select, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    os.write(1, ("ERR %s\n" % (e.strerror or e)).encode()); sys.exit(2)
os.write(1, b"OK\n")
sfd = s.fileno(); fds = [0, sfd]
while True:
    ready, _, _ = select.select(fds, [], [])
    for fd in ready:
        data = os.read(fd, 65536)
        if not data:
            if fd == sfd: sys.exit(0)
            fds.remove(0); s.shutdown(socket.SHUT_WR); continue
        out = 1 if fd == sfd else sfd
        while data:
            data = data[os.write(out, data):]
`;

const CHOOSER: Record<NonNullable<ConnectOptions['bridge']>, string> = {
  // `command -v` is the shell's own: choosing starts no process; perl hands over to python3 itself.
  auto:
    'if command -v perl >/dev/null 2>&1; then exec perl -e "$1" "$3" "$2"; ' +
    'elif command -v python3 >/dev/null 2>&1; then exec python3 -c "$2" "$3"; ' +
    'else echo "ERR neither perl (with Socket) nor python3 is installed"; exit 127; fi',
  perl: 'command -v perl >/dev/null 2>&1 || { echo "ERR perl is not installed"; exit 127; }; exec perl -e "$1" "$3"',
  python3: 'command -v python3 >/dev/null 2>&1 || { echo "ERR python3 is not installed"; exit 127; }; exec python3 -c "$2" "$3"',
};

/** The argv of the bridge to a unix socket path. */
export function bridgeArgv(socketPath: string, bridge: ConnectOptions['bridge'] = 'auto'): string[] {
  return ['/bin/sh', '-c', CHOOSER[bridge], 'pgplay-socket-bridge', PERL_BRIDGE, PYTHON_BRIDGE, socketPath];
}

/**
 * What pg expects of a socket (connect(), setNoDelay, setKeepAlive, ref/unref, a 'connect' event)
 * around the bridge's stream. 'connect' fires only once the bridge reports the socket open, so a
 * missing socket is an error at connect time, not a protocol failure later; the end of the bridge's
 * output closes it, as the end of a socket closes a net.Socket.
 */
export class BridgeSocket extends Duplex {
  private connected = false;
  private header = Buffer.alloc(0);
  private connecting = false;

  constructor(
    private readonly inner: Duplex,
    private readonly socketPath: string,
  ) {
    super();
    inner.on('error', (e) => this.destroy(e));
    inner.on('end', () => {
      if (!this.connected) {
        const text = this.header.toString('utf8').trim();
        this.destroy(
          new Error(
            text.startsWith('ERR ')
              ? `cannot open ${socketPath}: ${text.slice(4)}`
              : `the socket bridge to ${socketPath} ended before connecting${text ? `: ${text}` : ''}`,
          ),
        );
        return;
      }
      // pg learns that its connection is gone only from the stream's 'close' (as a net.Socket without
      // half-open closes once the peer ends): a server that exits without a word (an immediate
      // shutdown, a postmaster leaving after its startup process failed) ends the bridge's output and
      // nothing else, and without this a pooled connection looked alive and its next query hung.
      this.once('end', () => this.destroy());
      this.push(null);
    });
    inner.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
    inner.pause();
  }

  connect(): this {
    if (this.connecting) return this;
    this.connecting = true;
    this.inner.on('data', (chunk: Buffer) => this.onData(chunk));
    this.inner.resume();
    return this;
  }

  private onData(chunk: Buffer): void {
    if (this.connected) {
      if (!this.push(chunk)) this.inner.pause();
      return;
    }
    this.header = Buffer.concat([this.header, chunk]);
    const nl = this.header.indexOf(0x0a);
    if (nl < 0) {
      if (this.header.length > 4096) this.destroy(new Error(`the socket bridge to ${this.socketPath} sent no status line`));
      return;
    }
    const line = this.header.subarray(0, nl).toString('utf8');
    const rest = this.header.subarray(nl + 1);
    if (line !== 'OK') {
      this.destroy(new Error(line.startsWith('ERR ') ? `cannot open ${this.socketPath}: ${line.slice(4)}` : `unexpected bridge output: ${line}`));
      return;
    }
    this.connected = true;
    this.header = Buffer.alloc(0);
    this.emit('connect');
    if (rest.length && !this.push(rest)) this.inner.pause();
  }

  override _read(): void {
    if (this.connected) this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.inner.write(chunk, encoding, cb);
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}

export function socketPath(socketDir: string, port: number): string {
  return `${socketDir.replace(/\/+$/, '')}/.s.PGSQL.${port}`;
}

/**
 * Whether the host's server may answer at the inventory's socket, by this machine's own look at the
 * socket file (a host on the local transport): a server that is not running has none, and a connection
 * tried anyway would use up a helper's spare channel (transports/exec-server.ts) for nothing.
 */
export async function localSocketPresent(host: Host): Promise<boolean> {
  try {
    return (await lstat(socketPath(host.postgres.socketDir, host.postgres.port))).isSocket();
  } catch {
    return false;
  }
}

/**
 * pg, imported on first use (or ahead of it, while a run whose steps connect reads its facts): a run
 * without SQL steps never loads it (part of pgplay's start-up time).
 */
export async function clientLibrary(): Promise<typeof import('pg')['default']> {
  return (await import('pg')).default;
}

/**
 * A byte stream to the server's socket as `become`: a transport that can open it without a bridge process
 * of its own does (the local one, through that user's command helper); a chosen bridge is always run as asked.
 */
async function openSocket(transport: Transport, path: string, become: string, bridge: ConnectOptions['bridge']): Promise<BridgeSocket> {
  const direct = bridge === undefined ? await transport.openUnixSocket?.(path, { become }) : undefined;
  const socket = new BridgeSocket(direct ?? (await transport.openStream(bridgeArgv(path, bridge), { become })), path);
  // It may wait for pg to load before a client listens to it, and an 'error' nobody listens to would end
  // the process: the error stays on the socket (stream.errored), which connectPostgres reports.
  socket.on('error', () => undefined);
  return socket;
}

/**
 * server_version as the connection's server reported it at the start (see startupServerVersion): a property
 * of the client's own, so that the run's pool, which hands out a Proxy of the client (connection-pool.ts),
 * passes it through as it does the client's other values.
 */
const STARTUP_VERSION = Symbol('pgplay.startupServerVersion');

type WithStartupVersion = Client & { [STARTUP_VERSION]?: string };

/** What pg's connection emits for a ParameterStatus message (pg-protocol's; not in pg's types). */
interface ParameterStatus {
  parameterName: string;
  parameterValue: string;
}

/** Keeps the server_version `client`'s server reports as it starts (called before client.connect()). */
export function noteStartupVersion(client: Client): void {
  const connection = (client as Client & { connection?: { on(event: 'parameterStatus', listener: (m: ParameterStatus) => void): unknown } }).connection;
  connection?.on('parameterStatus', (m) => {
    if (m.parameterName === 'server_version') (client as WithStartupVersion)[STARTUP_VERSION] = m.parameterValue;
  });
}

/**
 * The server's version as it told the connection at its start (a ParameterStatus every server sends
 * before it is ready for queries, "15.10 (Debian 15.10-1.pgdg120+1)"), so that a reader needs no query to
 * learn it; undefined for a connection not opened by connectPostgres. `client` may be the pool's lease of it.
 */
export function startupServerVersion(client: Client): string | undefined {
  const version = (client as WithStartupVersion)[STARTUP_VERSION];
  return typeof version === 'string' ? version : undefined;
}

/**
 * Connects to the host's PostgreSQL over its unix socket as `become` (peer authentication). The
 * caller ends the client (client.end()), which also ends the bridge process.
 */
export async function connectPostgres(transport: Transport, host: Host, opts: ConnectOptions = {}): Promise<Client> {
  const port = opts.port ?? host.postgres.port;
  const path = socketPath(opts.socketDir ?? host.postgres.socketDir, port);
  const become = opts.become ?? host.postgres.osUser;
  const user = opts.user ?? host.postgres.superuser;
  const database = opts.database ?? 'postgres';
  const fail = (reason: string, cause?: unknown) =>
    new PgplayError({
      code: 'STEP_FAILED',
      message: `cannot connect to PostgreSQL as ${user} on ${path} (running as ${become}): ${reason}`,
      host: host.name,
      hint: /No such file|ENOENT|cannot open/.test(reason)
        ? `is the server running on port ${port} with unix_socket_directories including ${opts.socketDir ?? host.postgres.socketDir}?`
        : undefined,
      cause,
    });

  // The socket is asked for first: its bridge starts (a helper forks it, or a process of its own) while
  // pg loads here, ~10 ms of this process's on the way to a run's first connection.
  const opening = openSocket(transport, path, become, opts.bridge);
  opening.catch(() => undefined);
  let pg: Awaited<ReturnType<typeof clientLibrary>>;
  try {
    // A turn of the event loop first: the transport's request reaches its helper before the load holds
    // this process (the helper's answer takes a few promise hops).
    await new Promise((resolve) => setImmediate(resolve));
    pg = await clientLibrary();
  } catch (e) {
    void opening.then((s) => s.destroy(), () => undefined);
    throw e;
  }
  let stream: BridgeSocket;
  try {
    stream = await opening;
  } catch (e) {
    throw fail(e instanceof Error ? e.message : String(e), e);
  }
  // Broken while pg loaded (its bridge or helper gone): reported as a connection that could not open.
  if (stream.destroyed) throw fail(stream.errored?.message ?? 'the socket closed before the connection began', stream.errored ?? undefined);
  const client = new pg.Client({
    stream: () => stream,
    user,
    database,
    password: opts.password,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 30_000,
    application_name: 'pgplay',
  });
  // An idle client whose server goes away emits 'error'; without a listener that would crash the run.
  // Queries in flight still reject with the error, which is where callers see it.
  client.on('error', () => undefined);
  noteStartupVersion(client);
  try {
    await client.connect();
  } catch (e) {
    stream.destroy();
    throw fail(e instanceof Error ? e.message : String(e), e);
  }
  return client;
}
