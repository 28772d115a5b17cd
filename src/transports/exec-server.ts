import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import type { ChildOutcome } from './child.js';
import { PERL_SOCKET_BRIDGE } from './socket-bridge.js';

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
 * perl-base is on every Debian system, dpkg depends on it; without perl the helper does not start and
 * the transport runs its commands directly, as before.
 */
const SCRIPT = String.raw`
# Only perl's own operators: a helper starts for every user and host, and again for each connection, and
# every module is paid at each start (here POSIX ~13 ms, IO::Select ~5 ms, Fcntl ~3 ms, perl itself ~8 ms).
# So select() on bit vectors instead of IO::Select; setpgrp, open's dup and exit instead of POSIX's
# setsid, dup2 and _exit (nothing here is buffered or has an END block, so exit leaves nothing behind).
# Fcntl, Errno, IO::Handle (a file's sync) and Cwd (a link's target) are loaded where they are needed:
# %! would load Errno as the script compiles.
use strict;
$SIG{PIPE} = 'IGNORE';
binmode STDIN; binmode STDOUT;
sub rd { my $n = shift; my $b = ''; while (length($b) < $n) { my $r = sysread(STDIN, $b, $n - length($b), length($b)); finish() unless $r; } return $b; }
sub line { my $l = ''; while (1) { my $c; my $r = sysread(STDIN, $c, 1); finish() unless $r; return $l if $c eq "\n"; $l .= $c; } }
sub item { return rd(line()); }
sub say { my $s = shift; while (length $s) { my $w = syswrite(STDOUT, $s); exit(0) unless defined $w; substr($s, 0, $w) = ''; } }
say("pgplay-exec 1\n");
# A stream request: this helper becomes the byte bridge to a unix socket (PostgreSQL's), as this user, so
# the first SQL of a host needs no runuser, shell and perl of its own (socket-bridge.ts).
${PERL_SOCKET_BRIDGE}
# A bridge request on the spare channel (descriptor 3, a socket pair with pgplay that a local helper is
# started with): a process forked from this helper becomes the bridge there, and this helper goes on
# serving commands, so a connection uses up no helper. Between the two, a waiter: forked first, in a
# process group of its own that the bridge shares (pgplay signals them by that group, which the waiter
# holds until this helper reaps it), it answers the request, lets go of this helper's channel, waits for
# the bridge and then shuts the spare channel down: the bridge's exit alone, even by SIGKILL, would never
# reach pgplay, for this helper's runuser holds a copy of descriptor 3 for as long as the helper runs.
# The answer is a write's: P <the group>, then D with the status (127 when no bridge started; always off
# Linux, where WNOHANG, which the reaping below takes as 1, may be another number).
my %waiters;
# The descriptors this helper holds for processes it forks: its spare channel ($SPARE: 3 in a helper
# started with one) and the pairs it was started with (its arguments "channel,spare": 4,5 6,7 ...), each
# the channel and spare channel of a helper forked from it on request (fork_helper). Each is closed in
# whatever process is not its own (commands, bridges, waiters, other helpers), so that it ends when its
# process does; and once handed on it is forgotten here (its number may be reused by a later pipe).
my $SPARE = 3;
my @PAIRS = map { [split /,/] } grep { /^[0-9]+,[0-9]+$/ } @ARGV;
sub close_fd { my $fd = shift; if (defined $fd && open(my $h, '<&=', $fd)) { close($h); } }
sub close_spare { close_fd($SPARE); $SPARE = undef; }
sub close_pairs { close_fd($_) for map { @$_ } @PAIRS; @PAIRS = (); }
sub fork_bridge {
  my $path = shift;
  my $spare_fd = $SPARE;
  my $waiter = $^O eq 'linux' && defined $spare_fd ? fork() : undef;
  if (defined $waiter && $waiter == 0) {
    setpgrp(0, 0);
    close_pairs();
    my $pid = fork();
    if (defined $pid && $pid == 0) {
      open(my $spare, '+<&=', $spare_fd) or exit(1);
      open(STDIN, '<&', $spare) or exit(1); open(STDOUT, '>&', $spare) or exit(1); close($spare);
      binmode STDIN; binmode STDOUT;
      bridge($path);
    }
    say(defined $pid ? "P $$\nD 0 0 0 0\n" : "P 0\nD 127 0 0 0\n");
    # This helper's channel is not the waiter's to hold: the helper's end must not wait for it.
    close(STDIN); close(STDOUT);
    waitpid($pid, 0) if defined $pid;
    if (open(my $spare, '+<&=', $spare_fd)) { shutdown($spare, 2); }
    exit(0);
  }
  # The spare channel is the bridge's and its waiter's now, or nobody's.
  close_spare();
  if (defined $waiter) { $waiters{$waiter} = 1; } else { say("P 0\nD 127 0 0 0\n"); }
}
# A helper request (H) on one of this helper's pairs: a process forked from it serves commands on the
# pair's channel, as this user with everything runuser gave this helper, its spare channel the pair's
# other half; no runuser, perl or fork of pgplay is started for it. Its waiter, as a bridge's, answers
# here (P <the group>, D <status>), then waits for it and shuts the channel down: runuser holds a copy of
# it, so the helper's exit alone would never reach pgplay. The waiter ignores the signals that stop a
# helper (pgplay signals the group), so that it outlives the helper and ends its channel; SIGKILL ends
# both, and pgplay closes the channel itself. The forked helper returns 1, into the request loop.
sub fork_helper {
  my ($chan, $spare) = @_;
  my ($pair) = grep { $_->[0] == $chan && $_->[1] == $spare } @PAIRS;
  unless ($pair && $^O eq 'linux') { say("P 0\nD 127 0 0 0\n"); return 0; }
  @PAIRS = grep { $_ != $pair } @PAIRS;
  my $waiter = fork();
  if (defined $waiter && $waiter == 0) {
    setpgrp(0, 0);
    close_spare(); close_pairs();
    my $pid = fork();
    if (defined $pid && $pid == 0) {
      open(my $c, '+<&=', $chan) or exit(1);
      open(STDIN, '<&', $c) or exit(1); open(STDOUT, '>&', $c) or exit(1); close($c);
      binmode STDIN; binmode STDOUT;
      $SPARE = $spare; %waiters = ();
      say("pgplay-exec 1\n");
      return 1;
    }
    $SIG{$_} = 'IGNORE' for qw(HUP INT TERM);
    say(defined $pid ? "P $$\nD 0 0 0 0\n" : "P 0\nD 127 0 0 0\n");
    close(STDIN); close(STDOUT); close_fd($spare);
    waitpid($pid, 0) if defined $pid;
    if (open(my $c, '+<&=', $chan)) { shutdown($c, 2); }
    exit(0);
  }
  close_fd($chan); close_fd($spare);
  if (defined $waiter) { $waiters{$waiter} = 1; } else { say("P 0\nD 127 0 0 0\n"); }
  return 0;
}
# Waiters whose bridge has ended, reaped between requests (only this helper's own: no command runs now).
sub reap_waiters { for my $w (keys %waiters) { delete $waiters{$w} if waitpid($w, 1) != 0; } }
# At the end of its input: the waiters that have ended are reaped; the others are left to init rather
# than waited for (pgplay ends their bridges and helpers at the same time, and waits for this one's exit).
sub finish { reap_waiters(); exit(0); }
# A write request: the atomic write of file-commands.ts's ATOMIC_WRITE_SCRIPT done here, by this user, with
# no process started (that script starts eight: mktemp, cat, wc, chmod, sync, mv, sync and its shell). The
# same steps in the same order: a link that resolves is written through; a temp file beside the target,
# 0600 from its creation (O_EXCL); owner then mode (chown clears set-id bits); fsync; the previous file kept
# by a hard link (cp -p where none can be made); rename; the directory fsynced. The data came whole in the
# request (a lost connection ends this helper before it is read), so nothing is written from a part of it.
# Answers as a command would: status, the kept file's path on stdout, the reason on stderr.
my $wtmp;
sub rand6 { return join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[int rand 62] } 1 .. 6); }
sub id_of {
  my ($name, $kind) = @_;
  my $id = $kind eq 'user' ? getpwnam($name) : getgrnam($name);
  return $id if defined $id;
  return $name if $name =~ /^[0-9]+$/;
  die "chown: invalid $kind: '$name'\n";
}
sub write_file {
  my ($dest, $mode, $owner, $group, $keep, $suffix, $data) = @_;
  if (-l $dest && -e $dest) { require Cwd; $dest = Cwd::abs_path($dest); }
  return (1, '', "it exists and is not a regular file\n") if -e $dest && !-f _;
  return (1, '', "not a file path (it ends with /)\n") if $dest =~ m{/$};
  my ($dir, $base) = $dest =~ m{^(.*)/([^/]*)$} ? (length $1 ? $1 : '/', $2) : ('.', $dest);
  my $fh;
  for (1 .. 100) {
    my $name = "$dir/.$base.pgplay-tmp-" . rand6();
    # Only a file this helper created is ever its temp file (the signal handler removes $wtmp).
    require Fcntl;
    if (sysopen($fh, $name, Fcntl::O_WRONLY() | Fcntl::O_CREAT() | Fcntl::O_EXCL(), 0600)) { $wtmp = $name; last; }
    my ($why, $errno) = ("$!", $! + 0);
    undef $fh;
    require Errno;
    return (1, '', "mktemp: failed to create file via template '$dir/.$base.pgplay-tmp-XXXXXX': $why\n") unless $errno == Errno::EEXIST();
  }
  return (1, '', "mktemp: too many temp files in $dir\n") unless $fh;
  my ($prev, $prevtmp) = ('');
  my $done = eval {
    binmode $fh;
    my $off = 0;
    while ($off < length $data) {
      my $w = syswrite($fh, $data, length($data) - $off, $off);
      die "write error: $!\n" unless defined $w;
      $off += $w;
    }
    my @st = stat($dest);
    if (@st) {
      $mode = sprintf('%o', $st[2] & 07777) if $mode eq '';
      $owner = $st[4] if $owner eq '';
      $group = $st[5] if $group eq '';
    } else {
      $mode = sprintf('%o', 0666 & ~umask()) if $mode eq '';
    }
    if ($owner ne '' || $group ne '') {
      my ($uid, $gid) = ($owner eq '' ? -1 : id_of($owner, 'user'), $group eq '' ? -1 : id_of($group, 'group'));
      chown($uid, $gid, $wtmp) or die "chown: changing ownership of '$wtmp': $!\n";
    }
    chmod(oct($mode), $wtmp) or die "chmod: changing permissions of '$wtmp': $!\n";
    require IO::Handle;
    $fh->sync or system('sync');
    close($fh) or die "close: $!\n";
    if ($keep ne '' && -e $dest) {
      $prevtmp = "$dir/.$base$suffix.pgplay-tmp-" . rand6();
      link($dest, $prevtmp) or system('cp', '-p', '--', $dest, $prevtmp) == 0 or die "cannot keep a copy of $dest\n";
      rename($prevtmp, "$dest$suffix") or die "mv: cannot move '$prevtmp' to '$dest$suffix': $!\n";
      $prevtmp = undef;
      $prev = "$dest$suffix\n";
    }
    rename($wtmp, $dest) or die "mv: cannot move '$wtmp' to '$dest': $!\n";
    $wtmp = undef;
    1;
  };
  unless ($done) {
    my $err = $@;
    close($fh);
    unlink($wtmp) if defined $wtmp;
    unlink($prevtmp) if defined $prevtmp;
    $wtmp = undef;
    return (1, '', $err);
  }
  require Fcntl;
  if (sysopen(my $dh, $dir, Fcntl::O_RDONLY())) { $dh->sync; close($dh); }
  return (0, $prev, '');
}
# A hang-up or a kill while a write is half done leaves no temp file (as the script's trap).
$SIG{$_} = sub { unlink($wtmp) if defined $wtmp; exit(1); } for qw(HUP INT TERM);
while (1) {
  reap_waiters() if %waiters;
  my ($tag, $na, $ne, $ni) = split / /, line();
  if ($tag eq 'S') { close_pairs(); bridge(item()); }
  if ($tag eq 'B') { fork_bridge(item()); next; }
  if ($tag eq 'H') { fork_helper(item(), item()); next; }
  my @argv = map { item() } 1 .. $na;
  my @env = map { item() } 1 .. $ne;
  my $in = $ni >= 0 ? rd($ni) : undef;
  if ($tag eq 'W') {
    my ($code, $out, $err) = write_file(@argv, $in);
    say("P 0\n");
    say("D $code 0 " . length($out) . " " . length($err) . "\n" . $out . $err);
    next;
  }
  pipe(my $or, my $ow) or die; pipe(my $er, my $ew) or die;
  my ($ir, $iw); if (defined $in) { pipe($ir, $iw) or die; }
  my $pid = fork();
  if (!defined $pid) { say("D 127 0 0 " . length("pgplay: fork: $!\n") . "\npgplay: fork: $!\n"); next; }
  if ($pid == 0) {
    # A process group of its own, as the direct path's detached child, which the transport stops by pid.
    setpgrp(0, 0);
    $SIG{PIPE} = 'DEFAULT';
    # Reopened in place: perl keeps STDIN, STDOUT and STDERR on descriptors 0, 1 and 2.
    if (defined $in) { open(STDIN, '<&', $ir); } else { open(STDIN, '<', '/dev/null'); }
    open(STDOUT, '>&', $ow); open(STDERR, '>&', $ew);
    # The spare channels are no command's (they are not close-on-exec: this helper got them from its parent).
    close_spare(); close_pairs();
    for my $kv (@env) { my ($k, $v) = split /=/, $kv, 2; $ENV{$k} = $v; }
    exec { $argv[0] } @argv;
    my ($why, $errno) = ("$!", $! + 0);
    require Errno;
    my $denied = $errno == Errno::EACCES();
    syswrite(STDERR, "pgplay: failed to execute $argv[0]: $why\n");
    exit($denied ? 126 : 127);
  }
  close $ow; close $ew; close $ir if defined $ir;
  say("P $pid\n");
  my ($out, $err) = ('', '');
  my ($ofd, $efd, $ifd) = (fileno($or), fileno($er));
  my ($rin, $win) = ('', ''); vec($rin, $ofd, 1) = 1; vec($rin, $efd, 1) = 1;
  if (defined $iw) { if (length $in) { $ifd = fileno($iw); vec($win, $ifd, 1) = 1; } else { close $iw; } }
  while ($rin =~ /[^\0]/ || $win =~ /[^\0]/) {
    # An interrupted select (EINTR, 4 on Linux) is asked again; another error ends the reading, and the
    # command's status and what it printed so far are answered.
    my $ready = select(my $rout = $rin, my $wout = $win, undef, undef);
    if ($ready < 0) { next if $! == 4; last; }
    if (defined $ifd && vec($wout, $ifd, 1)) {
      my $n = syswrite($iw, $in, 65536);
      substr($in, 0, $n) = '' if defined $n;
      if (!defined $n || !length $in) { vec($win, $ifd, 1) = 0; close $iw; undef $ifd; }
    }
    for my $fd ($ofd, $efd) {
      next unless vec($rin, $fd, 1) && vec($rout, $fd, 1);
      my $buf; my $n = sysread($fd == $ofd ? $or : $er, $buf, 65536);
      if (!$n) { vec($rin, $fd, 1) = 0; close($fd == $ofd ? $or : $er); next; }
      if ($fd == $ofd) { $out .= $buf; } else { $err .= $buf; }
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
  /**
   * Ends the helper running it, for a command that outlived every signal: `done` then settles with a
   * start error (EPIPE) and the helper is never used again.
   */
  abandon(): void;
}

/**
 * A running helper as its pool sees it: the two pipes of its protocol and how to end it. A local child
 * process (spawnedHelper) or, over SSH, a session channel running the same script (ssh.ts).
 */
export interface HelperLink {
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Resolves once the helper is gone (exited, its channel closed); never rejects. */
  readonly gone: Promise<void>;
  /** Ends it at once; a signal where it is a local process group, else its session is closed. */
  kill(signal: NodeJS.Signals): void;
  /** Whether it keeps pgplay running: an idle helper must not (close() stops it). */
  ref(): void;
  unref(): void;
  /**
   * A local helper's spare channel (its descriptor 3, a socket pair): where a process forked from the helper
   * can be a connection's bridge while the helper goes on serving commands (`fork_bridge` in the script).
   */
  readonly spare?: Socket;
  /**
   * A local helper's pairs of socket pairs (descriptors 4 and 5, 6 and 7, ...): on each a helper forked
   * from this one can serve commands, the pair's second socket its spare channel (`fork_helper`).
   */
  readonly pairs?: readonly ForkPair[];
}

/** A pair a helper was started with: a forked helper's channel and spare channel, by their descriptors in the helper. */
export interface ForkPair {
  readonly fds: readonly [number, number];
  readonly channel: Socket;
  readonly spare: Socket;
}

/** A bridge to a unix socket as its pool hands it out: its input and output, and how to stop it. */
export interface BridgeStream {
  stdin: Writable;
  stdout: Readable;
  stop(): void;
}

/** A bridge forked by a helper on its spare channel (ExecServer.forkBridge). */
interface ForkedBridge extends BridgeStream {
  readonly ended: Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Starts a helper as `user` running `helper` (perl -e SCRIPT); undefined when it cannot be started now
 * (no session slot free), which is not held against the user: its command runs directly, and a later one
 * tries again. A helper that starts but never greets (no perl) marks the user's helpers as unavailable.
 */
export type LaunchHelper = (user: string, helper: string[]) => HelperLink | undefined | Promise<HelperLink | undefined>;

/**
 * A helper as a local child process in its own process group (argv: runuser -u user -- perl -e ...).
 * `forkable`: how many helpers may be forked from it (ExecServer.forkHelper), each on a pair of socket
 * pairs it is started with, named to the script by its last arguments.
 */
export function spawnedHelper(argv: string[], forkable = 0): HelperLink {
  const pairFds = Array.from({ length: forkable }, (_, i) => [4 + 2 * i, 5 + 2 * i] as const);
  const args = [...argv.slice(1), ...pairFds.map(([channel, spare]) => `${channel},${spare}`)];
  // In /, as the direct path runs another user's commands: that user may not enter pgplay's working directory.
  const child: ChildProcess = spawn(argv[0]!, args, { cwd: '/', stdio: ['pipe', 'pipe', 'ignore', 'pipe', ...pairFds.flat().map(() => 'pipe' as const)], detached: true });
  child.stdin!.on('error', () => {});
  // Nobody's until a bridge or a forked helper takes them; they must not keep pgplay running meanwhile.
  const idleSocket = (fd: number) => {
    const socket = child.stdio[fd] as Socket;
    socket.on('error', () => {});
    socket.unref();
    return socket;
  };
  const spare = idleSocket(3);
  const pairs = pairFds.map(([channel, spareFd]) => ({ fds: [channel, spareFd] as const, channel: idleSocket(channel), spare: idleSocket(spareFd) }));
  // Gone once it has exited and its output is read to the end: not on the child's 'close', which waits
  // for every descriptor it was given, and a helper or bridge forked from it holds its pair or spare
  // channel for as long as that one runs.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const outputEnded = new Promise<void>((resolve) => child.stdout!.once('close', () => resolve()));
  const gone = new Promise<void>((resolve) => {
    child.once('error', () => resolve());
    void Promise.all([exited, outputEnded]).then(() => resolve());
  });
  const streams = [child.stdout, child.stdin] as unknown as Array<{ ref?(): void; unref?(): void }>;
  return {
    stdin: child.stdin!,
    stdout: child.stdout!,
    gone,
    kill: (signal) => child.pid !== undefined && signalGroup(child.pid, signal),
    ref: () => {
      child.ref();
      for (const s of streams) s.ref?.();
    },
    unref: () => {
      child.unref();
      for (const s of streams) s.unref?.();
    },
    spare,
    pairs,
  };
}

/**
 * A helper forked on one of its parent's pairs, as its pool sees it: the pair's channel is its input and
 * output, and it is gone once that channel closes (its waiter shuts it down when it exits). It and its
 * waiter are signalled by their group while the channel is open (the waiter holds the group until the
 * parent reaps it); SIGKILL ends the waiter too, so the channel is then closed here.
 */
function forkedHelperLink(pair: ForkPair, group: number): HelperLink {
  const { channel, spare } = pair;
  // Referenced, as a spawned helper's process is, until its pool releases it: a caller may be waiting for
  // its greeting, and nothing else may keep pgplay running meanwhile (the channel was idle until now).
  channel.ref();
  let open = true;
  const gone = new Promise<void>((resolve) =>
    channel.once('close', () => {
      open = false;
      resolve();
    }),
  );
  return {
    stdin: channel,
    stdout: channel,
    gone,
    kill: (signal) => {
      if (open) signalGroup(group, signal);
      if (signal === 'SIGKILL') channel.destroy();
    },
    ref: () => channel.ref(),
    unref: () => channel.unref(),
    spare,
  };
}

/** Signals the process group `pgid`; one already gone is no error. */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

interface Pending {
  pid(pid: number | undefined): void;
  done(outcome: ChildOutcome): void;
}

/** How a helper's start ended: greeted, not started now (no slot: try again later), or unusable (no perl). */
type Start = 'ready' | 'not-now' | 'failed';

/** One helper: a Perl loop running one command at a time. */
class ExecServer {
  busy = false;
  /** Started, not yet greeted. */
  starting = false;
  readonly ready: Promise<Start>;
  private link: HelperLink | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private greeted = false;
  private pending: Pending | undefined;
  private header: { code: number; signal: number; out: number; err: number } | undefined;
  private alive = true;
  /** Asked to end before its link was up: ended as soon as it is. */
  private ended: NodeJS.Signals | 'stop' | undefined;
  /** Its spare channel went to a bridge (or was given up). */
  private spareTaken = false;
  /** The pairs no forked helper has taken yet (forkHelper). */
  private pairsLeft: ForkPair[] = [];
  /** The forks asked of it, one at a time. */
  private forks: Promise<unknown> = Promise.resolve();
  /** Forks asked and not yet answered: no command takes it meanwhile (each waits for a helper forked for it). */
  private forksPending = 0;
  /** stop() was called: it stays referenced until it is gone (nothing may let pgplay exit before), and forks no more. */
  private stopping = false;
  readonly exited: Promise<void>;

  constructor(launched: HelperLink | undefined | Promise<HelperLink | undefined>) {
    let greet!: (start: Start) => void;
    this.ready = new Promise((resolve) => (greet = resolve));
    this.exited = Promise.resolve(launched)
      .catch(() => undefined)
      .then(async (link) => {
        if (!link) {
          this.alive = false;
          greet('not-now');
          return;
        }
        this.link = link;
        this.pairsLeft = [...(link.pairs ?? [])];
        link.stdout.on('data', (chunk: Buffer) => {
          this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
          this.parse((ok) => greet(ok ? 'ready' : 'failed'));
        });
        if (this.ended === 'stop') link.stdin.end();
        else if (this.ended) link.kill(this.ended);
        // Referenced until its first command is done: the caller is waiting on it.
        await link.gone;
        this.alive = false;
        greet('failed');
        const pending = this.pending;
        this.pending = undefined;
        pending?.pid(undefined);
        pending?.done({ startError: Object.assign(new Error('the command helper exited'), { code: 'EPIPE' }), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });
      });
  }

  get usable(): boolean {
    return this.alive && !this.busy && this.forksPending === 0;
  }

  /** Exited, or never started: out of its pool. */
  get gone(): boolean {
    return !this.alive;
  }

  /** Whether a bridge can still be forked on its spare channel. */
  get spareFree(): boolean {
    return this.link?.spare !== undefined && !this.spareTaken;
  }

  run(argv: string[], env: Record<string, string>, input: string | Buffer | undefined): ServedCommand {
    return this.request('X', argv, env, input);
  }

  /** The script's atomic write (`write_file`): fields as ATOMIC_WRITE_SCRIPT's arguments (writeFileFields). */
  write(fields: string[], data: string | Buffer): ServedCommand {
    return this.request('W', fields, {}, data);
  }

  /** Whether a helper may be forked from it: a pair is left, or it is not up yet and may have one. */
  get mayFork(): boolean {
    return this.alive && (this.link === undefined || this.pairsLeft.length > 0);
  }

  /**
   * A helper forked from this one on one of its pairs (`fork_helper` in the script), as its link: it runs
   * as this helper's user with all runuser gave it, and costs no runuser, perl or fork of this process.
   * Undefined when none can be forked now: no pair left, this helper not up, or busy with a command (the
   * caller launches one instead of waiting). One fork at a time, each claiming this helper for its request.
   */
  forkHelper(): Promise<HelperLink | undefined> {
    this.forksPending++;
    const turn = this.forks.then(async () => {
      if ((await this.ready) !== 'ready' || this.busy || !this.alive || this.stopping) return undefined;
      const pair = this.pairsLeft.shift();
      if (!pair) return undefined;
      const command = this.request('H', pair.fds.map(String), {}, undefined);
      const [group, outcome] = await Promise.all([command.pid, command.done]);
      if (!group || outcome.exitCode !== 0) {
        pair.channel.destroy();
        pair.spare.destroy();
        return undefined;
      }
      return forkedHelperLink(pair, group);
    });
    this.forks = turn.catch(() => undefined).finally(() => this.forksPending--);
    return this.forks.then(() => turn);
  }

  private request(tag: 'X' | 'W' | 'B' | 'H', argv: string[], env: Record<string, string>, input: string | Buffer | undefined): ServedCommand {
    const link = this.link!;
    this.busy = true;
    link.ref();
    let setPid!: (pid: number | undefined) => void;
    let finish!: (outcome: ChildOutcome) => void;
    const pid = new Promise<number | undefined>((resolve) => (setPid = resolve));
    const done = new Promise<ChildOutcome>((resolve) => (finish = resolve));
    this.pending = {
      pid: setPid,
      done: (outcome) => {
        this.busy = false;
        if (!this.stopping) link.unref();
        finish(outcome);
      },
    };
    const data = input === undefined ? undefined : Buffer.isBuffer(input) ? input : Buffer.from(input, 'utf8');
    const items = [...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].map((s) => Buffer.from(s, 'utf8'));
    const parts: Buffer[] = [Buffer.from(`${tag} ${argv.length} ${Object.keys(env).length} ${data ? data.length : -1}\n`)];
    for (const item of items) parts.push(Buffer.from(`${item.length}\n`), item);
    if (data) parts.push(data);
    link.stdin.write(Buffer.concat(parts));
    return { pid, done, abandon: () => this.kill('SIGKILL') };
  }

  /**
   * A process forked from this idle helper (claimed by the caller) becomes the bridge to a unix socket on
   * the helper's spare channel (its bytes begin with "OK" or "ERR <reason>", as takeStream's), and the
   * helper serves commands again once it is forked. 'no-spare': none left, and the helper is still the
   * caller's; 'failed': no bridge started, and the helper went back to its pool. `ended`: once the bridge
   * and its waiter are gone (the channel closed).
   */
  async forkBridge(socketPath: string): Promise<ForkedBridge | 'no-spare' | 'failed'> {
    const spare = this.link?.spare;
    if (!spare || this.spareTaken) return 'no-spare';
    this.spareTaken = true;
    const command = this.request('B', [socketPath], {}, undefined);
    const [group, outcome] = await Promise.all([command.pid, command.done]);
    if (!group || outcome.exitCode !== 0) {
      spare.destroy();
      return 'failed';
    }
    spare.ref();
    let open = true;
    const ended = new Promise<void>((resolve) => spare.once('close', () => resolve()));
    void ended.then(() => (open = false));
    // The bridge and its waiter, by their group, which the waiter holds until its helper reaps it: signalled
    // only while the channel is open (the waiter closes it last).
    const kill = (signal: NodeJS.Signals) => open && signalGroup(group, signal);
    return { stdin: spare, stdout: spare, stop: () => kill('SIGTERM'), ended, kill };
  }

  /**
   * Turns this idle helper into the bridge to a unix socket (see `bridge` in the script): from now on its
   * stdout is the socket's bytes, beginning with "OK" or "ERR <reason>". It never serves a command again.
   */
  takeStream(socketPath: string): BridgeStream {
    const link = this.link!;
    this.busy = true;
    link.ref();
    link.stdout.removeAllListeners('data');
    const path = Buffer.from(socketPath, 'utf8');
    link.stdin.write(Buffer.concat([Buffer.from(`S 0 0 -1\n${path.length}\n`), path]));
    // Stopped only while it runs: a pid gone may be reused by another process group.
    return { stdin: link.stdin, stdout: link.stdout, stop: () => this.alive && this.kill('SIGTERM') };
  }

  /** Ends the helper: at the end of its input it exits; a helper that does not is stopped with its group. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (!this.alive) return;
    if (!this.link) {
      this.ended ??= 'stop';
      await this.exited;
      return;
    }
    this.link.ref();
    this.link.stdin.end();
    const force = setTimeout(() => this.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(force);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.link) this.link.kill(signal);
    else this.ended = signal;
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
      // A write runs in the helper itself: no process of its own (pid 0).
      if (tag === 'P') this.pending?.pid(Number(fields[0]) || undefined);
      else if (tag === 'D') this.header = { code: Number(fields[0]), signal: Number(fields[1]), out: Number(fields[2]), err: Number(fields[3]) };
    }
  }

  /** A started helper waits for its first command without keeping pgplay running. */
  release(): void {
    if (!this.stopping) this.link?.unref();
  }
}

/** Most helpers per user by default: beyond, commands run directly (a burst of parallel commands is rare and short). */
export const MAX_SERVERS = 4;

/**
 * The helpers of one transport, per user: a command goes to an idle helper, else to a new one; undefined
 * when none can take it (perl missing, too many busy, no slot for another), and the caller runs the
 * command directly.
 */
export class ExecServers {
  private readonly servers = new Map<string, ExecServer[]>();
  private readonly broken = new Set<string>();
  /** Helpers that became socket bridges: stopped with the others. */
  private readonly streams = new Set<ExecServer>();
  /** Bridges forked by helpers on their spare channels: ended with the helpers. */
  private readonly forkedBridges = new Set<ForkedBridge>();
  /** close() or killAll() ran: no replacement helper starts after it (nothing would stop it). */
  private closed = false;
  /** How many times prestart() was called for each user. */
  private readonly prestarts = new Map<string, number>();

  /**
   * `launch(user, helper)` starts a helper as that user (locally: spawnedHelper of runuser -u user --
   * perl -e ...); `maxPerUser`: how many of one user's helpers may exist at once (asked each time where
   * it grows with the transports that share them).
   */
  constructor(
    private readonly launch: LaunchHelper,
    private readonly maxPerUser: number | (() => number) = MAX_SERVERS,
    /**
     * Whether `launch` starts helpers with pairs to fork others on (spawnedHelper's `forkable`; not over
     * SSH): only then does a new helper wait for one still starting, to be forked from it.
     */
    private readonly forking = false,
  ) {}

  private limit(): number {
    return typeof this.maxPerUser === 'number' ? this.maxPerUser : this.maxPerUser();
  }

  async run(user: string, argv: string[], env: Record<string, string>, input: string | Buffer | undefined): Promise<ServedCommand | undefined> {
    const server = await this.idleServer(user);
    return server?.run(argv, env, input);
  }

  /** An atomic file write done by one of `user`'s helpers itself (no process started); undefined as run(). */
  async write(user: string, fields: string[], data: string | Buffer): Promise<ServedCommand | undefined> {
    const server = await this.idleServer(user);
    return server?.write(fields, data);
  }

  /**
   * A byte stream to the unix socket `socketPath`, opened by one of `user`'s helpers (no runuser, shell or
   * perl started for it); undefined when no helper can take it. A helper with its spare channel free
   * forks the bridge there and serves commands again. Else the helper becomes the bridge, and a
   * replacement helper starts beside the connection, for the user's next command: once the bridge's
   * request is out (the next turn of the event loop), so that the helper connects and the server forks
   * its backend while this process forks the replacement, not after (a fork of node is 10-30 ms here).
   */
  async openSocket(user: string, socketPath: string): Promise<BridgeStream | undefined> {
    const server = await this.idleServer(user, (s) => s.spareFree);
    if (!server) return undefined;
    const forked = await server.forkBridge(socketPath);
    // A helper whose bridge could not start went back to the pool, its spare given up: ask again.
    if (forked === 'failed') return this.openSocket(user, socketPath);
    if (forked !== 'no-spare') {
      // close() ran meanwhile: nothing would end this bridge later.
      if (this.closed) {
        forked.stop();
        forked.stdin.destroy();
        return undefined;
      }
      this.forkedBridges.add(forked);
      void forked.ended.then(() => this.forkedBridges.delete(forked));
      return forked;
    }
    // No spare channel left (as over SSH): the helper, still claimed, becomes the bridge itself; unless
    // close() ran meanwhile, which stops it with the others.
    if (this.closed) return undefined;
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
   * Starts one of `user`'s helpers now, idle, unless the user already has one for every call so far: it
   * starts while the run does other work, and a first command finds it ready. Helpers shared by several
   * transports (a run's hosts on this machine) keep one per transport that asked, for their facts are
   * read at once. One that cannot start marks the user broken, as it would on that first command (whose
   * command then runs directly).
   */
  prestart(user: string): void {
    const wanted = (this.prestarts.get(user) ?? 0) + 1;
    this.prestarts.set(user, wanted);
    if (this.closed || this.broken.has(user)) return;
    const pool = this.servers.get(user) ?? [];
    this.servers.set(user, pool);
    if (pool.length >= Math.min(wanted, this.limit())) return;
    void this.startServer(user, pool, false);
  }

  /** Ends the helpers that wait for a command (their session slots are wanted for something else). */
  stopIdle(): void {
    for (const pool of this.servers.values()) {
      for (const server of pool.filter((s) => s.usable)) {
        pool.splice(pool.indexOf(server), 1);
        void server.stop();
      }
    }
  }

  /** An idle helper of `user` (one that `prefer`s first), claimed (busy) for the caller; undefined when none can be had. */
  private async idleServer(user: string, prefer: (server: ExecServer) => boolean = () => true): Promise<ExecServer | undefined> {
    for (;;) {
      if (this.closed || this.broken.has(user)) return undefined;
      const pool = this.servers.get(user) ?? [];
      this.servers.set(user, pool);
      for (let i = pool.length - 1; i >= 0; i--) if (pool[i]!.gone) pool.splice(i, 1);
      const idle = pool.find((s) => s.usable && prefer(s)) ?? pool.find((s) => s.usable);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      // A replacement still starting is waited for rather than a second helper started beside it.
      const starting = pool.find((s) => s.starting);
      if (starting) {
        if ((await starting.ready) === 'not-now') return undefined;
        continue;
      }
      if (pool.length >= this.limit()) return undefined;
      return this.startServer(user, pool, true);
    }
  }

  /** Starts a helper; `claim`: it stays busy for the caller, else it goes idle and waits for a command. */
  private async startServer(user: string, pool: ExecServer[], claim: boolean): Promise<ExecServer | undefined> {
    const server = new ExecServer(this.forkOrLaunch(user, [...pool]));
    server.busy = true;
    server.starting = true;
    pool.push(server);
    const start = await server.ready;
    server.starting = false;
    if (start !== 'ready') {
      if (pool.includes(server)) pool.splice(pool.indexOf(server), 1);
      if (start === 'failed') this.broken.add(user);
      return undefined;
    }
    if (!claim) {
      server.busy = false;
      // Nobody waits for it yet: it must not keep pgplay running.
      server.release();
    }
    return server;
  }

  /**
   * A new helper of `user`'s: forked from one of `pool` that can (the run's first helper of the user, while
   * it waits for its first command: the prestarted helpers of a run's hosts on this machine), else launched.
   */
  private async forkOrLaunch(user: string, pool: readonly ExecServer[]): Promise<HelperLink | undefined> {
    for (const parent of this.forking ? pool.filter((s) => s.mayFork) : []) {
      const link = await parent.forkHelper();
      if (link) return link;
    }
    return this.closed ? undefined : this.launch(user, ['perl', '-e', SCRIPT]);
  }

  /** Stops every helper (each exits at the end of its input). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.servers.values()].flat().concat([...this.streams]);
    const bridges = [...this.forkedBridges];
    this.servers.clear();
    this.streams.clear();
    this.forkedBridges.clear();
    await Promise.all([
      ...all.map((s) => s.stop()),
      // At the end of its input a bridge half-closes the socket and exits once the server closes. One that
      // does not is killed, and its channel closed here: a killed bridge cannot end it (see fork_bridge).
      ...bridges.map(async (b) => {
        b.stdin.end();
        let force: NodeJS.Timeout | undefined;
        const killed = new Promise<void>((resolve) => {
          force = setTimeout(() => {
            b.kill('SIGKILL');
            b.stdin.destroy();
            resolve();
          }, 3000);
        });
        await Promise.race([b.ended, killed]);
        clearTimeout(force);
      }),
    ]);
  }

  /** The process is leaving: no helper outlives it. */
  killAll(): void {
    this.closed = true;
    for (const s of [...this.servers.values()].flat().concat([...this.streams])) s.kill('SIGKILL');
    for (const b of this.forkedBridges) b.kill('SIGKILL');
  }
}
