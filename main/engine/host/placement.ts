/**
 * Placement: which device id each rank uses (pure, apart from counting the
 * GPUs CUDA sees). Explicit ids (`--devices 0,1`, PARALAB_DEVICES) are used
 * in rank order and repeat; otherwise ranks go round-robin over the GPUs.
 */
import type { DeviceKind } from '../types';
import { DeviceError } from '../runtime/providers';
import { cudaGpus } from '../runtime/gpus';

export interface Placement {
  device: DeviceKind;
  /** device id per global rank (null on the CPU) */
  deviceIds: (number | null)[];
  /** how the ids were chosen */
  how: 'cpu' | 'round-robin' | 'explicit';
  /** ranks per device id */
  ranksPerDevice: Record<number, number[]>;
  /** at least two ranks use the same GPU (they split its memory and compute) */
  shared: boolean;
  /** caveats worth showing with the run */
  notes: string[];
}

/**
 * Pure: map `world` ranks onto GPUs. Explicit ids (`--devices 0,1`) are
 * used in order and repeat round-robin when there are fewer than ranks;
 * otherwise ranks go round-robin over `gpuCount` GPUs (at least one).
 */
export function placeRanks(world: number, device: DeviceKind, o: { gpuCount?: number; explicit?: number[] } = {}): Placement {
  if (device === 'cpu') {
    if (o.explicit && o.explicit.length > 0) throw new DeviceError('bad-device-id', device, '--devices applies to --device webgpu or cuda; the CPU provider has no device ids');
    return { device, deviceIds: new Array<number | null>(world).fill(null), how: 'cpu', ranksPerDevice: {}, shared: false, notes: [] };
  }
  const notes: string[] = [];
  let ids: number[];
  let how: Placement['how'];
  if (o.explicit && o.explicit.length > 0) {
    if (o.explicit.some((d) => !Number.isInteger(d) || d < 0)) throw new DeviceError('bad-device-id', device, `--devices must be non-negative integers, got ${o.explicit.join(',')}`);
    const n = o.gpuCount;
    const bad = n !== undefined && n > 0 ? o.explicit.filter((d) => d >= n) : [];
    if (bad.length > 0) throw new DeviceError('bad-device-id', device, `device id ${bad[0]} does not exist: this machine shows ${n} GPU(s) (ids 0..${n! - 1}); see \`lab devices\``);
    if (o.explicit.length > world) notes.push(`--devices lists ${o.explicit.length} ids for ${world} rank(s); the extra ids are unused`);
    ids = Array.from({ length: world }, (_, r) => o.explicit![r % o.explicit!.length]);
    how = 'explicit';
  } else {
    // The WebGPU provider cannot choose an adapter: one device id for all.
    const n = device === 'webgpu' ? 1 : Math.max(1, o.gpuCount ?? 1);
    ids = Array.from({ length: world }, (_, r) => r % n);
    how = 'round-robin';
  }
  const ranksPerDevice: Record<number, number[]> = {};
  ids.forEach((d, r) => (ranksPerDevice[d] ??= []).push(r));
  const shared = Object.values(ranksPerDevice).some((rs) => rs.length > 1);
  if (shared) notes.push(`${world} ranks on ${Object.keys(ranksPerDevice).length} GPU(s): ranks sharing a GPU split its memory and compute`);
  if (device === 'webgpu') notes.push('onnxruntime-node 1.30’s WebGPU provider picks one adapter (Dawn’s default) and has no adapter index: every webgpu rank uses it, whatever its device id');
  return { device, deviceIds: ids, how, ranksPerDevice, shared, notes };
}

/** How many GPUs CUDA sees (nvidia-smi); undefined when unknown or not CUDA (WebGPU uses one adapter). */
export function gpuCountFor(device: DeviceKind): number | undefined {
  if (device !== 'cuda') return undefined;
  const n = cudaGpus().length;
  return n > 0 ? n : undefined;
}

/** Pure: '0,1,1' → [0,1,1]; undefined / '' → undefined. */
export function parseDeviceList(v: string | undefined): number[] | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const ids = v.split(',').map((s) => s.trim());
  if (ids.some((s) => !/^\d+$/.test(s))) throw new DeviceError('bad-device-id', 'cpu', `--devices must be comma-separated GPU ids such as 0,1; got '${v}'`);
  return ids.map(Number);
}
