/**
 * Issue 11's proof on the Debian layout: PostgreSQL 15 made by pg_createcluster and run by pg_ctlcluster
 * on db1 and db2, config in /etc/postgresql/15/main, pgBackRest 2.45 with a separate repository machine,
 * over SSH, an inventory with `layout: debian` and no host vars. The scenario is in
 * fixtures/rig-procedures/scenario.ts; the machines are 127.0.44.1-4 (no other test file uses that subnet).
 */
import { rigProcedureSuite } from './fixtures/rig-procedures/scenario.js';

rigProcedureSuite({
  title: 'the procedures on separate Debian machines (pg_createcluster, pg_ctlcluster, a repository machine)',
  subnet: '127.0.44',
  layout: 'debian',
  encrypted: false,
});
