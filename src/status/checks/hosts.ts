/** Every host answers, and each database server is what the inventory says it is. */
import type { Finding, StatusCheck } from '../types.js';

export const hostsCheck: StatusCheck = {
  id: 'hosts',
  title: 'Hosts reachable, servers in their roles',
  async run(ctx) {
    const findings: Finding[] = [];
    for (const host of Object.values(ctx.hosts)) {
      const f = ctx.facts(host.name);
      // A drill host is scratch space: its absence delays the next drill, it puts no data at risk.
      const down = host.role === 'drill' ? 'warning' : 'critical';
      if (!f.reachable) {
        findings.push({ severity: down, host: host.name, message: `unreachable: ${f.error ?? 'no answer'}`, values: { reachable: false } });
        continue;
      }
      if (host.role === 'primary') {
        if (!f.running) findings.push({ severity: 'critical', host: host.name, message: 'the primary is not running', values: { reachable: true, running: false } });
        else if (f.in_recovery) findings.push({ severity: 'critical', host: host.name, message: 'the inventory primary is in recovery (a standby): stale inventory or a second failover', values: { reachable: true, running: true, in_recovery: true } });
        else findings.push({ severity: 'ok', host: host.name, message: `primary, read-write, timeline ${f.timeline ?? '?'}`, values: { reachable: true, running: true, in_recovery: false } });
      } else if (host.role === 'standby') {
        if (!f.running) findings.push({ severity: 'critical', host: host.name, message: f.pgdata_present ? 'the standby is not running' : 'the standby has no data directory (never built?)', values: { reachable: true, running: false } });
        else if (!f.in_recovery) findings.push({ severity: 'critical', host: host.name, message: 'the standby is read-write: a second primary (fence one of them)', values: { reachable: true, running: true, in_recovery: false } });
        else findings.push({ severity: 'ok', host: host.name, message: `standby, in recovery, timeline ${f.timeline ?? '?'}`, values: { reachable: true, running: true, in_recovery: true } });
      } else {
        findings.push({ severity: 'ok', host: host.name, message: `${host.role}, reachable`, values: { reachable: true } });
      }
    }
    return findings;
  },
};
