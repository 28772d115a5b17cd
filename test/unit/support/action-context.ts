import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import type { ActionContext } from '../../../src/actions/types.js';
import { Redactor } from '../../../src/core/redact.js';
import type { HostFacts } from '../../../src/model/facts.js';
import type { Host, Inventory } from '../../../src/model/inventory.js';
import { LocalTransport } from '../../../src/transports/local.js';
import type { Transport } from '../../../src/transports/types.js';
import { debianPg15 } from '../../support/hosts.js';

/** A local host as the engine would resolve it from an inventory. */
export function localHost(overrides: Partial<Host> = {}): Host {
  return {
    name: 'local1',
    address: '127.0.0.1',
    role: 'primary',
    pgdata: '/var/lib/postgresql/15/main',
    postgres: debianPg15(),
    connection: { transport: 'local' },
    vars: {},
    ...overrides,
  };
}

export interface TestContextOptions {
  host?: Host;
  transport?: Transport;
  become?: string;
  checkMode?: boolean;
  diff?: boolean;
  facts?: Partial<HostFacts>;
  timeoutMs?: number;
  /** Directory templates are read from (templates are rendered with Handlebars in strict mode). */
  templatesDir?: string;
  /** Variables every template sees besides `host` and the action's own `vars`. */
  templateScope?: Record<string, unknown>;
}

/**
 * A minimal ActionContext over the real local transport: enough for actions that touch files and run
 * commands. Everything that needs the engine (PostgreSQL connections, other hosts) throws if used.
 */
export function testContext(options: TestContextOptions = {}): ActionContext & { logs: string[] } {
  const host = options.host ?? localHost();
  const transport = options.transport ?? new LocalTransport(host);
  const logs: string[] = [];
  const facts: HostFacts = { reachable: true, pgdata_present: false, running: false, user: 'root', ...options.facts };
  const inventory: Inventory = {
    cluster: 'test',
    postgres: { version: host.postgres.version },
    hosts: { [host.name]: { address: host.address, role: host.role, pgdata: host.pgdata } },
  };
  return {
    step: { id: 'test-step', name: 'test step' },
    host,
    hosts: { [host.name]: host },
    inventory,
    transport,
    transportFor: (name) => {
      if (name === host.name) return transport;
      throw new Error(`no transport for ${name} in this test`);
    },
    facts,
    factsOf: async (name) => {
      if (name === host.name) return facts;
      throw new Error(`no facts for ${name} in this test`);
    },
    factsIfRead: (name) => (name === host.name ? facts : undefined),
    withFacts: async (evaluate) => evaluate(),
    checkMode: options.checkMode ?? false,
    diff: options.diff ?? false,
    become: options.become,
    timeoutMs: options.timeoutMs,
    signal: new AbortController().signal,
    redactor: new Redactor(),
    async renderTemplate(src, extra = {}) {
      if (!options.templatesDir) throw new Error('no templatesDir in this test');
      const text = await readFile(join(options.templatesDir, src), 'utf8');
      return Handlebars.compile(text, { strict: true, noEscape: true })({ host, ...options.templateScope, ...extra });
    },
    async secret() {
      throw new Error('secrets are not available in this test');
    },
    async connectPostgres() {
      throw new Error('PostgreSQL is not available in this test');
    },
    scope: (extra = {}) => ({ host, hosts: { [host.name]: host }, facts, ...options.templateScope, ...extra }),
    log: (line) => logs.push(line),
    playbookDir: options.templatesDir ?? '/nonexistent',
    logs,
  };
}

/** A temp directory the test removes; postgres can traverse it (tmpdir is 1777, mkdtemp makes 0700). */
export async function tempDir(prefix: string): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `pgplay-${prefix}-`));
  await chmod(path, 0o755);
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
