/** conninfo never carries a password; .pgpass escapes what libpq unescapes; hba addresses; include_dir. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertNoSecretInConninfo, buildConninfo, conninfoHasSecret, parseConninfo } from '../../src/postgres/conninfo.js';
import { mergePgpass, parsePgpassLine, pgpassEscape, pgpassLine, PGPASS_MODE } from '../../src/postgres/pgpass.js';
import { hbaAddress } from '../../src/postgres/hba.js';
import { ensureIncludeDir, hasIncludeDir } from '../../src/postgres/config.js';
import { PgplayError } from '../../src/core/errors.js';

describe('buildConninfo', () => {
  it('writes host, port, user, application_name, sslmode and passfile, quoting where libpq needs it', () => {
    expect(
      buildConninfo({ host: '10.0.0.11', port: 5432, user: 'replicator', applicationName: 'db2', sslmode: 'prefer', passfile: '/var/lib/postgresql/.pgpass' }),
    ).toBe('host=10.0.0.11 port=5432 user=replicator application_name=db2 sslmode=prefer passfile=/var/lib/postgresql/.pgpass');
    expect(buildConninfo({ host: 'db 1', port: 5432, user: "o'neil", passfile: 'C:\\x' })).toBe(
      "host='db 1' port=5432 user='o\\'neil' passfile='C:\\\\x'",
    );
  });

  it('refuses password and sslpassword among the extra keywords', () => {
    for (const k of ['password', 'PASSWORD', 'sslpassword']) {
      expect(() => buildConninfo({ host: 'a', port: 1, user: 'u', extra: { [k]: 'x' } })).toThrow(PgplayError);
    }
    expect(buildConninfo({ host: 'a', port: 1, user: 'u', extra: { keepalives_idle: 30 } })).toBe('host=a port=1 user=u keepalives_idle=30');
  });

  it('property: whatever the values, the conninfo parses back to them and never holds a password', () => {
    const word = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(word, fc.integer({ min: 1, max: 65535 }), word, word, word, word, (host, port, user, app, passfile, secret) => {
        const ci = buildConninfo({ host, port, user, applicationName: app, passfile });
        const parsed = parseConninfo(ci);
        expect(parsed).not.toBeNull();
        expect(Object.fromEntries(parsed!)).toEqual({ host, port: String(port), user, application_name: app, passfile });
        expect(conninfoHasSecret(ci)).toBe(false);
        // A password given anywhere is detected, however it is quoted.
        expect(conninfoHasSecret(`${ci} password=${ci.length % 2 ? `'${secret.replace(/['\\]/g, '\\$&')}'` : 'x'}`)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('conninfoHasSecret', () => {
  it('finds passwords in key/value and URI forms, and nothing in clean ones', () => {
    expect(conninfoHasSecret('host=a user=b password=c')).toBe(true);
    expect(conninfoHasSecret("host=a  password = 'x y'")).toBe(true);
    expect(conninfoHasSecret('postgresql://u:p@db1/postgres')).toBe(true);
    expect(conninfoHasSecret('postgres://db1/postgres?sslmode=require&password=x')).toBe(true);
    expect(conninfoHasSecret('postgresql://u@db1:5432/postgres?application_name=x')).toBe(false);
    expect(conninfoHasSecret("host=a application_name='password'")).toBe(false);
    expect(conninfoHasSecret("host='unterminated password")).toBe(true);
  });

  it('assertNoSecretInConninfo says where the password belongs', () => {
    try {
      assertNoSecretInConninfo('host=a password=b');
      throw new Error('not thrown');
    } catch (e) {
      expect(e).toBeInstanceOf(PgplayError);
      const err = e as PgplayError;
      expect(err.code).toBe('SEMANTIC');
      expect(err.message).toBe('primary_conninfo must not contain a password');
      expect(err.format()).not.toContain('password=b');
    }
  });
});

describe('.pgpass', () => {
  it('escapes : and \\ in every field', () => {
    expect(pgpassEscape('a:b\\c')).toBe('a\\:b\\\\c');
    expect(pgpassLine({ host: 'fd00::12', port: 5432, database: 'replication', user: 'repl', password: 'p:w\\d' })).toBe(
      'fd00\\:\\:12:5432:replication:repl:p\\:w\\\\d',
    );
    // libpq would read a line starting with '#' as a comment.
    expect(pgpassLine({ host: '#h', port: 1, database: '*', user: 'u', password: 'p' })).toBe('\\#h:1:*:u:p');
    expect(PGPASS_MODE).toBe(0o600);
  });

  it('property: a line parses back to its fields', () => {
    const field = fc.string({ maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));
    fc.assert(
      fc.property(field, fc.integer({ min: 1, max: 65535 }), field, field, field, (host, port, database, user, password) => {
        expect(parsePgpassLine(pgpassLine({ host, port, database, user, password }))).toEqual([host, String(port), database, user, password]);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a line break in a field, without echoing the password', () => {
    const e = (() => {
      try {
        pgpassLine({ host: 'h', port: 1, database: '*', user: 'u', password: 'sec\nret' });
      } catch (err) {
        return err as PgplayError;
      }
    })();
    expect(e).toBeInstanceOf(PgplayError);
    expect(e!.message).toBe('the .pgpass entry for u@h has a line break in a field');
    expect(e!.message).not.toContain('sec');
  });

  it('merge replaces the managed entry in place, appends new ones and keeps the rest byte for byte', () => {
    const existing = '# mine\nother:5432:*:me:secret\n10.0.0.11:5432:replication:replicator:old\n';
    const merged = mergePgpass(existing, [
      { host: '10.0.0.11', port: 5432, database: 'replication', user: 'replicator', password: 'new' },
      { host: '10.0.0.12', port: 5432, database: 'replication', user: 'replicator', password: 'new' },
    ]);
    expect(merged).toBe('# mine\nother:5432:*:me:secret\n10.0.0.11:5432:replication:replicator:new\n10.0.0.12:5432:replication:replicator:new\n');
    expect(mergePgpass(merged, [{ host: '10.0.0.12', port: 5432, database: 'replication', user: 'replicator', password: 'new' }])).toBe(merged);
    expect(mergePgpass('', [{ host: 'h', port: '*', database: '*', user: 'u', password: 'p' }])).toBe('h:*:*:u:p\n');
  });
});

describe('hbaAddress', () => {
  it('adds the mask an IP literal needs and leaves names and ranges alone', () => {
    expect(hbaAddress('10.0.0.12')).toBe('10.0.0.12/32');
    expect(hbaAddress('::1')).toBe('::1/128');
    expect(hbaAddress('[fd00::1]')).toBe('fd00::1/128');
    expect(hbaAddress('10.0.0.0/24')).toBe('10.0.0.0/24');
    expect(hbaAddress('db1.example.net')).toBe('db1.example.net');
    expect(hbaAddress('samenet')).toBe('samenet');
  });
});

describe('include_dir in the user postgresql.conf', () => {
  it('appends it once, and recognises existing forms (Debian, unquoted, trailing slash)', () => {
    const r = ensureIncludeDir("shared_buffers = 128MB\n#include_dir = 'conf.d'\n");
    expect(r).toEqual({
      changed: true,
      text: "shared_buffers = 128MB\n#include_dir = 'conf.d'\n\n# added by pgplay: its settings live in this directory\ninclude_dir = 'conf.d'\n",
    });
    expect(ensureIncludeDir(r.text)).toEqual({ changed: false, text: r.text });
    expect(hasIncludeDir("include_dir = 'conf.d'\t# include files ending in '.conf' from\n")).toBe(true);
    expect(hasIncludeDir('  include_dir conf.d/\n')).toBe(true);
    expect(hasIncludeDir("include_dir = 'other'\n")).toBe(false);
    expect(ensureIncludeDir('port = 5432').text).toBe("port = 5432\n\n# added by pgplay: its settings live in this directory\ninclude_dir = 'conf.d'\n");
  });
});
