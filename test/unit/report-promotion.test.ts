/**
 * The promotion report (issue 12 item 2): whether the old primary was fenced, or could not be (its host
 * unreachable) and the operator confirmed it cannot come back; read from what the run registered.
 */
import { describe, expect, it } from 'vitest';
import type { JournalRun } from '../../src/journal/reader.js';
import type { PromotionReportOutputs } from '../../src/model/report.js';
import { promotionNotice, topologyChangeOf } from '../../src/report/procedures.js';

const OUTPUTS: PromotionReportOutputs = { promoted: 'promotion', fenced: 'fence', fence_confirmed: 'fence_confirmed' };

function journal(registered: Array<{ name: string; host: string; value: Record<string, unknown> }>): JournalRun {
  return {
    file: '/state/runs/r.jsonl',
    header: { runId: 'r1', inventory: '/inv.yml' },
    events: [],
    registered: registered.map((r) => ({ type: 'registered', step: r.name, handler: false, ...r })),
    status: 'ok',
    counts: { ok: 0, changed: 0, skipped: 0, failed: 0 },
  } as unknown as JournalRun;
}

const promoted = { name: 'promotion', host: 'db1', value: { changed: true, timeline: 3, previous_timeline: 2 } };
const reason = 'cannot connect to db2 (127.0.51.2:22) as root: connection refused (nothing listens on that port)';

describe('the promotion report says how the old primary was fenced', () => {
  it('impossible (unreachable) and confirmed by the operator', () => {
    const change = topologyChangeOf(
      journal([
        { name: 'fence', host: 'db2', value: { changed: false, skipped: true, failed: false, unreachable: true, unreachable_reason: reason } },
        { name: 'fence_confirmed', host: 'db1', value: { changed: false, skipped: false, failed: false } },
        promoted,
      ]),
      OUTPUTS,
    )!;
    expect(change).toMatchObject({ primary: 'db1', previousPrimary: 'db2', fencing: { state: 'impossible', reason, confirmedByOperator: true } });
    const notice = promotionNotice(change, false);
    expect(notice).toContain('TOPOLOGY CHANGED: db1 is the primary now (timeline 2 -> 3); db2 could not be fenced.');
    expect(notice).toContain(`FENCING IMPOSSIBLE: db2 could not be reached (${reason}).`);
    expect(notice).toContain('The operator confirmed that db2 cannot come back (-p old_primary=down)');
  });

  it('fenced: the old primary was stopped by the run', () => {
    const change = topologyChangeOf(journal([{ name: 'fence', host: 'db1', value: { changed: true, skipped: false, failed: false } }, { ...promoted, host: 'db2' }]), OUTPUTS)!;
    expect(change.fencing).toEqual({ state: 'fenced' });
    expect(promotionNotice(change, false)).toContain('db1 is stopped (fenced)');
    expect(promotionNotice(change, false)).not.toContain('FENCING IMPOSSIBLE');
  });
});
