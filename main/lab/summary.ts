/**
 * The `ranks` part of a generate / chat result. Kept apart from the engine so
 * the lab can import it without loading the engine (it loads on first use).
 */
import type { Engine } from '../engine/host/engine';
import type { RankSummary } from './contract';

/** What each rank of a running engine holds and used. */
export function rankSummaries(engine: Pick<Engine, 'device' | 'threadsPerRank'> & { cluster: Pick<Engine['cluster'], 'ready' | 'memory'> }): RankSummary[] {
  const mem = engine.cluster.memory();
  return engine.cluster.ready.map((r, i) => ({
    rank: i,
    pid: r.pid,
    device: engine.device,
    threads: engine.threadsPerRank,
    layers: r.layers,
    weight_bytes: r.weightBytes,
    rss_peak_bytes: mem[i]?.rssPeak ?? 0,
  }));
}
