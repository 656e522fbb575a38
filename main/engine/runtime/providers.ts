/**
 * Which execution providers this onnxruntime-node install has, and what to
 * tell the user when one is missing or fails.
 *
 * - onnxruntime-node's `listSupportedBackends()` names what this build knows
 *   (linux-x64 1.30: cpu and webgpu bundled; cuda and tensorrt "not bundled",
 *   i.e. present only when its install script downloaded
 *   libonnxruntime_providers_cuda.so next to the binding).
 * - Whether a provider really works is only known by running it (probe.ts).
 * - Errors: onnxruntime's raw messages (measured with 1.30, see
 *   `explainDeviceError`) become one line that says what to do.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DeviceKind } from '../types';

export const DEVICE_KINDS: readonly DeviceKind[] = ['cpu', 'webgpu', 'cuda'];

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
