/**
 * Data-parallel routing: which replica serves each new sequence. Pure, so
 * the policy is testable apart from the processes.
 *   round-robin   a counter that persists across requests
 *   least-loaded  the replica with the fewest sequences in flight (ties → lowest index)
 */
export type Routing = 'round-robin' | 'least-loaded';

/** Assign `n` new sequences; `active` (sequences in flight per replica) is updated in place. */
export function route(policy: Routing, n: number, active: number[], counter: { next: number }): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let d: number;
    if (policy === 'round-robin') d = counter.next++ % active.length;
    else d = active.reduce((best, a, j) => (a < active[best] ? j : best), 0);
    active[d]++;
    out.push(d);
  }
  return out;
}
