/**
 * The pure parts of device handling: which providers an install has, how
 * onnxruntime's raw errors become one actionable line (the messages below are
 * the ones onnxruntime-node 1.30 threw on this machine), GPU lists, rank
 * placement, session options per device and the verify tolerances.
 */
import { describe, expect, it } from 'vitest';
import { DeviceError, explainDeviceError, providerFacts } from '../../../main/engine/runtime/providers';
import { parseNvidiaSmi, parsePciDisplays, vulkanIcds } from '../../../main/engine/runtime/gpus';
import { parseDeviceList, placeRanks } from '../../../main/engine/host/placement';
import { sessionOptions } from '../../../main/engine/runtime/ort';
import { toleranceFor } from '../../../main/engine/host/verify';

// Observed with onnxruntime-node 1.30.0 (linux-x64) here.
const CUDA_ABSENT = 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library';
const NO_ADAPTER =
  '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';
const TOO_BIG =
  "Non-zero status code returned while running Expand node. Name:'n_Expand_1' Status Message: /onnxruntime_src/onnxruntime/core/providers/webgpu/shader_helper.cc:306 ... numbers_storage_buffers_ <= limits_.maxStorageBuffersPerShaderStage was false. Too many storage buffers in shader. Current: 49, Max is 16\n";

describe('providerFacts', () => {
  const list = [
    { name: 'cpu', bundled: true },
    { name: 'webgpu', bundled: true },
    { name: 'cuda', bundled: false },
    { name: 'tensorrt', bundled: false },
  ];
  it('bundled providers are installed; cuda only when its library was downloaded beside the binding', () => {
    const without = providerFacts(list, '/bin', () => false, 'linux');
    expect(without.map((f) => [f.device, f.installed])).toEqual([
      ['cpu', true],
      ['webgpu', true],
      ['cuda', false],
    ]);
    expect(without[2].fix).toMatch(/install\.js --onnxruntime-node-install=cuda12/);
    expect(without[2].fix).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
    const withLib = providerFacts(list, '/bin', (p) => p === '/bin/libonnxruntime_providers_cuda.so', 'linux');
    expect(withLib[2].installed).toBe(true);
    expect(withLib[2].fix).toBeNull();
  });
  it('a provider the build does not name is not installed', () => {
    const f = providerFacts([{ name: 'cpu', bundled: true }], '/bin', () => true, 'darwin');
    expect(f.find((x) => x.device === 'webgpu')!.installed).toBe(false);
    expect(f.find((x) => x.device === 'webgpu')!.fix).toMatch(/no webgpu provider/);
  });
});

describe('explainDeviceError', () => {
  it('cuda library absent → how to install it', () => {
    const e = explainDeviceError('cuda', CUDA_ABSENT, { cudaLibraryPresent: false })!;
    expect(e.kind).toBe('provider-missing');
    expect(e.message).toMatch(/not in this onnxruntime-node install/);
    expect(e.message).toMatch(/--onnxruntime-node-install=cuda12/);
    expect(e.message).not.toMatch(/\n/);
  });
  it('cuda library present but not loadable → the runtime libraries it needs', () => {
    const e = explainDeviceError('cuda', CUDA_ABSENT, { cudaLibraryPresent: true })!;
    expect(e.kind).toBe('provider-broken');
    expect(e.message).toMatch(/CUDA 12.*cuDNN 9/);
  });
  it('cuda runtime errors: no GPU, bad ordinal, out of memory', () => {
    expect(explainDeviceError('cuda', 'CUDA failure 100: no CUDA-capable device is detected ; GPU=0')!.kind).toBe('no-device');
    const bad = explainDeviceError('cuda', 'CUDA failure 101: invalid device ordinal', { deviceId: 3 })!;
    expect(bad.kind).toBe('bad-device-id');
    expect(bad.message).toMatch(/device 3 does not exist/);
    expect(explainDeviceError('cuda', 'Failed to allocate memory for requested buffer of size 123')!.kind).toBe('out-of-memory');
  });
  it('webgpu without an adapter → Vulkan drivers / lavapipe', () => {
    const e = explainDeviceError('webgpu', NO_ADAPTER)!;
    expect(e.kind).toBe('no-adapter');
    expect(e.message).toMatch(/no GPU adapter/);
    expect(e.message).toMatch(/lavapipe/);
    expect(e.message).toMatch(/mesa-vulkan-drivers/);
  });
  it('webgpu tensor over the buffer limit / Vulkan OOM → out of device memory with what to change', () => {
    const e = explainDeviceError('webgpu', TOO_BIG)!;
    expect(e.kind).toBe('out-of-memory');
    expect(e.message).toMatch(/tp \/ pp/);
    expect(explainDeviceError('webgpu', 'vkCreateBuffer failed with VK_ERROR_OUT_OF_DEVICE_MEMORY')!.kind).toBe('out-of-memory');
  });
  it('unrelated errors and the CPU pass through', () => {
    expect(explainDeviceError('webgpu', 'segment attn0 needs the residual stream')).toBeNull();
    expect(explainDeviceError('cpu', 'out of memory')).toBeNull();
  });
});

describe('GPU lists', () => {
  it('nvidia-smi CSV', () => {
    const g = parseNvidiaSmi('0, NVIDIA H200, 143771\n1, NVIDIA H200, 143771\n');
    expect(g).toHaveLength(2);
    expect(g[1]).toMatchObject({ index: 1, name: 'NVIDIA H200', vendor: 'NVIDIA', source: 'nvidia-smi' });
    expect(g[0].memoryBytes).toBe(143771 * 1024 * 1024);
    expect(parseNvidiaSmi('')).toEqual([]);
  });
  it('PCI display controllers only, in slot order', () => {
    const g = parsePciDisplays([
      { slot: '0000:02:00.0', cls: '0x030000\n', vendor: '0x1002\n', device: '0x73bf\n' },
      { slot: '0000:00:1f.0', cls: '0x060100\n', vendor: '0x8086\n', device: '0x1234\n' },
      { slot: '0000:01:00.0', cls: '0x030200\n', vendor: '0x10de\n', device: '0x2335\n' },
    ]);
    expect(g.map((x) => x.vendor)).toEqual(['NVIDIA', 'AMD']);
    expect(g.map((x) => x.index)).toEqual([0, 1]);
  });
  it('Vulkan ICDs: VK_ICD_FILENAMES wins', () => {
    expect(vulkanIcds({ VK_ICD_FILENAMES: '/a/lvp.json:/b/x.json' })).toEqual(['/a/lvp.json', '/b/x.json']);
  });
});

describe('placeRanks', () => {
  it('CPU: no device ids', () => {
    const p = placeRanks(4, 'cpu');
    expect(p.deviceIds).toEqual([null, null, null, null]);
    expect(p.shared).toBe(false);
    expect(() => placeRanks(2, 'cpu', { explicit: [0] })).toThrow(DeviceError);
  });
  it('CUDA round-robin over the GPUs found; sharing is reported', () => {
    const p = placeRanks(4, 'cuda', { gpuCount: 2 });
    expect(p.deviceIds).toEqual([0, 1, 0, 1]);
    expect(p.how).toBe('round-robin');
    expect(p.ranksPerDevice).toEqual({ 0: [0, 2], 1: [1, 3] });
    expect(p.shared).toBe(true);
    const own = placeRanks(2, 'cuda', { gpuCount: 4 });
    expect(own.deviceIds).toEqual([0, 1]);
    expect(own.shared).toBe(false);
  });
  it('explicit ids repeat in rank order and are checked against the GPUs found', () => {
    expect(placeRanks(4, 'cuda', { gpuCount: 4, explicit: [3, 1] }).deviceIds).toEqual([3, 1, 3, 1]);
    expect(() => placeRanks(2, 'cuda', { gpuCount: 2, explicit: [0, 2] })).toThrow(/device id 2 does not exist: this machine shows 2 GPU/);
    expect(placeRanks(1, 'cuda', { explicit: [0, 1] }).notes.join(' ')).toMatch(/extra ids are unused/);
  });
  it('WebGPU: one adapter for every rank, and it says so', () => {
    const p = placeRanks(2, 'webgpu', { gpuCount: 2 });
    expect(p.deviceIds).toEqual([0, 0]);
    expect(p.shared).toBe(true);
    expect(p.notes.join(' ')).toMatch(/no adapter index/);
  });
  it('--devices parsing', () => {
    expect(parseDeviceList('0, 1,1')).toEqual([0, 1, 1]);
    expect(parseDeviceList(undefined)).toBeUndefined();
    expect(parseDeviceList('')).toBeUndefined();
    expect(() => parseDeviceList('0,x')).toThrow(/comma-separated GPU ids/);
    expect(() => parseDeviceList('-1')).toThrow(DeviceError);
  });
});

describe('sessionOptions per device', () => {
  it('cpu only on the CPU; GPU providers keep the CPU as fallback', () => {
    expect(sessionOptions({ device: 'cpu', threads: 1, spin: false }).executionProviders).toEqual(['cpu']);
    expect(sessionOptions({ device: 'cuda', threads: 1, spin: false, deviceId: 1 }).executionProviders).toEqual([{ name: 'cuda', deviceId: 1 }, 'cpu']);
    expect(sessionOptions({ device: 'webgpu', threads: 1, spin: false }).executionProviders).toEqual([{ name: 'webgpu' }, 'cpu']);
  });
  it('device outputs stay on the GPU only with WebGPU', () => {
    const o = sessionOptions({ device: 'webgpu', threads: 1, spin: false, deviceOutputs: ['present_k.0', 'present_v.0'] });
    expect(o.preferredOutputLocation).toEqual({ 'present_k.0': 'gpu-buffer', 'present_v.0': 'gpu-buffer' });
    expect(sessionOptions({ device: 'cpu', threads: 1, spin: false, deviceOutputs: ['present_k.0'] }).preferredOutputLocation).toBeUndefined();
  });
});

describe('verify tolerances', () => {
  it('fp32: 1e-3 on CPU and WebGPU, 1e-2 on CUDA (TF32); fp16 / bf16: 1e-2', () => {
    expect(toleranceFor('float32', 'cpu')).toBe(1e-3);
    expect(toleranceFor('float32', 'webgpu')).toBe(1e-3);
    expect(toleranceFor('float32', 'cuda')).toBe(1e-2);
    expect(toleranceFor('float16', 'webgpu')).toBe(1e-2);
    expect(toleranceFor('bfloat16', 'cpu')).toBe(1e-2);
  });
});
