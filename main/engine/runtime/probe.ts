/**
 * Running a provider for real, in a short-lived child process, so a native
 * crash or a hang in a driver cannot take the host down: `probeProvider`
 * creates and runs a one-node session (does the provider work here?), and
 * `nodePlacements` reports which provider onnxruntime gave each node of a
 * graph (which ops fall back to the CPU).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DeviceKind } from '../types';
import { GraphBuilder } from '../graph/onnx';
import { explainDeviceError, ortBinDir, providerLibrary } from './providers';

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
