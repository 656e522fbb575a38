/**
 * Memory-bandwidth probe: how fast onnxruntime streams a large tensor with
 * the given threads (ReduceSum over 256 MiB, best of a few runs). Decode is
 * memory-bound, so weight bytes per token ÷ this is the decode roofline.
 */
import { GraphBuilder } from '../graph/onnx';
import { createSession, ort } from './ort';

export async function measureReadBandwidth(threads: number, bytes = 256 * 2 ** 20, runs = 5): Promise<number> {
  const g = new GraphBuilder('bandwidth');
  const x = g.input('x', 'float32', ['n']);
  g.node('ReduceSum', [x], ['y'], { keepdims: 0 });
  g.output('y', 'float32', []);
  const session = await createSession(g.toBytes(), { device: 'cpu', threads, spin: true });
  const data = new Float32Array(bytes / 4).fill(1);
  const feeds = { x: new ort.Tensor('float32', data, [data.length]) };
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  await session.release();
  return bytes / (best / 1000);
}
