/**
 * `lab devices [--json] [--quick]`: what the ranks can run on here.
 *
 * Lists onnxruntime-node's execution providers (in this build? installed?),
 * then — unless --quick — really creates and runs a one-node session on each
 * installed GPU provider in a short-lived child process (a driver crash or
 * hang cannot take the command down), and the GPUs / Vulkan drivers the
 * machine shows. Each unusable provider comes with what to do about it.
 */
import { parse } from './args';
import { autoTransport } from '../engine/comm/world';
import { DEVICE_KINDS, localProviderFacts, ortVersion } from '../engine/runtime/providers';
import type { ProviderFacts } from '../engine/runtime/providers';
import { listGpus, vulkanIcds } from '../engine/runtime/gpus';
import type { GpuInfo } from '../engine/runtime/gpus';
import { probeProvider } from '../engine/runtime/probe';
import type { ProbeResult } from '../engine/runtime/probe';
import type { DeviceKind } from '../engine/types';

export interface DeviceRow {
  device: DeviceKind;
  installed: boolean;
  /** null: not probed (--quick, or not installed) */
  works: boolean | null;
  probe_ms: number | null;
  /** why it does not work and what to do */
  problem: string | null;
  /** a caveat about what it runs on (WebGPU on a machine without a GPU: Mesa's software lavapipe) */
  note: string | null;
}

export interface DevicesReport {
  onnxruntime: string;
  platform: string;
  devices: DeviceRow[];
  gpus: GpuInfo[];
  vulkan_icds: string[];
  /** how ranks on this machine talk (transport 'auto') and why */
  data_plane: { transport: 'shm' | 'unix' | 'tcp'; reason: string };
}

/** Pure: one row per provider from its install facts and (optional) probe. */
export function deviceRows(facts: ProviderFacts[], probes: Partial<Record<DeviceKind, ProbeResult>>, ctx: { gpus: number; icds: string[] } = { gpus: 1, icds: [] }): DeviceRow[] {
  return DEVICE_KINDS.map((device) => {
    const f = facts.find((x) => x.device === device);
    const p = probes[device];
    const installed = device === 'cpu' || !!f?.installed;
    const works = device === 'cpu' ? true : p ? p.ok : null;
    const problem = !installed ? (f?.fix ?? `no ${device} provider in this build`) : p && !p.ok ? p.error : null;
    // Dawn does not name its adapter through onnxruntime: infer the software case.
    const software = device === 'webgpu' && works === true && ctx.gpus === 0 && ctx.icds.some((f) => /lvp_icd/.test(f));
    const note = software ? 'no GPU found: this is most likely Mesa lavapipe (software Vulkan) — functional tests only, 20–200× slower than the CPU provider' : null;
    return { device, installed, works, probe_ms: p ? Math.round(p.ms) : null, problem, note };
  });
}

export async function devicesReport(probe: boolean): Promise<DevicesReport> {
  const facts = localProviderFacts();
  const probes: Partial<Record<DeviceKind, ProbeResult>> = {};
  if (probe) {
    for (const f of facts) if (f.device !== 'cpu' && f.installed) probes[f.device] = await probeProvider(f.device, { timeoutMs: 60_000 });
  }
  const gpus = listGpus();
  const icds = process.platform === 'linux' ? vulkanIcds() : [];
  return { onnxruntime: ortVersion(), platform: `${process.platform}-${process.arch}`, devices: deviceRows(facts, probes, { gpus: gpus.length, icds }), gpus, vulkan_icds: icds, data_plane: autoTransport() };
}

/** Pure: the human table. */
export function formatDevices(r: DevicesReport): string {
  const lines = [`onnxruntime-node ${r.onnxruntime} (${r.platform})`, '', 'device   installed  works   probe'];
  for (const d of r.devices) {
    const works = d.works === null ? '—' : d.works ? 'yes' : 'no';
    lines.push(`${d.device.padEnd(9)}${(d.installed ? 'yes' : 'no').padEnd(11)}${works.padEnd(8)}${d.probe_ms === null ? '' : `${d.probe_ms} ms`}`);
    if (d.problem) lines.push(`         ↳ ${d.problem}`);
    if (d.note) lines.push(`         ↳ ${d.note}`);
  }
  lines.push('', r.gpus.length ? 'GPUs:' : 'GPUs: none found');
  for (const g of r.gpus) lines.push(`  ${g.index}  ${g.name}${g.memoryBytes ? `  ${(g.memoryBytes / 2 ** 30).toFixed(1)} GiB` : ''}  (${g.source})`);
  if (r.platform.startsWith('linux')) {
    lines.push(r.vulkan_icds.length ? `Vulkan drivers: ${r.vulkan_icds.map((p) => p.split('/').pop()).join(', ')}` : 'Vulkan drivers: none (WebGPU needs one; see README, "GPU execution providers")');
  }
  if (r.data_plane) lines.push(`Ranks talk over: ${r.data_plane.transport} (${r.data_plane.reason})`);
  return lines.join('\n');
}

export async function devicesCommand(argv: string[]): Promise<void> {
  const { values } = parse('devices', argv, { json: { type: 'boolean' }, quick: { type: 'boolean' } } as const);
  const r = await devicesReport(values.quick !== true);
  process.stdout.write(values.json ? JSON.stringify(r) + '\n' : formatDevices(r) + '\n');
}
