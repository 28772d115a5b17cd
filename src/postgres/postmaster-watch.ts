/**
 * When a server that pg_ctl is starting is up, or one it is stopping is gone, seen on its host as it happens.
 *
 * `pg_ctl start -w` (and restart) and `pg_ctl stop -w` look at postmaster.pid every 100 ms (PostgreSQL's
 * WAITS_PER_SEC) and exit at the first look after what they wait for: measured on the benchmark's lab,
 * 47-126 ms after the postmaster wrote that it is done starting and 46-153 ms after a stopped one removed
 * its postmaster.pid (the rest of the 100 ms, then pg_ctl's and runuser's exits). What a step does after
 * (reading the server it started or stopped; after a start, the one-primary invariant's read of the
 * others) need not wait for that. A watcher on the host reads the same file every 10 ms and says when it
 * sees what pg_ctl waits for; pg_ctl's exit stays the verdict (pg-ctl.ts).
 *
 * `up`, pg_ctl's start test (wait_for_postmaster_start): the file's 8th line, the postmaster's status, is
 * `ready` (it accepts connections: a primary, or a hot standby) or `standby` (archive recovery without
 * hot_standby), and the postmaster is the child pg_ctl forked. The watcher, which is not pg_ctl, takes a
 * postmaster that is alive, whose parent process is a pg_ctl (on Linux, where /proc says so), that started
 * no earlier than two seconds before the watcher did (pg_ctl allows the same two seconds) and that is not the
 * postmaster a restart replaces. Servers older than PostgreSQL 10 write no status line; pgplay starts no
 * watcher there.
 *
 * `gone`, pg_ctl's stop test (wait_for_postmaster_stop): the file is gone (the postmaster removes it as the
 * last thing it does). The watcher takes only a file it saw and then found missing (ENOENT): a directory
 * that went away or a failed look is not a stopped server.
 *
 * Only perl's own operators (no module): the exec helpers already need nothing else of a host.
 */
export type PostmasterWatch = 'up' | 'gone';

/** $ARGV[0] up or gone, [1] postmaster.pid, [2] a pid that does not count (a restart's old postmaster; 0: none), [3] seconds to watch. */
export const POSTMASTER_WATCH_SCRIPT = `
$| = 1;
my ($mode, $file, $old, $limit) = @ARGV;
my $since = $^T - 2;
my $end = $^T + $limit;
my $proc = -d '/proc/self';
my $seen = 0;
# The parent of a process, and the name of the command a process runs, as Linux's /proc tells them.
sub parent { my $p = shift; open(my $s, '<', "/proc/$p/stat") or return 0; my $l = <$s>; close($s); return ($l =~ /.*\\)\\s+\\S+\\s+(\\d+)/s) ? $1 : 0; }
sub command { my $p = shift; open(my $c, '<', "/proc/$p/comm") or return ''; my $n = <$c>; close($c); chomp($n); return $n; }
while (time() <= $end) {
  if ($mode eq 'gone') {
    # Gone: seen, then missing (ENOENT, 2), not any failed look (a directory gone, an I/O error).
    if (-e $file) { $seen = 1; }
    elsif ($seen && $! == 2) { print "gone\\n"; exit 0; }
  } elsif (open(my $fh, '<', $file)) {
    my @l = <$fh>;
    close($fh);
    # Line 1: the postmaster's pid; 3: when it started (epoch seconds); 8: its status (PostgreSQL 10 and later).
    if (@l >= 8) {
      my ($pid, $start, $status) = (int($l[0]), int($l[2]), $l[7]);
      $status =~ s/\\s+$//;
      if ($pid > 0 && $pid != $old && $start >= $since && ($status eq 'ready' || $status eq 'standby') && kill(0, $pid)
          && (!$proc || command(parent($pid)) eq 'pg_ctl')) {
        print "ready $pid $status\\n";
        exit 0;
      }
    }
  }
  select(undef, undef, undef, 0.01);
}
exit 1;
`;

/** The argv of the watcher of `pgdata`'s postmaster.pid for `seconds` (pg_ctl's -t); `up` excepts `notPid` (0: none). */
export function postmasterWatchArgv(watch: PostmasterWatch, pgdata: string, notPid: number, seconds: string): string[] {
  return ['perl', '-e', POSTMASTER_WATCH_SCRIPT, '--', watch, `${pgdata}/postmaster.pid`, String(notPid), seconds];
}

/** What the watcher saw, from its output, in words for the step's log; undefined when it saw nothing. */
export function postmasterSeen(watch: PostmasterWatch, stdout: string): string | undefined {
  if (watch === 'gone') return /^gone$/m.test(stdout) ? 'the server is gone (postmaster.pid removed)' : undefined;
  const m = /^ready (\d+) (ready|standby)$/m.exec(stdout);
  return m ? `the server is up (postmaster ${m[1]}, status ${m[2]})` : undefined;
}
