/**
 * CPU sessions without the event-loop hop. onnxruntime-node's binding runs a
 * session synchronously, but its backend wraps every run in a setImmediate
 * and a Promise (backend.js), so each segment of a step waits for a turn of
 * the event loop before it starts. A rank has nothing else to do between two
 * segments of a step (heartbeats beat on the lifeline thread), and a TP
 * decode step has ~17 segments with a collective after each: that turn was
 * measurable per token (docs/PERFORMANCE.md, issue 13).
 *
 * This handler is the backend's, minus the hop: the same binding session,
 * loaded with the same options, its run called at once; onnxruntime-common's
 * InferenceSession still validates feeds and wraps the outputs. CPU only:
 * GPU sessions keep the stock path (their option resolution and errors).
 */
import * as ort from 'onnxruntime-node';

interface ValueMetadata {
  name: string;
  isTensor: boolean;
  symbolicDimensions: string[];
  shape: number[];
  type: number;
}

interface BindingSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: ort.InferenceSession.SessionOptions): void;
  readonly inputMetadata: ValueMetadata[];
  readonly outputMetadata: ValueMetadata[];
  run(feeds: Record<string, ort.OnnxValue>, fetches: Record<string, ort.OnnxValue | null>, options: ort.InferenceSession.RunOptions): Record<string, ort.OnnxValue>;
  endProfiling(): void;
  dispose(): void;
}

interface BindingModule {
  binding: { InferenceSession: new () => BindingSession };
  initOrt(): void;
}

// onnxruntime-node's own element-type table (backend.js): index = ONNX TensorProto type
const TYPES: (string | undefined)[] = [undefined, 'float32', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'string', 'bool', 'float16', 'float64', 'uint32', 'uint64', undefined, undefined, undefined, undefined, undefined, undefined, undefined, 'uint4', 'int4'];

function metadata(raw: ValueMetadata[]): [string[], ort.InferenceSession.ValueMetadata[]] {
  const names = raw.map((m) => m.name);
  const meta = raw.map((m) => {
    if (!m.isTensor) return { name: m.name, isTensor: false } as ort.InferenceSession.ValueMetadata;
    const type = TYPES[m.type];
    if (!type) throw new Error(`onnxruntime: unsupported data type ${m.type} for '${m.name}'`);
    const shape = m.shape.map((d, i) => (d === -1 ? m.symbolicDimensions[i] : d));
    return { name: m.name, isTensor: true, type, shape } as ort.InferenceSession.ValueMetadata;
  });
  return [names, meta];
}

class SyncHandler {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputMetadata: ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: ort.InferenceSession.ValueMetadata[];

  constructor(private readonly s: BindingSession) {
    [this.inputNames, this.inputMetadata] = metadata(s.inputMetadata);
    [this.outputNames, this.outputMetadata] = metadata(s.outputMetadata);
  }

  run(feeds: Record<string, ort.OnnxValue>, fetches: Record<string, ort.OnnxValue | null>, options: ort.InferenceSession.RunOptions): Promise<Record<string, ort.OnnxValue>> {
    try {
      return Promise.resolve(this.s.run(feeds, fetches, options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async dispose(): Promise<void> {
    this.s.dispose();
  }

  startProfiling(): void {}

  endProfiling(): void {
    this.s.endProfiling();
  }
}

let mod: BindingModule | null | undefined;

function bindingModule(): BindingModule | null {
  if (mod !== undefined) return mod;
  try {
    mod = require('onnxruntime-node/dist/binding') as BindingModule;
    if (typeof mod.binding?.InferenceSession !== 'function' || typeof mod.initOrt !== 'function') mod = null;
  } catch {
    mod = null;
  }
  return mod;
}

/** A CPU session whose run starts at once; null where this onnxruntime-node has no such binding (then use the stock path). */
export function createSyncCpuSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): ort.InferenceSession | null {
  const m = bindingModule();
  if (!m) return null;
  m.initOrt();
  const s = new m.binding.InferenceSession();
  s.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, options);
  const Session = ort.InferenceSession as unknown as new (h: SyncHandler) => ort.InferenceSession;
  return new Session(new SyncHandler(s));
}
