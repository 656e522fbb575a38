/**
 * A small ONNX graph builder over the `onnx-proto` protobuf bindings.
 *
 * Segments and the monolithic reference graph are emitted through this one
 * builder, so both run the exact same node sequence. Initializers keep a view
 * of the caller's typed array until `toBytes()`; nothing is copied earlier.
 */
import { onnx } from 'onnx-proto';

export type ElemType = 'float32' | 'int32' | 'int64' | 'float16';

const DTYPE: Record<ElemType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
};

/** A dimension is a fixed size or a symbolic name (`batch`, `seq`, …). */
export type Dim = number | string;

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

/** ONNX IR 10 / opset 21 are understood by onnxruntime 1.20+; com.microsoft opset 1 holds the contrib ops. */
const IR_VERSION = 10;
const OPSETS = [
  { domain: '', version: 21 },
  { domain: 'com.microsoft', version: 1 },
];

export class GraphBuilder {
  private nodes: onnx.INodeProto[] = [];
  private inputs: onnx.IValueInfoProto[] = [];
  private outputs: onnx.IValueInfoProto[] = [];
  private inits: onnx.ITensorProto[] = [];
  private counter = 0;
  /** bytes of initializer data (the weights this graph holds) */
  weightBytes = 0;

  constructor(readonly name: string) {}

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: Dim[]): string {
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** A constant tensor baked into the graph (weights, shapes, tables). */
  init(name: string, data: Float32Array | Int32Array | BigInt64Array, dims: number[]): string {
    const type: ElemType = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'int64';
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== data.length) {
      throw new Error(`initializer ${name}: ${data.length} elements for dims [${dims.join(',')}]`);
    }
    this.inits.push({
      name,
      dataType: DTYPE[type],
      dims,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    if (type === 'float32') this.weightBytes += data.byteLength;
    return name;
  }

  /** An int64 vector constant, e.g. shapes and axes. */
  ints(values: number[]): string {
    return this.init(this.fresh('const'), BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  /**
   * Append one node. `outputs` may be a count (names are generated) or explicit
   * names; '' marks an optional output that is not wanted.
   */
  node(op: string, inputs: string[], outputs: number | string[] = 1, attrs: Record<string, AttrValue> = {}, domain = ''): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op)) : outputs;
    this.nodes.push({
      opType: op,
      domain,
      input: inputs,
      output: outs,
      name: this.fresh(`n_${op}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Single-output convenience. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, domain = ''): string {
    return this.node(op, inputs, 1, attrs, domain)[0];
  }

  toBytes(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'paralab',
      opsetImport: OPSETS,
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.inits,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DTYPE[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.FLOATS, floats: v.floats };
}
