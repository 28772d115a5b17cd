/**
 * Issue 11's proof on the pgdata layout (PGDG's RHEL packages, hand-built servers): db1 and db2 made by
 * initdb with the config in PGDATA and run by pg_ctl, pgBackRest 2.45 with a separate repository machine
 * holding an encrypted repository (backup.cipherPass: archiving, a standby and a drill read it; the
 * passphrase appears in no output), over SSH, an inventory without host vars. The scenario is in
 * fixtures/rig-procedures/scenario.ts; the machines are 127.0.45.1-4 (no other test file uses that subnet).
 */
import { rigProcedureSuite } from './fixtures/rig-procedures/scenario.js';

rigProcedureSuite({
  title: 'the procedures on separate pgdata-layout machines (initdb, pg_ctl, an encrypted repository machine)',
  subnet: '127.0.45',
  layout: 'pgdata',
  encrypted: true,
});
