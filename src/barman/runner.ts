/**
 * Runs Barman on the repository host as its barman_user (barman, or the PostgreSQL OS user with
 * backup.barman.local), with -c backup.barman.config when the inventory names one, always with an argv, never a shell line with values in it. JSON output (`-f json`)
 * where the command has one; failures mapped by errors.ts.
 */
import { PgplayError } from '../core/errors.js';
import type { Host, Inventory } from '../model/inventory.js';
import type { ServerContext } from '../postgres/server-context.js';
import { barmanFailure, errorLines, type FailureContext } from './errors.js';
import { messagesOf, parseJsonOutput, parseListBackups, type BarmanBackup, type BarmanMessages } from './output.js';

export const BARMAN_BIN = 'barman';
/** The OS user Debian's package runs Barman as (barman_user in /etc/barman.conf). */
export const BARMAN_USER = 'barman';

export interface BarmanRun {
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
  messages: BarmanMessages;
}

/** The Barman server name: backup.barman.server, else the cluster's name. */
export function barmanServer(inventory: Inventory): string {
  return inventory.backup?.barman?.server ?? inventory.cluster;
}

/**
 * The OS user Barman runs as on its host: the barman_user of its configuration. Debian's package runs it as
 * barman; with backup.barman.local it is the PostgreSQL OS user, so that what it recovers is theirs.
 */
export function barmanUser(inventory: Inventory, barmanHost: Host): string {
  return inventory.backup?.barman?.local ? barmanHost.postgres.osUser : BARMAN_USER;
}

/** `-c <config>` when the inventory names Barman's configuration file; Barman's default otherwise. */
export function configArgs(inventory: Inventory): string[] {
  const config = inventory.backup?.barman?.config;
  return config ? ['-c', config] : [];
}

/** Where pgplay writes the server's configuration: barman.d beside backup.barman.config (/etc/barman.d by default). */
export function serverConfigFile(inventory: Inventory, server: string): string {
  const config = inventory.backup?.barman?.config;
  const dir = config ? `${config.slice(0, config.lastIndexOf('/')) || ''}/barman.d` : '/etc/barman.d';
  return `${dir}/${server}.conf`;
}

/** The repository host, where Barman runs (semantic checks make sure tool barman has one). */
export function barmanHost(ctx: { hosts: Record<string, Host> }, inventory: Inventory): Host {
  const name = inventory.backup?.repoHost;
  const host = name ? ctx.hosts[name] : undefined;
  if (!host) throw new PgplayError({ code: 'SEMANTIC', message: 'backup.tool barman needs backup.repoHost, the host Barman runs on', expected: 'backup.repoHost: a host with role repository' });
  return host;
}

export class BarmanRunner {
  constructor(
    private readonly ctx: ServerContext & { inventory: Inventory },
    /** The host Barman runs on. */
    readonly host: Host,
    readonly server: string,
  ) {
    this.user = barmanUser(ctx.inventory, host);
    this.config = configArgs(ctx.inventory);
    this.serverConfig = serverConfigFile(ctx.inventory, server);
  }

  /** The OS user Barman runs as here (barman_user). */
  readonly user: string;
  /** `-c <config>` when the inventory names Barman's configuration, before every command. */
  readonly config: string[];
  private readonly serverConfig: string;

  private failureContext(command: string): FailureContext {
    return { command, server: this.server, configFile: this.serverConfig, repoHost: this.host.name };
  }

  /** Another command as the barman user on the Barman host (reads of its directories); its stdout. */
  async exec(argv: string[]): Promise<string> {
    const transport = this.host.name === this.ctx.host.name ? this.ctx.transport : this.ctx.transportFor(this.host.name);
    const r = await transport.exec(argv, { become: this.user, cwd: '/', env: { LC_ALL: 'C' }, signal: this.ctx.signal, timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new PgplayError({ code: 'STEP_FAILED', message: `${argv[0]} on ${this.host.name} failed (rc ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-2).join(' ')}` });
    return r.stdout;
  }

  /**
   * `barman [-f json] <command> <args...>`; a non-zero exit is an error unless listed in acceptExit.
   * json: false for commands whose output is plain text (--nagios, cron, --version).
   */
  async run(command: string, args: string[], options: { json?: boolean; acceptExit?: number[]; timeoutMs?: number } = {}): Promise<BarmanRun> {
    const json = options.json ?? true;
    const argv = [BARMAN_BIN, ...this.config, ...(json ? ['-f', 'json'] : []), command, ...args];
    const transport = this.host.name === this.ctx.host.name ? this.ctx.transport : this.ctx.transportFor(this.host.name);
    const timeoutMs = options.timeoutMs ?? this.ctx.timeoutMs;
    const r = await transport.exec(argv, {
      become: this.user,
      // barman's home, not the caller's working directory (which barman may not enter).
      cwd: '/',
      env: { LC_ALL: 'C.UTF-8' },
      signal: this.ctx.signal,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
    if (r.timedOut) throw new PgplayError({ code: 'TIMEOUT', message: `barman ${command} on ${this.host.name} was killed after the step timeout` });
    if (r.exitCode === 127 || /command not found|No such file or directory.*barman/.test(r.stderr)) {
      throw new PgplayError({ code: 'GUARD', message: `barman is not installed on ${this.host.name}`, hint: 'install it there (Debian: apt-get install barman); the database hosts need barman-cli' });
    }
    let parsed: Record<string, unknown> = {};
    if (json) {
      try {
        parsed = parseJsonOutput(r.stdout);
      } catch (e) {
        if (r.exitCode === 0) throw new PgplayError({ code: 'STEP_FAILED', message: `barman ${command}: ${(e as Error).message}` });
      }
    }
    const messages = messagesOf(parsed);
    for (const w of messages.warnings) this.ctx.log(`barman ${command}: WARNING: ${w}`);
    if (r.exitCode !== 0 && !(options.acceptExit ?? []).includes(r.exitCode)) {
      throw barmanFailure(r.exitCode, errorLines(r.stdout, r.stderr, messages.errors), this.failureContext(command), argv);
    }
    return { argv, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, json: parsed, messages };
  }
}

/** The server's backups (`barman -f json list-backups`), newest first. */
export async function listBackups(runner: BarmanRunner): Promise<BarmanBackup[]> {
  const r = await runner.run('list-backups', [runner.server]);
  return parseListBackups(r.json, runner.server);
}
