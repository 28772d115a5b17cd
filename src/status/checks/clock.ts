/**
 * Clock skew: each reachable host's clock against the machine running pgplay. Backup ages, recovery
 * targets by time and drill evidence all compare times across hosts. The skew is measured as the
 * host's time minus the middle of the round trip, and only what exceeds the round trip's own
 * uncertainty counts against monitoring.maxClockSkew.
 */
import { formatAge, seconds } from '../format.js';
import type { Finding, StatusCheck } from '../types.js';

export const clockCheck: StatusCheck = {
  id: 'clock',
  title: 'Clock skew against this machine (monitoring.maxClockSkew)',
  async run(ctx) {
    const max = seconds(ctx.inventory.monitoring?.maxClockSkew ?? '5s', 'monitoring.maxClockSkew');
    const findings: Finding[] = [];
    for (const host of Object.values(ctx.hosts)) {
      if (!ctx.facts(host.name).reachable) continue;
      const before = Date.now();
      const r = await ctx.exec(host.name, ['date', '+%s.%N']);
      const after = Date.now();
      const remote = Number(r.stdout.trim()) * 1000;
      if (r.exitCode !== 0 || !Number.isFinite(remote)) {
        findings.push({ severity: 'critical', host: host.name, message: `cannot read the clock: ${r.stderr.trim() || r.stdout.trim()}` });
        continue;
      }
      const skew = (remote - (before + after) / 2) / 1000;
      const uncertainty = (after - before) / 2000;
      const beyond = Math.abs(skew) - uncertainty > max;
      findings.push({
        severity: beyond ? 'critical' : 'ok',
        host: host.name,
        message: `${skew >= 0 ? 'ahead' : 'behind'} by ${Math.abs(skew).toFixed(3)}s (±${uncertainty.toFixed(3)}s)${beyond ? `, more than ${formatAge(max)}` : ''}`,
        values: { skew_seconds: Math.round(skew * 1000) / 1000 },
      });
    }
    return findings.length ? findings : [{ severity: 'critical', message: 'no host could be reached' }];
  },
};
