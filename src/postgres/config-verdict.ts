import type { ServerContext } from './server-context.js';

/**
 * What the server makes of its configuration files right now. pg_file_settings parses them afresh at
 * query time, so it needs no wait for a reload to land. Undefined when no connection can be had
 * (the reload itself has happened; only the verdict is missing).
 */
export async function configVerdict(ctx: ServerContext): Promise<{ errors: string[]; pendingRestart: string[] } | undefined> {
  let client;
  try {
    client = await ctx.connectPostgres();
  } catch (e) {
    ctx.log(`cannot read pg_file_settings after the reload: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  try {
    // "setting could not be applied" means either a changed restart-only setting (postmaster context)
    // or a value the server refuses; the setting's context tells them apart.
    const res = await client.query<{ sourcefile: string | null; sourceline: number | null; name: string | null; setting: string | null; error: string; context: string | null }>(
      `select f.sourcefile, f.sourceline, f.name, f.setting, f.error, s.context
         from pg_file_settings f left join pg_settings s on s.name = f.name
        where f.error is not null order by f.seqno`,
    );
    const errors: string[] = [];
    const pending = new Set<string>();
    for (const row of res.rows) {
      const where = `${row.sourcefile ?? '?'}:${row.sourceline ?? '?'}`;
      if (row.context === 'postmaster' && row.name) pending.add(row.name);
      else if (row.name && row.context) errors.push(`${where}: ${row.name} = '${row.setting ?? ''}' is not accepted`);
      else errors.push(`${where}: ${row.error}${row.name ? ` (${row.name})` : ''}`);
    }
    return { errors, pendingRestart: [...pending] };
  } finally {
    await client.end().catch(() => undefined);
  }
}
