import { userInfo } from 'node:os';
import { becomeArgv } from './become.js';
import { ExecServers, MAX_SERVERS, spawnedHelper } from './exec-server.js';

/**
 * One pool of command helpers (exec-server.ts) for every local host of a run: they are all this
 * machine, so db1's idle postgres helper serves db2's command as well as its own. Per host, a lab of
 * three database hosts started three helpers, and each host's first SQL (its helper becoming the
 * socket bridge) started a replacement: five runuser + perl, each a fork of node, where three do.
 *
 * Each local transport holds the pool from its construction to its close(); the last close() ends the
 * helpers, and the next transport gets a new pool. At most MAX_SERVERS helpers per user and holder.
 */
export class MachineHelpers {
  private pool: ExecServers | undefined;
  private holders = 0;

  acquire(): ExecServers {
    if (!this.pool) {
      const me = userInfo().username;
      this.pool = new ExecServers(
        (user, helper) => spawnedHelper(becomeArgv(helper, user, me, 'runuser')),
        () => MAX_SERVERS * Math.max(1, this.holders),
      );
    }
    this.holders++;
    return this.pool;
  }

  async release(pool: ExecServers): Promise<void> {
    if (pool !== this.pool) return;
    if (--this.holders > 0) return;
    this.pool = undefined;
    await pool.close();
  }
}
