/**
 * The float32 sum the collectives use: dst = srcs[0] + srcs[1] + … in that
 * order (so a chunk summed by its owner has the same bits wherever it is
 * copied). Native and vectorised when the shm addon is built; a plain loop
 * otherwise.
 */
import { shmAddon } from './shm-native';

export function reduceInto(dst: Float32Array, srcs: Float32Array[]): void {
  if (dst.length === 0) return;
  const native = shmAddon();
  if (native) return native.reduceInto(dst, srcs);
  dst.set(srcs[0].subarray(0, dst.length));
  for (let r = 1; r < srcs.length; r++) {
    const s = srcs[r];
    for (let i = 0; i < dst.length; i++) dst[i] += s[i];
  }
}
