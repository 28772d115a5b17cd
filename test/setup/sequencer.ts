import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The end-to-end files that take longest (set-up included: a rig or lab and its cluster), longest first.
 * With two files at a time the suite ends when the last file does: a long file started last runs alone
 * at the end while the other worker idles (CI had the two rig-procedures files, the longest, start last,
 * and vitest's own order on a clean clone, without its cache of durations, is arbitrary). Starting the
 * longest first leaves the short ones to fill in. Approximate; the order is all that matters.
 */
const LONGEST_FIRST = [
  'test/e2e/dr-machines.test.ts',
  'test/e2e/barman-machines.test.ts',
  'test/e2e/barman-procedures-machines.test.ts',
  'test/e2e/lab-barman.test.ts',
  'test/e2e/drill-evidence.test.ts',
  'test/e2e/rig-procedures-debian.test.ts',
  'test/e2e/rig-procedures-pgdata.test.ts',
  'test/e2e/procedures-ssh.test.ts',
  'test/e2e/safety-guards.test.ts',
  'test/e2e/service-debian.test.ts',
  'test/e2e/procedures-evidence.test.ts',
  'test/e2e/pgbackrest-machines.test.ts',
  'test/e2e/stragglers-two.test.ts',
  'test/e2e/procedures-standby.test.ts',
  'test/e2e/plan-shipped.test.ts',
];

/** vitest's order (unit before e2e, failed and, with its cache, slower files first), with the known longest e2e files first. */
export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const at = LONGEST_FIRST.findIndex((path) => spec.moduleId.endsWith(`/${path}`));
      return at === -1 ? LONGEST_FIRST.length : at;
    };
    const group = (spec: TestSpecification) => spec.project.config.sequence.groupOrder ?? 0;
    // Array.prototype.sort is stable: within a group and rank vitest's order stays.
    return [...sorted].sort((a, b) => group(a) - group(b) || rank(a) - rank(b));
  }
}
