import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import type { ChildOutcome } from './child.js';

/**
 * Commands as another user through a long-lived helper instead of one `runuser` per command (issue 14).
 *
 * Each `runuser -u postgres -- cmd` opens a PAM session (pam_limits, pam_unix's log line) and node forks
 * its whole process for it: 20-30 ms per command on the lab, and a standby build runs about fifty. The
 * helper is a small Perl loop started once through that same `runuser` (so it holds the user, groups,
 * HOME/USER/LOGNAME/SHELL and the limits PAM set, and passes them on to every command as runuser
 * would); for each command it forks, starts a new session (its own process group, as the direct path's
 * detached child), applies the command's environment, execs it with stdin from the request or
 * /dev/null, and answers with its pid at once and its exit status and output at the end. One command at
 * a time per helper: a pool starts another helper when all are busy.
 *
 * perl-base (POSIX, IO::Select) is on every Debian system, dpkg depends on it; without perl the helper
 * does not start and the transport runs its commands directly, as before.
 */
const SCRIPT = String.raw`
use strict; use POSIX (); use IO::Select;
$SIG{PIPE} = 'IGNORE';
binmode STDIN; binmode STDOUT;
sub rd { my $n = shift; my $b = ''; while (length($b) < $n) { my $r = sysread(STDIN, $b, $n - length($b), length($b)); POSIX::_exit(0) unless $r; } return $b; }
sub line { my $l = ''; while (1) { my $c; my $r = sysread(STDIN, $c, 1); POSIX::_exit(0) unless $r; return $l if $c eq "\n"; $l .= $c; } }
sub item { return rd(line()); }
sub say { my $s = shift; while (length $s) { my $w = syswrite(STDOUT, $s); POSIX::_exit(0) unless defined $w; substr($s, 0, $w) = ''; } }
say("pgplay-exec 1\n");
# A stream request: this helper becomes the byte bridge to a unix socket (PostgreSQL's), as this user, so
# the first SQL of a host needs no runuser, shell and perl of its own. It prints what the bridge of
# postgres/client.ts prints ("OK" or "ERR <reason>"), copies bytes both ways, half-closes the socket at the
# end of its input and exits when the server closes.
sub bridge {
  my $path = shift;
  unless (eval { require IO::Socket::UNIX; 1 }) { say("ERR perl lacks IO::Socket::UNIX\n"); POSIX::_exit(127); }
  my $s = IO::Socket::UNIX->new(Type => Socket::SOCK_STREAM(), Peer => $path);
  unless ($s) { say("ERR $!\n"); POSIX::_exit(2); }
  binmode $s;
  say("OK\n");
  my $sfd = fileno($s); my $sel = IO::Select->new(\*STDIN, $s); my $buf;
  while (my @ready = $sel->can_read) {
    for my $fh (@ready) {
      my $n = sysread($fh, $buf, 65536);
      if (!$n) { POSIX::_exit(0) if fileno($fh) == $sfd; $sel->remove(\*STDIN); shutdown($s, 1); next; }
      my $out = fileno($fh) == $sfd ? \*STDOUT : $s;
      my $off = 0;
      while ($off < $n) { my $w = syswrite($out, $buf, $n - $off, $off); POSIX::_exit(1) unless defined $w; $off += $w; }
    }
  }
  POSIX::_exit(0);
}
while (1) {
  my ($tag, $na, $ne, $ni) = split / /, line();
  bridge(item()) if $tag eq 'S';
  my @argv = map { item() } 1 .. $na;
  my @env = map { item() } 1 .. $ne;
  my $in = $ni >= 0 ? rd($ni) : undef;
  pipe(my $or, my $ow) or die; pipe(my $er, my $ew) or die;
  my ($ir, $iw); if (defined $in) { pipe($ir, $iw) or die; }
  my $pid = fork();
  if (!defined $pid) { say("D 127 0 0 " . length("pgplay: fork: $!\n") . "\npgplay: fork: $!\n"); next; }
  if ($pid == 0) {
    POSIX::setsid();
    $SIG{PIPE} = 'DEFAULT';
    if (defined $in) { POSIX::dup2(fileno($ir), 0); } else { my $null = POSIX::open('/dev/null', POSIX::O_RDONLY()); POSIX::dup2($null, 0); }
    POSIX::dup2(fileno($ow), 1); POSIX::dup2(fileno($ew), 2);
    for my $kv (@env) { my ($k, $v) = split /=/, $kv, 2; $ENV{$k} = $v; }
    exec { $argv[0] } @argv;
    my ($why, $denied) = ("$!", $! == POSIX::EACCES());
    syswrite(STDERR, "pgplay: failed to execute $argv[0]: $why\n");
    POSIX::_exit($denied ? 126 : 127);
  }
  close $ow; close $ew; close $ir if defined $ir;
  say("P $pid\n");
  my ($out, $err) = ('', '');
  my $sel = IO::Select->new($or, $er);
  my $wsel = IO::Select->new(); if (defined $iw) { if (length $in) { $wsel->add($iw); } else { close $iw; } }
  while ($sel->count || $wsel->count) {
    my ($r, $w) = IO::Select->select($sel, $wsel, undef);
    for my $fh (@{$w || []}) {
      my $n = syswrite($fh, $in, 65536);
      if (!defined $n) { $wsel->remove($fh); close $fh; next; }
      substr($in, 0, $n) = '';
      if (!length $in) { $wsel->remove($fh); close $fh; }
    }
    for my $fh (@{$r || []}) {
      my $buf; my $n = sysread($fh, $buf, 65536);
      if (!$n) { $sel->remove($fh); close $fh; next; }
      if ($fh == $or) { $out .= $buf; } else { $err .= $buf; }
    }
  }
  waitpid($pid, 0);
  my $st = $?;
  my ($code, $sig) = ($st & 127) ? (-1, $st & 127) : ($st >> 8, 0);
  say("D $code $sig " . length($out) . " " . length($err) . "\n" . $out . $err);
}
`;

/** A command handed to a helper: its pid once forked, its outcome once it and its output are done. */
export interface ServedCommand {
  readonly pid: Promise<number | undefined>;
  readonly done: Promise<ChildOutcome>;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

interface Pending {
  pid(pid: number | undefined): void;
  done(outcome: ChildOutcome): void;
}

/** One helper process: a Perl loop running one command at a time. */
class ExecServer {
  busy = false;
  /** Started, not yet greeted. */
  starting = false;
  /** Resolves true once the helper said it runs, false when it could not start. */
  readonly ready: Promise<boolean>;
  private readonly child: ChildProcess;
  private buffer: Buffer = Buffer.alloc(0);
  private greeted = false;
  private pending: Pending | undefined;
  private header: { code: number; signal: number; out: number; err: number } | undefined;
  private alive = true;
  readonly exited: Promise<void>;

  constructor(argv: string[]) {
    // In /, as the direct path runs another user's commands: that user may not enter pgplay's working directory.
    this.child = spawn(argv[0]!, argv.slice(1), { cwd: '/', stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    let greet!: (ok: boolean) => void;
    this.ready = new Promise((resolve) => (greet = resolve));
    this.exited = new Promise((resolve) => {
      const gone = () => {
        this.alive = false;
        greet(false);
        const pending = this.pending;
        this.pending = undefined;
        pending?.pid(undefined);
        pending?.done({ startError: Object.assign(new Error('the command helper exited'), { code: 'EPIPE' }), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });
        resolve();
      };
      this.child.once('error', gone);
      this.child.once('close', gone);
    });
    this.child.stdin!.on('error', () => {});
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.parse(greet);
    });
    // Referenced until its first command is done: the caller is waiting on it.
  }

  get usable(): boolean {
    return this.alive && !this.busy;
  }

  run(argv: string[], env: Record<string, string>, input: string | Buffer | undefined): ServedCommand {
    this.busy = true;
    this.active();
    let setPid!: (pid: number | undefined) => void;
    let finish!: (outcome: ChildOutcome) => void;
    const pid = new Promise<number | undefined>((resolve) => (setPid = resolve));
    const done = new Promise<ChildOutcome>((resolve) => (finish = resolve));
    this.pending = {
      pid: setPid,
      done: (outcome) => {
        this.busy = false;
        this.idle();
        finish(outcome);
      },
    };
    const data = input === undefined ? undefined : Buffer.isBuffer(input) ? input : Buffer.from(input, 'utf8');
    const items = [...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].map((s) => Buffer.from(s, 'utf8'));
    const parts: Buffer[] = [Buffer.from(`X ${argv.length} ${Object.keys(env).length} ${data ? data.length : -1}\n`)];
    for (const item of items) parts.push(Buffer.from(`${item.length}\n`), item);
    if (data) parts.push(data);
    this.child.stdin!.write(Buffer.concat(parts));
    return { pid, done };
  }

  /**
   * Turns this idle helper into the bridge to a unix socket (see `bridge` in the script): from now on its
   * stdout is the socket's bytes, beginning with "OK" or "ERR <reason>". It never serves a command again.
   */
  takeStream(socketPath: string): { stdin: Writable; stdout: Readable; stop(): void } {
    this.busy = true;
    this.active();
    this.child.stdout!.removeAllListeners('data');
    const path = Buffer.from(socketPath, 'utf8');
    this.child.stdin!.write(Buffer.concat([Buffer.from(`S 0 0 -1\n${path.length}\n`), path]));
    // Stopped only while it runs: a pid gone may be reused by another process group.
    return { stdin: this.child.stdin!, stdout: this.child.stdout!, stop: () => this.alive && this.kill('SIGTERM') };
  }

  /** Ends the helper: at the end of its input it exits; a helper that does not is stopped with its group. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.active();
    this.child.stdin!.end();
    const force = setTimeout(() => this.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(force);
  }

  kill(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  private parse(greet: (ok: boolean) => void): void {
    for (;;) {
      if (this.header) {
        const { code, signal, out, err } = this.header;
        if (this.buffer.length < out + err) return;
        const stdout = Buffer.from(this.buffer.subarray(0, out));
        const stderr = Buffer.from(this.buffer.subarray(out, out + err));
        this.buffer = this.buffer.subarray(out + err);
        this.header = undefined;
        const pending = this.pending;
        this.pending = undefined;
        pending?.done(code >= 0 ? { exitCode: code, stdout, stderr } : { signal: SIGNAL_NAMES.get(signal) ?? 'SIGKILL', stdout, stderr });
        continue;
      }
      const nl = this.buffer.indexOf(10);
      if (nl < 0) return;
      const line = this.buffer.subarray(0, nl).toString('latin1');
      this.buffer = this.buffer.subarray(nl + 1);
      if (!this.greeted) {
        this.greeted = line === 'pgplay-exec 1';
        greet(this.greeted);
        if (!this.greeted) this.kill('SIGKILL');
        continue;
      }
      const [tag, ...fields] = line.split(' ');
      if (tag === 'P') this.pending?.pid(Number(fields[0]));
      else if (tag === 'D') this.header = { code: Number(fields[0]), signal: Number(fields[1]), out: Number(fields[2]), err: Number(fields[3]) };
    }
  }

  /** A started helper waits for its first command without keeping pgplay running. */
  release(): void {
    this.idle();
  }

  /** An idle helper does not keep pgplay running (a run that ends forgets no process: close stops it). */
  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref?(): void }).unref?.();
    (this.child.stdin as unknown as { unref?(): void }).unref?.();
  }

  private active(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref?(): void }).ref?.();
    (this.child.stdin as unknown as { ref?(): void }).ref?.();
  }
}

/** Most helpers per user: beyond, commands run directly (a burst of parallel commands is rare and short). */
const MAX_SERVERS = 4;

/**
 * The helpers of one transport, per user: a command goes to an idle helper, else to a new one; undefined
 * when none can take it (perl missing, too many busy), and the caller runs the command directly.
 */
export class ExecServers {
  private readonly servers = new Map<string, ExecServer[]>();
  private readonly broken = new Set<string>();
  /** Helpers that became socket bridges: stopped with the others. */
  private readonly streams = new Set<ExecServer>();
  /** close() or killAll() ran: no replacement helper starts after it (nothing would stop it). */
  private closed = false;

  /** `start(user)`: the argv that starts a helper as that user (runuser -u user -- perl -e ...). */
  constructor(private readonly start: (user: string, helper: string[]) => string[]) {}

  async run(user: string, argv: string[], env: Record<string, string>, input: string | Buffer | undefined): Promise<ServedCommand | undefined> {
    const server = await this.idleServer(user);
    return server?.run(argv, env, input);
  }

  /**
   * A byte stream to the unix socket `socketPath`, opened by one of `user`'s helpers, which becomes the
   * bridge (no runuser, shell or perl started for it); undefined when no helper can take it. A
   * replacement helper starts beside the connection, for the user's next command: once the bridge's
   * request is out (the next turn of the event loop), so that the helper connects and the server forks
   * its backend while this process forks the replacement, not after (a fork of node is 10-30 ms here).
   */
  async openSocket(user: string, socketPath: string): Promise<{ stdin: Writable; stdout: Readable; stop(): void } | undefined> {
    const server = await this.idleServer(user);
    if (!server) return undefined;
    const pool = this.servers.get(user)!;
    pool.splice(pool.indexOf(server), 1);
    this.streams.add(server);
    void server.exited.then(() => this.streams.delete(server));
    const stream = server.takeStream(socketPath);
    setImmediate(() => {
      // Not after close (nothing would stop it), nor when a command meanwhile started one of its own.
      if (!this.closed && this.servers.get(user) === pool && !pool.some((s) => s.usable || s.starting)) void this.startServer(user, pool, false);
    });
    return stream;
  }

  /**
   * Starts `user`'s first helper now, idle, when it has none: its runuser and perl start while the run
   * does other work, and its first command finds it ready. One that cannot start marks the user broken,
   * as it would on that first command (whose command then runs directly).
   */
  prestart(user: string): void {
    if (this.broken.has(user) || this.servers.get(user)?.length) return;
    const pool: ExecServer[] = [];
    this.servers.set(user, pool);
    void this.startServer(user, pool, false);
  }

  /** An idle helper of `user`, claimed (busy) for the caller; undefined when none can be had. */
  private async idleServer(user: string): Promise<ExecServer | undefined> {
    for (;;) {
      if (this.broken.has(user)) return undefined;
      const pool = this.servers.get(user) ?? [];
      this.servers.set(user, pool);
      for (let i = pool.length - 1; i >= 0; i--) if (!pool[i]!.usable && !pool[i]!.busy) pool.splice(i, 1);
      const idle = pool.find((s) => s.usable);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      // A replacement still starting is waited for rather than a second helper started beside it.
      const starting = pool.find((s) => s.starting);
      if (starting) {
        await starting.ready;
        continue;
      }
      if (pool.length >= MAX_SERVERS) return undefined;
      return this.startServer(user, pool, true);
    }
  }

  /** Starts a helper; `claim`: it stays busy for the caller, else it goes idle and waits for a command. */
  private async startServer(user: string, pool: ExecServer[], claim: boolean): Promise<ExecServer | undefined> {
    const server = new ExecServer(this.start(user, ['perl', '-e', SCRIPT]));
    server.busy = true;
    server.starting = true;
    pool.push(server);
    const ok = await server.ready;
    server.starting = false;
    if (!ok) {
      if (pool.includes(server)) pool.splice(pool.indexOf(server), 1);
      this.broken.add(user);
      return undefined;
    }
    if (!claim) {
      server.busy = false;
      // Nobody waits for it yet: it must not keep pgplay running.
      server.release();
    }
    return server;
  }

  /** Stops every helper (each exits at the end of its input). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.servers.values()].flat().concat([...this.streams]);
    this.servers.clear();
    this.streams.clear();
    await Promise.all(all.map((s) => s.stop()));
  }

  /** The process is leaving: no helper outlives it. */
  killAll(): void {
    this.closed = true;
    for (const s of [...this.servers.values()].flat().concat([...this.streams])) s.kill('SIGKILL');
  }
}
