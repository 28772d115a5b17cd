/**
 * role: a database role with LOGIN / REPLICATION and a password from the inventory's secrets. The
 * password travels only as a SCRAM-SHA-256 verifier that pgplay computes (src/postgres/scram.ts): the
 * plain text never reaches the server, its log (log_statement = all included) or pg_stat_activity.
 *
 * The read-only check reads pg_authid and recomputes the stored verifier from the password with the
 * stored salt and iterations: an unchanged password is ok and nothing is sent.
 */
import type { Client } from 'pg';
import { TEMPLATE_SCHEMA } from '../schema/templated.js';
import { PgplayError } from '../core/errors.js';
import { computeVerifier, formatVerifier, verifierMatches } from '../postgres/scram.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface RoleInput {
  name?: string;
  password?: unknown;
  login?: boolean;
  replication?: boolean;
}

interface Current {
  rolcanlogin: boolean;
  rolreplication: boolean;
  rolpassword: string | null;
}

const secretRefSchema = {
  description: "The password, by reference only ({env} or {file}, or a template naming one of the inventory's, such as {{inventory.backup.barman.password}}). Default: the inventory's replication.password when name is the replication user.",
  // A template standing for a whole reference of the inventory ("{{inventory.backup.barman.password}}") renders to it.
  anyOf: [
    { type: 'object', additionalProperties: false, required: ['env'], properties: { env: { type: 'string', minLength: 1 } } },
    { type: 'object', additionalProperties: false, required: ['file'], properties: { file: { type: 'string', minLength: 1 } } },
    TEMPLATE_SCHEMA,
  ],
};

export const roleAction: Action<RoleInput> = {
  name: 'role',
  connects: true,
  // A role in the running server: no fact describes it.
  changes: [],
  summary:
    'A database role with LOGIN/REPLICATION and its password from an {env}/{file} secret, sent only as a SCRAM-SHA-256 verifier ' +
    'pgplay computes (the plain password never reaches the server or its log). The check reads pg_authid and verifies the ' +
    'stored verifier against the password: an unchanged role is ok and nothing is sent. Run it on the primary.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 63, description: "The role. Default: the inventory's replication.user." },
      password: secretRefSchema,
      login: { type: 'boolean', default: true, description: 'LOGIN (default true) or NOLOGIN.' },
      replication: { type: 'boolean', description: "REPLICATION or NOREPLICATION. Default: true for the inventory's replication user, else left as it is." },
    },
  },

  async check(ctx, input) {
    const want = await wanted(ctx, input);
    return withClient(ctx, async (client) => outcome(want, diffRole(want, await current(client, want.name)), false));
  },

  async apply(ctx, input) {
    const want = await wanted(ctx, input);
    return withClient(ctx, async (client) => {
      const changes = diffRole(want, await current(client, want.name));
      if (changes.create || changes.attributes.length || changes.password) {
        const parts: string[] = [];
        if (changes.create || changes.attributes.includes('login')) parts.push(want.login ? 'LOGIN' : 'NOLOGIN');
        if (want.replication !== undefined && (changes.create || changes.attributes.includes('replication'))) parts.push(want.replication ? 'REPLICATION' : 'NOREPLICATION');
        if (changes.password) {
          // A fresh salt each time, as PostgreSQL does; the verifier is what a server keeps, never the password.
          const verifier = formatVerifier(computeVerifier(want.password));
          parts.push(`PASSWORD ${client.escapeLiteral(verifier)}`);
        }
        const sql = `${changes.create ? 'CREATE' : 'ALTER'} ROLE ${client.escapeIdentifier(want.name)} WITH ${parts.join(' ')}`;
        try {
          await client.query(sql);
        } catch (e) {
          throw new PgplayError({ code: 'STEP_FAILED', message: `${changes.create ? 'creating' : 'changing'} role ${want.name} on ${ctx.host.name} failed: ${(e as Error).message}` });
        }
      }
      return outcome(want, changes, true);
    });
  },
};

export default roleAction;

interface Wanted {
  name: string;
  password: string;
  login: boolean;
  replication?: boolean;
}

interface Changes {
  create: boolean;
  attributes: string[];
  password: boolean;
}

async function wanted(ctx: ActionContext, input: RoleInput): Promise<Wanted> {
  const replication = ctx.inventory.replication;
  const name = input.name ?? replication?.user;
  if (!name) throw new PgplayError({ code: 'SEMANTIC', message: `role: no name and the inventory has no replication.user`, expected: 'name: <role>' });
  const isReplicationUser = name === replication?.user;
  const ref = input.password ?? (isReplicationUser ? replication?.password : undefined);
  if (ref === undefined) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `role ${name} has no password`,
      expected: isReplicationUser ? 'replication.password in the inventory ({env} or {file})' : 'password: {env: NAME} or {file: PATH}',
    });
  }
  // ctx.secret registers the value with the redactor before anything can print it.
  const password = await ctx.secret(ref);
  if (!password) throw new PgplayError({ code: 'SEMANTIC', message: `role ${name}: the password reference resolves to nothing` });
  return { name, password, login: input.login ?? true, replication: input.replication ?? (isReplicationUser ? true : undefined) };
}

async function withClient<T>(ctx: ActionContext, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await ctx.connectPostgres();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function current(client: Client, name: string): Promise<Current | null> {
  // pg_authid (superusers only): pg_roles masks the password.
  const r = await client.query<Current>('SELECT rolcanlogin, rolreplication, rolpassword FROM pg_authid WHERE rolname = $1', [name]);
  return r.rows[0] ?? null;
}

function diffRole(want: Wanted, cur: Current | null): Changes {
  if (!cur) return { create: true, attributes: [], password: true };
  const attributes: string[] = [];
  if (cur.rolcanlogin !== want.login) attributes.push('login');
  if (want.replication !== undefined && cur.rolreplication !== want.replication) attributes.push('replication');
  // An md5 hash or no password at all is not this password's SCRAM verifier: it is (re)set.
  const password = cur.rolpassword === null || !verifierMatches(cur.rolpassword, want.password);
  return { create: false, attributes, password };
}

function outcome(want: Wanted, c: Changes, applied: boolean): Outcome {
  const what = [...c.attributes.map((a) => (a === 'login' ? (want.login ? 'LOGIN' : 'NOLOGIN') : want.replication ? 'REPLICATION' : 'NOREPLICATION')), ...(c.password ? ['password (SCRAM-SHA-256 verifier)'] : [])];
  const data = { role: want.name, created: c.create && applied, changes: c.create ? ['created'] : what };
  if (c.create) return { changed: true, msg: `${applied ? 'created' : 'would create'} role ${want.name}`, data };
  if (what.length === 0) return { changed: false, msg: `role ${want.name} is up to date`, data };
  return { changed: true, msg: `${applied ? 'changed' : 'would change'} role ${want.name}: ${what.join(', ')}`, data };
}
