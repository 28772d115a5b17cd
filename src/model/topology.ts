/**
 * A run changed which server is the primary (a promotion). Emitted after the run by the report layer
 * from what the run recorded; whoever keeps an inventory in step with the servers (the lab) subscribes.
 */
export interface TopologyChanged {
  type: 'topology-changed';
  runId: string;
  /** The inventory the run used, which still describes the old topology. */
  inventory: string;
  /** The new primary. */
  primary: string;
  /** The old primary, when the run fenced it. */
  previousPrimary?: string;
  timeline?: number;
  previousTimeline?: number;
  /** The old primary was rebuilt as a standby of the new one (else it is stopped, fenced). */
  previousPrimaryStreams: boolean;
  /**
   * How the old primary was kept from coming back: stopped by the run (fenced), or not at all because its host
   * could not be reached (impossible), in which case the run went on only on the operator's confirmation.
   */
  fencing?: { state: 'fenced' } | { state: 'impossible'; reason: string; confirmedByOperator: boolean };
}

/** A subscriber says whether it rewrote the inventory to match, so the user is told what is left to do. */
export type TopologyListener = (event: TopologyChanged) => Promise<{ inventoryRewritten: boolean }>;
