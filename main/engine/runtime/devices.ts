/**
 * Which execution providers and GPUs a rank can use, and what to tell the
 * user when one is missing.
 *
 * - Providers: onnxruntime-node's `listSupportedBackends()` names what this
 *   build knows (linux-x64 1.30: cpu and webgpu bundled; cuda and tensorrt
 *   "not bundled", i.e. present only when its install script downloaded
 *   libonnxruntime_providers_cuda.so next to the binding).
 * - Whether a provider really works is only known by running it: WebGPU needs
 *   Dawn to find an adapter (Vulkan on Linux: a GPU driver, or Mesa ≥ 25's
 *   lavapipe), CUDA needs a driver, CUDA 12 and cuDNN. `probeProvider` creates
 *   and runs a one-node session in a short-lived child process, so a native
 *   crash or a hang in a driver cannot take the host down.
 * - GPUs: `nvidia-smi` where it exists, else the PCI display controllers.
 * - Placement: ranks onto device ids, round-robin or explicit (pure).
 * - Errors: onnxruntime's raw messages (measured with 1.30, see
 *   `explainDeviceError`) become one line that says what to do.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DeviceKind } from './ort';
import { GraphBuilder } from '../graph/onnx';

export const DEVICE_KINDS: readonly DeviceKind[] = ['cpu', 'webgpu', 'cuda'];

// ---------------------------------------------------------------------------
// install facts

/** The folder holding onnxruntime_binding.node and the provider libraries. */
export function ortBinDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

export function ortVersion(): string {
  const pkg = require.resolve('onnxruntime-node/package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** The shared library a non-bundled provider needs beside the binding (null: nothing to download). */
export function providerLibrary(device: DeviceKind, platform = process.platform): string | null {
  if (device !== 'cuda') return null;
  return platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
}

export const CUDA_INSTALL_HINT =
  'install it on a machine with internet, an NVIDIA driver and CUDA 12: `node node_modules/onnxruntime-node/script/install.js --onnxruntime-node-install=cuda12` ' +
  '(or reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12); linux-x64 only';

export const WEBGPU_ADAPTER_HINT =
  'install the Vulkan driver for your GPU (NVIDIA driver, or Mesa: apt-get install mesa-vulkan-drivers libvulkan1); ' +
  'without a GPU, Mesa ≥ 25 lavapipe works (Debian 12: scripts/lavapipe.sh); Debian 12’s own Mesa 22 gives Dawn no adapter';

export interface ProviderFacts {
  device: DeviceKind;
  /** named by listSupportedBackends() */
  known: boolean;
  /** shipped inside the npm package */
  bundled: boolean;
  /** the files it needs are on disk (bundled, or downloaded by the install script) */
  installed: boolean;
  /** what to do when it is not installed */
  fix: string | null;
}

/** Pure: provider facts from the backend list and a file-existence check. */
export function providerFacts(
  backends: { name: string; bundled: boolean }[],
  binDir: string,
  exists: (p: string) => boolean,
  platform = process.platform,
): ProviderFacts[] {
  return DEVICE_KINDS.map((device) => {
    const b = backends.find((x) => x.name === device);
    const lib = providerLibrary(device, platform);
    const installed = !!b && (b.bundled || (lib !== null && exists(path.join(binDir, lib))));
    let fix: string | null = null;
    if (!installed) fix = device === 'cuda' ? CUDA_INSTALL_HINT : `this onnxruntime-node build (${platform}) has no ${device} provider`;
    return { device, known: !!b, bundled: !!b?.bundled, installed, fix };
  });
}

/** The facts for this process's onnxruntime-node (loads the binding). */
export function localProviderFacts(): ProviderFacts[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ort = require('onnxruntime-node') as { listSupportedBackends?: () => { name: string; bundled: boolean }[] };
  const list = ort.listSupportedBackends?.() ?? [{ name: 'cpu', bundled: true }];
  return providerFacts(list, ortBinDir(), existsSync);
}

/** Refuse a device whose provider files are absent, before any rank is spawned. */
export function assertProviderInstalled(device: DeviceKind, facts?: ProviderFacts[]): void {
  if (device === 'cpu') return;
  const f = (facts ?? localProviderFacts()).find((x) => x.device === device);
  if (f && !f.installed) throw new DeviceError('provider-missing', device, `the ${device} execution provider is not in this onnxruntime-node install: ${f.fix}; or use --device webgpu / cpu`);
}

// ---------------------------------------------------------------------------
// errors

export type DeviceErrorKind = 'provider-missing' | 'provider-broken' | 'no-adapter' | 'no-device' | 'bad-device-id' | 'out-of-memory';

export class DeviceError extends Error {
  constructor(
    readonly kind: DeviceErrorKind,
    readonly device: DeviceKind,
    message: string,
  ) {
    super(message);
    this.name = 'DeviceError';
  }
}

/**
 * Map what onnxruntime-node 1.30 throws to an actionable one-liner; null when
 * the message is not a device problem. Messages measured here:
 *  - cuda, library absent: "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"
 *  - webgpu, no Vulkan driver / adapter: "... webgpu_context.cc:136 ... Failed to get a WebGPU adapter: No supported adapters"
 *  - webgpu, a tensor over the adapter's buffer limit: "... Too many storage buffers in shader ..." (the
 *    VK_ERROR_OUT_OF_DEVICE_MEMORY from vkCreateBuffer only reaches the log, not the exception)
 * The CUDA runtime messages ("CUDA failure 100/101/2", "Failed to allocate memory", "CUBLAS_STATUS_ALLOC_FAILED")
 * are onnxruntime's documented texts; no CUDA machine was available to observe them.
 */
export function explainDeviceError(device: DeviceKind, message: string, ctx: { cudaLibraryPresent?: boolean; deviceId?: number } = {}): DeviceError | null {
  const m = message;
  const oom = /out of memory|OUT_OF_DEVICE_MEMORY|OUT_OF_HOST_MEMORY|Failed to allocate memory|ALLOC_FAILED|Too many storage buffers in shader|exceeds the maximum buffer size|maxBufferSize/i;
  if (device === 'cuda') {
    if (/AppendExecutionProvider_Cuda: Failed to load shared library|libonnxruntime_providers_(shared|cuda)\.so/i.test(m)) {
      return ctx.cudaLibraryPresent
        ? new DeviceError('provider-broken', device, 'the CUDA provider is installed but could not load: it needs an NVIDIA driver, the CUDA 12 runtime and cuDNN 9 on the library path (LD_LIBRARY_PATH); or use --device webgpu / cpu')
        : new DeviceError('provider-missing', device, `the CUDA execution provider is not in this onnxruntime-node install: ${CUDA_INSTALL_HINT}; or use --device webgpu / cpu`);
    }
    if (/CUDA failure 100|no CUDA-capable device|CUDA failure 35|driver version is insufficient|CUDA failure 999/i.test(m)) {
      return new DeviceError('no-device', device, 'CUDA found no usable GPU (no NVIDIA GPU, or its driver is too old for CUDA 12): check `nvidia-smi`; or use --device webgpu / cpu');
    }
    if (/CUDA failure 101|invalid device ordinal/i.test(m)) {
      return new DeviceError('bad-device-id', device, `CUDA device ${ctx.deviceId ?? '?'} does not exist on this machine: give ids that \`lab devices\` lists with --devices`);
    }
  }
  if (device === 'webgpu' && /Failed to get a WebGPU adapter|No supported adapters|RequestAdapter/i.test(m)) {
    return new DeviceError('no-adapter', device, `WebGPU found no GPU adapter: ${WEBGPU_ADAPTER_HINT}`);
  }
  if (device !== 'cpu' && oom.test(m)) {
    return new DeviceError(
      'out-of-memory',
      device,
      `the ${device} device ran out of memory (or one tensor exceeds its largest buffer): split the weights over more ranks (tp / pp), put fewer ranks on each GPU (--devices), use a shorter context, or --device cpu`,
    );
  }
  return null;
}

// ---------------------------------------------------------------------------
// GPUs on this machine

export interface GpuInfo {
  index: number;
  name: string;
  vendor: string;
  memoryBytes: number | null;
  source: 'nvidia-smi' | 'pci';
}

/** Pure: `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` → GPUs. */
export function parseNvidiaSmi(csv: string): GpuInfo[] {
  return csv
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split(',').map((s) => s.trim()))
    .filter((f) => f.length >= 3 && Number.isInteger(Number(f[0])))
    .map((f) => ({ index: Number(f[0]), name: f[1], vendor: 'NVIDIA', memoryBytes: Number.isFinite(Number(f[2])) ? Number(f[2]) * 1024 * 1024 : null, source: 'nvidia-smi' as const }));
}

const PCI_VENDORS: Record<string, string> = { '0x10de': 'NVIDIA', '0x1002': 'AMD', '0x8086': 'Intel', '0x1af4': 'virtio', '0x1234': 'QEMU', '0x15ad': 'VMware', '0x1013': 'Cirrus', '0x1a03': 'ASPEED', '0x102b': 'Matrox' };

/** Pure: PCI functions (class, vendor, device) → display controllers (class 0x03xxxx). */
export function parsePciDisplays(devs: { slot: string; cls: string; vendor: string; device: string }[]): GpuInfo[] {
  return devs
    .filter((d) => d.cls.trim().toLowerCase().startsWith('0x03'))
    .sort((a, b) => a.slot.localeCompare(b.slot))
    .map((d, index) => {
      const v = d.vendor.trim().toLowerCase();
      return { index, name: `${PCI_VENDORS[v] ?? v} ${d.device.trim()} at ${d.slot}`, vendor: PCI_VENDORS[v] ?? v, memoryBytes: null, source: 'pci' as const };
    });
}

function readPci(): { slot: string; cls: string; vendor: string; device: string }[] {
  const root = '/sys/bus/pci/devices';
  if (!existsSync(root)) return [];
  const read = (slot: string, f: string) => {
    try {
      return readFileSync(path.join(root, slot, f), 'utf8');
    } catch {
      return '';
    }
  };
  return readdirSync(root).map((slot) => ({ slot, cls: read(slot, 'class'), vendor: read(slot, 'vendor'), device: read(slot, 'device') }));
}

/** NVIDIA GPUs as CUDA numbers them (CUDA_VISIBLE_DEVICES respected), or [] when nvidia-smi is absent. */
export function cudaGpus(): GpuInfo[] {
  const r = spawnSync('nvidia-smi', ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || !r.stdout) return [];
  const all = parseNvidiaSmi(r.stdout);
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible === undefined || visible.trim() === '') return all;
  const ids = visible.split(',').map((s) => Number(s.trim()));
  return ids.filter((i) => all.some((g) => g.index === i)).map((i, k) => ({ ...all.find((g) => g.index === i)!, index: k }));
}

/** Every GPU this machine shows: nvidia-smi's list, else the PCI display controllers (Linux). */
export function listGpus(): GpuInfo[] {
  const nv = cudaGpus();
  return nv.length > 0 ? nv : parsePciDisplays(readPci());
}

/** Vulkan ICD manifests the loader would read (VK_ICD_FILENAMES / VK_DRIVER_FILES, else the standard folders). */
export function vulkanIcds(env: NodeJS.ProcessEnv = process.env): string[] {
  const explicit = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  if (explicit) return explicit.split(':').filter(Boolean);
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  return dirs.filter(existsSync).flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.json')).map((f) => path.join(d, f)));
}

// ---------------------------------------------------------------------------
// probing a provider for real, in a child process

export interface ProbeResult {
  device: DeviceKind;
  ok: boolean;
  /** ms to create the session and run it once */
  ms: number;
  /** one-line cause when not ok (explained when the error is a known device problem) */
  error: string | null;
  /** the child's stderr (Dawn / Vulkan loader warnings) */
  log: string;
}

/** y = x + x over 4 floats: the smallest graph every provider implements. */
function probeModel(): Uint8Array {
  const g = new GraphBuilder('paralab-probe');
  const x = g.input('x', 'float32', [4]);
  const y = g.op('Add', [x, x]);
  g.output(y, 'float32', [4]);
  return g.toBytes();
}

const PROBE_CHILD = `
const ort = require(process.argv[1]);
const ep = process.argv[2];
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  const t0 = Date.now();
  const say = (o) => { process.stdout.write(JSON.stringify({ ...o, ms: Date.now() - t0 })); process.exit(0); };
  try {
    const s = await ort.InferenceSession.create(new Uint8Array(Buffer.concat(chunks)), { executionProviders: [ep === 'cuda' ? { name: 'cuda', deviceId: Number(process.argv[3]) } : ep], logSeverityLevel: 3 });
    const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]) });
    const y = Array.from(out[s.outputNames[0]].data);
    say(y.join(',') === '2,4,6,8' ? { ok: true } : { ok: false, error: 'wrong result ' + y.join(',') });
  } catch (e) { say({ ok: false, error: String(e && e.message || e) }); }
});`;

/** Create and run a one-node session on `device` in a child process; never throws. */
export function probeProvider(device: DeviceKind, o: { timeoutMs?: number; deviceId?: number } = {}): Promise<ProbeResult> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', PROBE_CHILD, require.resolve('onnxruntime-node'), device, String(o.deviceId ?? 0)], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const finish = (r: Omit<ProbeResult, 'device' | 'log'>) => {
      clearTimeout(timer);
      const log = err.replace(/\x1b\[[0-9;]*m/g, '').trim();
      if (!r.ok && r.error) {
        const lib = providerLibrary(device);
        const why = explainDeviceError(device, `${r.error}\n${log}`, { cudaLibraryPresent: lib !== null && existsSync(path.join(ortBinDir(), lib)), deviceId: o.deviceId });
        if (why) r = { ...r, error: why.message };
        else r = { ...r, error: r.error.split('\n')[0] };
      }
      resolve({ device, ...r, log });
    };
    child.on('error', (e) => finish({ ok: false, ms: performance.now() - t0, error: `cannot start the probe process: ${e.message}` }));
    // 'close' (not 'exit') comes once the pipes are drained, so the output read below is whole
    child.on('close', (code, signal) => {
      try {
        const j = JSON.parse(out) as { ok: boolean; ms: number; error?: string };
        finish({ ok: j.ok, ms: j.ms, error: j.error ?? null });
      } catch {
        const how = signal === 'SIGKILL' ? `hung for more than ${Math.round(timeoutMs / 1000)} s` : signal ? `crashed (${signal})` : `exited with code ${code}`;
        finish({ ok: false, ms: performance.now() - t0, error: `the ${device} probe ${how}` });
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.from(probeModel()));
  });
}

// ---------------------------------------------------------------------------
// placement

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

// ---------------------------------------------------------------------------
// which provider runs which node

export interface NodePlacement {
  provider: string;
  /** op type and node name, e.g. { op: 'Where', name: 'n_Where_12' } */
  nodes: { op: string; name: string }[];
  /** the count onnxruntime reports (also when it lists no names: "All nodes placed on …") */
  count: number;
}

/**
 * Pure: onnxruntime's verbose "Node placements" block (session_state.cc
 * VerifyEachNodeIsAssignedToAnEp) → per provider, the nodes it runs.
 * Memcpy nodes are onnxruntime's own copies between devices.
 */
export function parseNodePlacements(log: string): NodePlacement[] {
  const out: NodePlacement[] = [];
  let cur: NodePlacement | null = null;
  for (const line of log.split('\n')) {
    if (!line.includes('VerifyEachNodeIsAssignedToAnEp]')) continue;
    const body = line.slice(line.indexOf('VerifyEachNodeIsAssignedToAnEp]') + 'VerifyEachNodeIsAssignedToAnEp]'.length);
    const head = /(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(body);
    if (head) {
      cur = { provider: head[1], nodes: [], count: Number(head[2]) };
      out.push(cur);
      continue;
    }
    const node = /^\s{3}(\w+) \(([^)]*)\)\s*$/.exec(body);
    if (node && cur) cur.nodes.push({ op: node[1], name: node[2] });
  }
  return out;
}

const PLACEMENT_CHILD = `
const ort = require(process.argv[1]);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  ort.env.logLevel = 'verbose';
  try {
    const s = await ort.InferenceSession.create(new Uint8Array(Buffer.concat(chunks)), { executionProviders: [process.argv[2], 'cpu'], logSeverityLevel: 0 });
    await s.release();
    process.exit(0);
  } catch (e) { process.stderr.write('PROBE-ERROR ' + String(e && e.message || e)); process.exit(3); }
});`;

/** Create a session for `bytes` on `device` in a child process with verbose logging and report where each node went. */
export function nodePlacements(bytes: Uint8Array, device: DeviceKind, timeoutMs = 120_000): Promise<NodePlacement[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', PLACEMENT_CHILD, require.resolve('onnxruntime-node'), device], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // 'close' (not 'exit') comes once the pipes are drained, so the output read below is whole
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(parseNodePlacements(log));
      else reject(new Error(`node placement probe on ${device} failed (${signal ?? code}): ${/PROBE-ERROR (.*)/.exec(log)?.[1] ?? log.slice(-300)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.from(bytes));
  });
}
