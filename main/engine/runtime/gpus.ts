/**
 * The GPUs this machine shows: `nvidia-smi` where it exists (CUDA's
 * numbering, CUDA_VISIBLE_DEVICES respected), else the PCI display
 * controllers; and the Vulkan drivers WebGPU's Dawn would load.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

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
