/** Running steps may finish within this long after Ctrl-C before they are aborted. */
export const DEFAULT_GRACE_MS = 10_000;

/** A signal that aborts graceMs after `interrupt` does: what running steps see. */
export function graceController(interrupt: AbortSignal, graceMs: number): { signal: AbortSignal; dispose(): void } {
  const hard = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onInterrupt = () => {
    timer = setTimeout(() => hard.abort(interrupt.reason), graceMs);
  };
  if (interrupt.aborted) hard.abort(interrupt.reason);
  else interrupt.addEventListener('abort', onInterrupt, { once: true });
  return {
    signal: hard.signal,
    dispose() {
      clearTimeout(timer);
      interrupt.removeEventListener('abort', onInterrupt);
    },
  };
}
