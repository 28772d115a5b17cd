/**
 * Watching the servers a wait depends on (issue 11 item 7): a wait for streaming, readiness or replay
 * must not spend its whole timeout on a server that is gone or on a standby whose upstream keeps
 * refusing it. A watch finds each server's log once (the logging collector's newest file when it is on,
 * else the file the postmaster writes its stderr to, else the layout's: Debian's
 * /var/log/postgresql/postgresql-<v>-<cluster>.log or pgplay's startup log in PGDATA), then on every
 * poll reads, in one command per server, whether its postmaster lives and what its log gained.
 *
 * - A server that ran when the watch started (or at any poll since) and runs no more fails the wait
 *   at once, with the last lines of its log.
 * - With `replication` (a wait for streaming), the same FATAL or ERROR repeating in a standby's
 *   log (the walreceiver retries every few seconds) fails the wait as soon as it has been seen
 *   REPEATS times, naming the cause when it is a known one: a missing role, failed authentication, no
 *   pg_hba entry, a timeline mismatch, missing WAL, another cluster, a missing slot.
 * - Otherwise the wait's own timeout message gets the relevant lines of every watched log.
 */
import { PgplayError, tailLines } from '../core/errors.js';
import type { ServerContext } from './server-context.js';
import type { Host } from '../model/inventory.js';
import { pgBin, runAsOwner } from './owner.js';
import { defaultLogFile } from './server-log.js';

/** Times one error line must appear since the watch began before the wait gives up on it. */
export const REPEATS = 3;
/** The most of a log read per poll (a server that logs a lot must not make a poll slow). */
const MAX_READ = 65536;
const SHOWN_LINES = 8;

const LOCATE = `d=$1; conf=$2; pg=$3; fallback=$4
pid=$(head -n 1 "$d/postmaster.pid" 2>/dev/null)
log=
if [ "$("$pg" -D "$conf" -C logging_collector 2>/dev/null)" = on ]; then
  dir=$("$pg" -D "$conf" -C log_directory 2>/dev/null); case $dir in /*) ;; *) dir=$d/$dir ;; esac
  f=$(ls -t "$dir" 2>/dev/null | head -n 1); [ -n "$f" ] && log=$dir/$f
fi
case $pid in ''|*[!0-9]*) ;; *) [ -z "$log" ] && f=$(readlink "/proc/$pid/fd/2" 2>/dev/null) && [ -f "$f" ] && log=$f ;; esac
[ -n "$log" ] || log=$fallback
printf '%s\\n' "$log"`;

const POLL = `d=$1; log=$2; off=$3
pid=$(head -n 1 "$d/postmaster.pid" 2>/dev/null); alive=0
case $pid in ''|*[!0-9]*) ;; *) kill -0 "$pid" 2>/dev/null && alive=1 ;; esac
size=$(stat -c %s -- "$log" 2>/dev/null || echo 0)
echo "alive=$alive size=$size"
# off -1: the log's last lines so far, the context of what comes next.
if [ "$off" -lt 0 ]; then tail -c 4096 -- "$log" 2>/dev/null; exit 0; fi
[ "$size" -ge "$off" ] || off=0
[ "$size" -gt "$off" ] && tail -c +$((off + 1)) -- "$log" | tail -c ${MAX_READ}
exit 0`;

interface Watched {
  host: Host;
  log: string;
  offset: number;
  /** Everything its log gained since the watch began (bounded). */
  text: string;
  /** The log's last lines when the watch began: shown when nothing new explains a failure. */
  before: string;
  everAlive: boolean;
  alive: boolean;
}

/** Known causes, from the lines a standby (or its upstream) logs when streaming cannot start. */
const CAUSES: ReadonlyArray<[RegExp, (m: RegExpMatchArray) => string]> = [
  [/role "([^"]+)" does not exist/i, (m) => `the role "${m[1]}" does not exist on the upstream (prepare.yml creates the replication role)`],
  [/password authentication failed for user "([^"]+)"/i, (m) => `password authentication failed for "${m[1]}" (a missing role fails the same way; check the upstream's log and prepare.yml)`],
  [/no pg_hba\.conf entry for replication connection[^,]*,? ?(?:host "([^"]+)")?/i, (m) => `the upstream has no pg_hba.conf entry for this replication connection${m[1] ? ` from ${m[1]}` : ''}`],
  [/no pg_hba\.conf entry/i, () => 'the upstream has no pg_hba.conf entry for this connection'],
  [/requested timeline \d+ is not a child|is not in this server's history|new timeline \d+ forked off|requested timeline \d+ does not contain/i, () => 'timeline mismatch: the standby is on another timeline than its upstream (rebuild it)'],
  [/requested WAL segment \S+ has already been removed|could not (?:find|open) (?:file|WAL)|unable to find .* in the archive|WAL file .* not found|record with incorrect prev-link|invalid record length/i, () => 'WAL missing: the WAL the standby needs is neither on the upstream nor in the archive (rebuild it)'],
  [/database system identifier differs/i, () => 'the upstream is another cluster (its system identifier differs)'],
  [/replication slot "([^"]+)" does not exist/i, (m) => `the replication slot "${m[1]}" does not exist on the upstream`],
  [/Connection refused|could not connect to the primary server|could not translate host name/i, () => 'the standby cannot connect to its upstream'],
];

const RELEVANT = /\b(FATAL|PANIC|ERROR|DETAIL|HINT):|could not|does not exist|authentication failed|pg_hba|timeline|WAL|shutdown|terminated|ready to accept/i;

/** An error line without what changes between repeats (timestamps, pids, LSNs). */
function normalise(line: string): string {
  const at = line.search(/\b(FATAL|ERROR|PANIC):/);
  return line.slice(at).replace(/\b[0-9A-F]+\/[0-9A-F]+\b/g, 'LSN').replace(/\d+/g, 'N');
}

export function causeOf(lines: string[]): string | undefined {
  for (const [re, say] of CAUSES) {
    for (const line of lines) {
      const m = line.match(re);
      if (m) return say(m);
    }
  }
  return undefined;
}

/** The error line seen at least REPEATS times in this text, if any (the newest such). */
export function repeatingError(text: string): string | undefined {
  const counts = new Map<string, number>();
  let found: string | undefined;
  for (const line of text.split('\n')) {
    if (!/\b(FATAL|ERROR|PANIC):/.test(line)) continue;
    const key = normalise(line);
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    if (n >= REPEATS) found = line;
  }
  return found;
}

export function relevantLines(text: string, n = SHOWN_LINES): string[] {
  const lines = tailLines(text, 400);
  const relevant = lines.filter((l) => RELEVANT.test(l));
  return (relevant.length ? relevant : lines).slice(-n);
}

export class ServerWatch {
  private constructor(
    private readonly ctx: ServerContext,
    private readonly servers: Watched[],
    private readonly replication: boolean,
    /** Begun as the wait timed out: its logs' text so far is their last lines, not what came in since. */
    private readonly late: boolean,
  ) {}

  /**
   * Starts watching these hosts' servers (those with a PGDATA); the logs are read from their end on.
   * `logs`: per host name, the file its server was started to log to, read where the server's settings and
   * process do not name one (it has already exited), instead of the layout's log file. `late`: begun only
   * as the wait timed out.
   */
  static async start(ctx: ServerContext, hosts: Host[], o: { replication: boolean; mustRun: boolean; logs?: Record<string, string>; late?: boolean }): Promise<ServerWatch> {
    const watched = hosts.filter((host, i) => host.pgdata && hosts.findIndex((h) => h.name === host.name) === i);
    // The servers are read side by side: a wait's first miss should not wait on one host after the other.
    const servers = await Promise.all(
      watched.map(async (host): Promise<Watched> => {
        const fallback = o.logs?.[host.name] ?? host.postgres.logFile ?? defaultLogFile(host.pgdata!);
        const conf = host.postgres.configDir ?? host.pgdata!;
        const r = await runAsOwner(ctx, ['/bin/sh', '-c', LOCATE, 'pgplay-log-locate', host.pgdata!, conf, pgBin(host, 'postgres'), fallback], {
          host,
          timeoutMs: 30_000,
        });
        const log = r.stdout.trim().split('\n')[0] || fallback;
        // mustRun: a server that does not run when the wait begins is already gone (nothing will bring it).
        const w: Watched = { host, log, offset: 0, text: '', before: '', everAlive: o.mustRun, alive: false };
        await ServerWatch.poll(ctx, w, true);
        return w;
      }),
    );
    return new ServerWatch(ctx, servers, o.replication, o.late ?? false);
  }

  private static async poll(ctx: ServerContext, w: Watched, first = false): Promise<void> {
    const r = await runAsOwner(ctx, ['/bin/sh', '-c', POLL, 'pgplay-log-poll', w.host.pgdata!, w.log, first ? '-1' : String(w.offset)], { host: w.host, timeoutMs: 30_000 });
    const nl = r.stdout.indexOf('\n');
    const head = nl < 0 ? r.stdout : r.stdout.slice(0, nl);
    const m = /alive=(\d) size=(\d+)/.exec(head);
    if (!m) return;
    w.alive = m[1] === '1';
    w.everAlive ||= w.alive;
    const size = Number(m[2]);
    // The first poll marks where the log ends: what came before is context, not this wait's.
    const gained = nl >= 0 ? r.stdout.slice(nl + 1) : '';
    if (first) w.before = gained;
    else w.text = (w.text + gained).slice(-4 * MAX_READ);
    w.offset = size;
  }

  /** Reads every watched server; throws when one is gone or (replication) an error keeps repeating. */
  async check(what: string): Promise<void> {
    const read = await Promise.all(
      this.servers.map((w) =>
        ServerWatch.poll(this.ctx, w).then(
          () => true,
          (e: unknown) => {
            // The watch only explains; a host it cannot read now is the wait's own business.
            this.ctx.log(`cannot read ${w.host.name}'s server state: ${e instanceof Error ? e.message : String(e)}`);
            return false;
          },
        ),
      ),
    );
    for (const [i, w] of this.servers.entries()) {
      if (!read[i]) continue;
      if (w.everAlive && !w.alive) {
        const lines = relevantLines(w.text.trim() ? w.text : w.before);
        throw new PgplayError({
          code: 'STEP_FAILED',
          message: `${what}: PostgreSQL on ${w.host.name} is not running${lines.length ? `; the last lines of its log (${w.log}):\n${lines.join('\n')}` : ` (its log ${w.log} is empty)`}`,
          hint: `the server log of ${w.host.name} is ${w.log}`,
        });
      }
      if (this.replication) {
        const repeated = repeatingError(w.text);
        if (repeated) {
          const all = this.servers.flatMap((s) => relevantLines(s.text).map((l) => (this.servers.length > 1 ? `${s.host.name}: ${l}` : l)));
          const cause = causeOf(this.servers.flatMap((s) => s.text.split('\n'))) ?? repeated.slice(repeated.search(/\b(FATAL|ERROR|PANIC):/));
          throw new PgplayError({
            code: 'STEP_FAILED',
            message: `${what}: ${cause}. ${w.host.name} logged this ${REPEATS} times since the watch began (${w.log}):\n${all.join('\n')}`,
            hint: `the server log of ${w.host.name} is ${w.log}`,
          });
        }
      }
    }
  }

  /** What the watched logs said since the watch began (or, for a watch begun at the timeout, their last lines), for a timeout's message. */
  async report(): Promise<string> {
    const parts: string[] = [];
    for (const w of this.servers) {
      await ServerWatch.poll(this.ctx, w).catch(() => undefined);
      const lines = relevantLines(w.text.trim() ? w.text : w.before);
      parts.push(lines.length ? `${w.host.name}'s log (${w.log}${w.text.trim() ? '' : this.late ? ', its last lines' : ', nothing new since the watch began'}):\n${lines.join('\n')}` : `${w.host.name}'s log (${w.log}) is empty`);
    }
    return parts.join('\n');
  }
}
