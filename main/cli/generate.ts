/**
 * `lab generate`: one request through the engine under a parallel spec.
 * `--device cpu|webgpu|cuda` picks the ranks' execution provider and
 * `--devices 0,1,…` the GPU ids they go on (in rank order, repeating).
 */
import { parse, intOpt, numOpt, idsOpt, deviceOpt, threadsOpt, timeoutOpt, UsageError } from './args';
import type { Values } from './args';
import { generate } from '../lab/generate';
import type { SamplingParams } from '../lab/contract';
import { ms } from './format';
import { parseDeviceList } from '../engine/host/placement';

export const requestOptions = {
  model: { type: 'string' },
  parallel: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-ids': { type: 'string' },
  raw: { type: 'boolean' },
  'max-new-tokens': { type: 'string' },
  greedy: { type: 'boolean' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  'ignore-eos': { type: 'boolean' },
  device: { type: 'string' },
  devices: { type: 'string' },
  'threads-per-rank': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type RequestValues = Values<typeof requestOptions>;

export function samplingFrom(v: RequestValues): SamplingParams {
  const temperature = numOpt('temperature', v.temperature);
  const greedy = v.greedy === true || temperature === undefined || temperature === 0;
  return {
    greedy,
    temperature,
    topP: numOpt('top-p', v['top-p']),
    topK: v['top-k'] === undefined ? undefined : intOpt('top-k', v['top-k'], 0, 1),
    repetitionPenalty: numOpt('repetition-penalty', v['repetition-penalty']),
    seed: intOpt('seed', v.seed, 0),
  };
}

/** `--devices 0,1` → ids; refused with the CPU provider, which has no device ids. */
export function devicesOpt(v: string | undefined, device: 'cpu' | 'webgpu' | 'cuda'): number[] | undefined {
  let ids: number[] | undefined;
  try {
    ids = parseDeviceList(v);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (ids && device === 'cpu') throw new UsageError('--devices needs --device webgpu or cuda (the CPU provider has no device ids)');
  return ids;
}

export function requestFrom(v: RequestValues) {
  if (!v.model) throw new UsageError('--model is required (a preset id such as synth-llama-tiny, or a model folder)');
  if (v.prompt === undefined && v['prompt-ids'] === undefined) throw new UsageError('give --prompt TEXT or --prompt-ids 1,2,3');
  return {
    model: v.model,
    parallel: v.parallel ?? 'single',
    device: deviceOpt(v.device),
    devices: devicesOpt(v.devices, deviceOpt(v.device)),
    prompt: v.prompt,
    promptIds: idsOpt(v['prompt-ids']),
    raw: v.raw,
    maxNewTokens: intOpt('max-new-tokens', v['max-new-tokens'], 16, 1),
    sampling: samplingFrom(v),
    stop: v.stop,
    ignoreEos: v['ignore-eos'],
    threadsPerRank: threadsOpt(v['threads-per-rank']),
    timeoutMs: timeoutOpt(v.timeout),
  };
}

export async function generateCommand(argv: string[]): Promise<void> {
  const { values } = parse('generate', argv, requestOptions);
  const req = requestFrom(values);
  const json = values.json === true;
  const result = await generate(req, {
    onEvent: (e) => {
      if (json) return;
      if (e.kind === 'token') process.stdout.write(e.text);
      else if (e.kind === 'progress' && process.stderr.isTTY) process.stderr.write(`… ${e.message}\n`);
    },
  });
  if (json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const m = result.metrics;
  process.stdout.write(
    `\n\n[${result.finish_reason}] ${m.prompt_tokens} prompt + ${m.output_tokens} new tokens · load ${ms(m.load_ms)} · TTFT ${ms(m.ttft_ms)} · TPOT ${ms(m.tpot_ms)} · ${m.output_tok_s.toFixed(1)} tok/s\n`,
  );
}
