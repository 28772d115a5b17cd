import type { Host } from '../../src/model/inventory.js';

/** The postgres block of a host resolved with Debian's PostgreSQL 15 defaults, shared by the test Host builders. */
export function debianPg15(): Host['postgres'] {
  return {
    version: 15,
    bindir: '/usr/lib/postgresql/15/bin',
    port: 5432,
    osUser: 'postgres',
    superuser: 'postgres',
    socketDir: '/var/run/postgresql',
    settings: {},
    hba: [],
  };
}
