/**
 * One validator per Lab API method, from the typed contract: every door
 * (Electron IPC, the web host's WebSocket) calls the lab through
 * `withValidation`, so malformed arguments — a missing field, a wrong type,
 * `[]` or `[null]` for a request, a number out of its bounds, a field the
 * contract does not have — are refused with one line and the contract's
 * code 'bad_request' before any lab code runs.
 *
 * The schemas are JSON Schema (ajv). `props<T>()` takes one schema per key
 * of the contract's interface T, no more and no fewer, so a field added to
 * contract.ts does not compile until it is validated here. Bounds that come
 * from the machine (threads per rank ≤ 2 × cores) are filled in at creation.
 */
import os from 'node:os';
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { MAX_TIMEOUT_MS, maxThreadsPerRank } from '../engine/host/launch';
import { LAB_METHODS } from './contract';
import type { BenchRequest, ChatMessage, ChatRequest, CheckSpecRequest, GenerateRequest, LabApi, LabMethod, ListModelsRequest, ReportRequest, SamplingParams } from './contract';

type Schema = Record<string, unknown>;

/** An object schema with exactly T's keys (required ones listed). */
function props<T>(p: { [K in keyof T]-?: Schema }, required: (keyof T & string)[] = []): Schema {
  return { type: 'object', properties: p, required, additionalProperties: false };
}

const int = (minimum: number, maximum = 2 ** 31 - 1): Schema => ({ type: 'integer', minimum, maximum });
const num = (o: Schema = {}): Schema => ({ type: 'number', ...o });
const str = (maxLength = 4096, minLength = 0): Schema => ({ type: 'string', minLength, maxLength });
const id = str(256, 1);
const arr = (items: Schema, maxItems: number, minItems = 0): Schema => ({ type: 'array', items, minItems, maxItems });
const oneOf = (...values: string[]): Schema => ({ enum: values });
const device = oneOf('cpu', 'webgpu', 'cuda');
/** the longest prompt a message may carry (the socket's frame limit is 4 MiB) */
const TEXT = 1 << 21;
const TOKENS = 1 << 20;
const timeoutMs = num({ exclusiveMinimum: 0, maximum: MAX_TIMEOUT_MS });

export function paramSchemas(cores = os.availableParallelism()): Record<LabMethod, Schema[]> {
  const threads = int(1, maxThreadsPerRank(cores));
  const sampling = props<SamplingParams>({
    greedy: { type: 'boolean' },
    temperature: num({ minimum: 0, maximum: 1e6 }),
    topK: int(0),
    topP: num({ exclusiveMinimum: 0, maximum: 1 }),
    repetitionPenalty: num({ exclusiveMinimum: 0, maximum: 1e6 }),
    seed: int(0, 2 ** 32 - 1),
  });
  const stop = arr(str(1024), 16);
  const generate = props<GenerateRequest>(
    {
      requestId: id,
      model: str(4096, 1),
      parallel: str(256, 1),
      device,
      devices: arr(int(0, 1023), 64, 1),
      prompt: str(TEXT),
      promptIds: arr(int(0), TOKENS, 1),
      raw: { type: 'boolean' },
      maxNewTokens: int(1, TOKENS),
      sampling,
      stop,
      ignoreEos: { type: 'boolean' },
      threadsPerRank: threads,
      timeoutMs,
    },
    ['model', 'parallel', 'maxNewTokens'],
  );
  const bench = props<BenchRequest>(
    {
      model: str(4096, 1),
      specs: arr(str(256, 1), 64, 1),
      workload: oneOf('prefill', 'decode', 'serving'),
      promptLen: int(1, TOKENS),
      outputLen: int(1, TOKENS),
      batch: int(1, 4096),
      requests: int(1, 100_000),
      rate: num({ minimum: 0, maximum: 1e6 }),
      threadsPerRank: threads,
      device,
      seed: int(0, 2 ** 32 - 1),
      timeoutMs,
      verify: { type: 'boolean' },
      reps: int(1, 1000),
      maxBatch: int(1, 4096),
      slo: { type: 'object', properties: { ttftMs: num({ exclusiveMinimum: 0 }), tpotMs: num({ exclusiveMinimum: 0 }) }, additionalProperties: false },
    },
    ['model', 'specs', 'workload'],
  );
  const message = props<ChatMessage>({ role: oneOf('system', 'user', 'assistant'), content: str(TEXT) }, ['role', 'content']);
  const chat = props<ChatRequest>(
    {
      requestId: id,
      model: str(4096, 1),
      parallel: str(256, 1),
      device,
      threadsPerRank: threads,
      messages: arr(message, 10_000, 1),
      maxNewTokens: int(1, TOKENS),
      sampling,
      stop,
    },
    ['requestId', 'model', 'parallel', 'messages', 'maxNewTokens'],
  );
  return {
    info: [],
    listModels: [props<ListModelsRequest>({ paths: arr(str(4096, 1), 64) })],
    generate: [generate],
    checkSpec: [props<CheckSpecRequest>({ model: str(4096, 1), parallel: str(256) }, ['model', 'parallel'])],
    startBench: [bench],
    cancelBench: [id],
    listJobs: [],
    listRuns: [],
    getRun: [id],
    getTrace: [id],
    deleteRun: [id],
    exportReport: [props<ReportRequest>({ runIds: arr(id, 1000, 1), format: oneOf('html', 'pdf', 'md', 'csv', 'json'), lang: oneOf('zh-CN', 'en') }, ['runIds', 'format'])],
    claims: [arr(id, 10_000)],
    chat: [chat],
    cancel: [id],
  };
}

/** Methods whose one argument may be left out (the lab fills in the default). */
const OPTIONAL_ARG: ReadonlySet<LabMethod> = new Set(['listModels']);

export class BadRequest extends Error {
  readonly code = 'bad_request';
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

/** ", got …" with the offending value, short and on one line. */
function got(v: unknown): string {
  if (v === undefined) return '';
  const text = Array.isArray(v) ? `an array of ${v.length}` : v === null ? 'null' : typeof v === 'object' ? 'an object' : JSON.stringify(v);
  return `, got ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
}

/** ajv's first error as one line a caller can act on. */
function describe(method: string, arg: number, e: ErrorObject, nArgs: number): string {
  const where = `${method}${nArgs > 1 ? ` argument ${arg + 1}` : ''}${e.instancePath ? ` ${e.instancePath.slice(1).replace(/\//g, '.')}` : ''}`;
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') return `${where}: unknown field '${String(p['additionalProperty'])}'`;
  if (e.keyword === 'required') return `${where}: '${String(p['missingProperty'])}' is required`;
  if (e.keyword === 'enum') return `${where} must be one of ${(p['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}${got(e.data)}`;
  if (e.keyword === 'minLength' && p['limit'] === 1) return `${where} must be a non-empty string`;
  if (e.keyword === 'type') return `${where} must be ${p['type'] === 'integer' || p['type'] === 'array' || p['type'] === 'object' ? 'an' : 'a'} ${String(p['type'])}${got(e.data)}`;
  return `${where} ${e.message ?? 'is invalid'}${got(e.data)}`;
}

export type ParamCheck = (method: LabMethod, params: unknown[]) => void;

/** Compile the validators once; the check throws BadRequest (code 'bad_request') for the first problem. */
export function paramValidator(cores?: number): ParamCheck {
  const ajv = new Ajv({ allErrors: false, strict: true, verbose: true });
  const compiled = Object.fromEntries(Object.entries(paramSchemas(cores)).map(([m, schemas]) => [m, schemas.map((s) => ajv.compile(s))])) as Record<LabMethod, ValidateFunction[]>;
  return (method, params) => {
    const v = compiled[method];
    if (!v) throw new BadRequest(`unknown method ${JSON.stringify(method)}`);
    if (!Array.isArray(params)) throw new BadRequest(`${method}: params must be an array of arguments`);
    const least = OPTIONAL_ARG.has(method) ? 0 : v.length;
    if (params.length < least || params.length > v.length) {
      throw new BadRequest(`${method} takes ${v.length === 0 ? 'no arguments' : v.length === 1 ? (least === 0 ? 'at most one argument' : 'one argument') : `${v.length} arguments`}, got ${params.length}`);
    }
    params.forEach((p, i) => {
      if (p === undefined && OPTIONAL_ARG.has(method)) return;
      if (!v[i](p)) throw new BadRequest(describe(method, i, v[i].errors![0], v.length));
    });
  };
}

/** The lab with every method's arguments checked first (what each door serves). */
export function withValidation(lab: LabApi, check: ParamCheck = paramValidator()): LabApi {
  const out = { ...lab } as Record<string, unknown>;
  for (const m of LAB_METHODS) {
    const f = lab[m] as (...a: unknown[]) => Promise<unknown>;
    out[m] = async (...args: unknown[]) => {
      // trailing undefined (an optional argument left out over IPC) is no argument
      while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
      check(m, args);
      return f(...args);
    };
  }
  return out as unknown as LabApi;
}
