/**
 * Issue 12's procedures on separate machines, one rig for all of them (test/e2e/fixtures/dr-machines/rig.ts:
 * subnet 127.0.50.x, db1, db2, bk1 and a spare db3, built once with prepare, nightly-backup and
 * standby-from-backup). The scenarios run in an order where each starts from the topology the one before
 * left (building a rig and a cluster costs more than any one scenario):
 *
 * 1. switchover.yml (fixtures/dr-machines/switchover.ts): a preflight refusal, then to db2 and back under
 *    pgbench, no committed row lost. db1 primary, db2 standby.
 * 2. rejoin.yml (rejoin.ts): split brains both ways, rejoined by pg_rewind and by the delta restore.
 *    db1 primary, db2 standby.
 * 3. promote.yml (failover.ts): fencing includes the repository; db2's machine dies, promoting db1 needs
 *    -p old_primary=down. db1 primary, db2 dead.
 * 4. restore.yml (restore.ts): db2 replaced by a new machine (db3), refusals, in place to a restore point,
 *    db1's machine dies and db2 is restored to the newest WAL.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { failoverScenario } from './fixtures/dr-machines/failover.js';
import { rejoinScenario } from './fixtures/dr-machines/rejoin.js';
import { restoreScenario } from './fixtures/dr-machines/restore.js';
import { DrRig } from './fixtures/dr-machines/rig.js';
import { switchoverScenario } from './fixtures/dr-machines/switchover.js';

describe('disaster recovery procedures on separate machines (Debian layout, pgBackRest repository host)', () => {
  const rig = new DrRig();

  beforeAll(() => rig.start(), 600_000);
  afterAll(() => rig.stop(), 180_000);

  switchoverScenario(rig);
  rejoinScenario(rig);
  failoverScenario(rig);
  restoreScenario(rig);
});
