/**
 * DP attention + EP experts (`dp=N,ep=N`): the ranks of an ep group make the
 * same collectives every step, so the data-parallel replicas whose ranks
 * share an ep group must step in lockstep. The host runs such a set of
 * replicas as one lane (host/step.ts), padding each replica's batch to the
 * set's largest share with ghost sequences (token 0, never sampled); each
 * rank marks its micro-batch states with how many rows are real, and the
 * MoE block never routes a ghost row (it moves no bytes, counts no load and
 * its output is zero).
 */
import type { BatchState } from '../../runtime/batch';
import type { Mesh } from '../mesh';

/**
 * Data-parallel replicas that must step in lockstep: those whose ranks share
 * an ep group (every rank of an ep group makes the same collectives every
 * step). Sets of replica indices, each sorted, ordered by first replica.
 */
export function lockstepReplicaSets(mesh: Mesh): number[][] {
  const { dp, ep } = mesh.spec;
  const parent = Array.from({ length: dp }, (_, d) => d);
  const find = (d: number): number => (parent[d] === d ? d : (parent[d] = find(parent[d])));
  if (ep > 1) {
    for (const p of mesh.ranks) {
      for (const r of p.epGroup) {
        const a = find(p.coord.dp);
        const b = find(mesh.place(r).coord.dp);
        if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
      }
    }
  }
  const sets = new Map<number, number[]>();
  for (let d = 0; d < dp; d++) {
    const root = find(d);
    if (!sets.has(root)) sets.set(root, []);
    sets.get(root)!.push(d);
  }
  return [...sets.values()].sort((a, b) => a[0] - b[0]);
}

/**
 * Mark micro-batch states whose trailing sequences are ghosts: `real` of the
 * batch's sequences are real, the rest are never routed to experts.
 */
export function markRealSequences(mb: { states: BatchState[]; ranges: [number, number][] }, real: number): void {
  mb.states.forEach((st, m) => {
    const [a, b] = mb.ranges[m];
    st.real = Math.max(0, Math.min(real - a, b - a));
  });
}
