/**
 * `pgplay status` reads several things from the primary (archiving, replication, slots): through one
 * connection per host (postgres/connection-pool.ts), as a run does, not one connection and socket bridge
 * per query. Each query still runs in its own read-only transaction; close() ends the connections.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/core/redact.js';
import { openStatusContext } from '../../src/status/context.js';
import { fileTempDir } from '../support/temp-dirs.js';

describe('pgplay status connections', () => {
  it('one connection per host for every query of the checks, each query read-only, all closed at the end', async () => {
    const dir = fileTempDir('status-conn');
    const inventoryFile = join(dir, 'inventory.yml');
    await writeFile(
      inventoryFile,
      `cluster: c\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/db1 }\n  db2: { address: 127.0.0.2, role: standby, upstream: db1, pgdata: ${dir}/db2 }\n`,
    );
    const opened: string[] = [];
    const statements: string[] = [];
    let ended = 0;
    const connect = async (_t: unknown, host: { name: string }) => {
      opened.push(host.name);
      return {
        query: async (q: string | { text: string }) => {
          statements.push(`${host.name}: ${typeof q === 'string' ? q : q.text}`);
          return { rows: [{ ok: true }] };
        },
        on: () => undefined,
        end: async () => {
          ended++;
        },
      } as unknown as Client;
    };
    const ctx = await openStatusContext({ inventoryFile, stateDir: join(dir, 'state'), redactor: new Redactor(), connect: connect as never });
    try {
      expect(await ctx.query('db1', 'SELECT 1 AS ok')).toEqual([{ ok: true }]);
      await ctx.query('db1', 'SELECT 2');
      await ctx.query('db2', 'SELECT 3');
      await ctx.query('db1', 'SELECT 4');
    } finally {
      await ctx.close();
    }
    expect(opened).toEqual(['db1', 'db2']);
    expect(ended).toBe(2);
    const db1 = statements.filter((s) => s.startsWith('db1: ')).map((s) => s.slice(5).replace(/statement_timeout = \d+/, 'statement_timeout = N'));
    expect(db1).toEqual([
      'BEGIN READ ONLY', 'SET LOCAL statement_timeout = N', 'SELECT 1 AS ok', 'ROLLBACK',
      'DISCARD ALL', 'BEGIN READ ONLY', 'SET LOCAL statement_timeout = N', 'SELECT 2', 'ROLLBACK',
      'DISCARD ALL', 'BEGIN READ ONLY', 'SET LOCAL statement_timeout = N', 'SELECT 4', 'ROLLBACK',
    ]);
  });
});
