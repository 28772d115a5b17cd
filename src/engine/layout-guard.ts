import { PgplayError } from '../core/errors.js';
import type { HostFacts } from '../model/facts.js';

/**
 * The refusal (exit 3) of a run whose servers contradict the inventory's pgdata or layout
 * (facts.layout_contradictions): every step would act on the wrong files. Names each host and what to
 * correct; undefined when none does.
 */
export function layoutRefusal(facts: Record<string, HostFacts>, hosts: readonly string[]): PgplayError | undefined {
  const found = hosts.flatMap((h) => (facts[h]?.layout_contradictions ?? []).map((c) => `${h}: ${c}`));
  if (found.length === 0) return undefined;
  const first = hosts.find((h) => facts[h]?.layout_contradictions?.length);
  return new PgplayError({
    code: 'GUARD',
    message: `the inventory contradicts the running server${found.length > 1 ? 's' : ''}: ${found.join('; ')}`,
    hint: 'correct the host\'s pgdata, postgres.layout, postgres.cluster, postgres.port or postgres.socketDir in the inventory so that it describes the server; pgplay acts on no host whose server it would misread',
    host: first,
  });
}
