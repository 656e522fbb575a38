/**
 * The one error type of the model layer.
 *
 * Every failure to read a model folder, a config, a weight file or a
 * tokenizer ends up here, with a stable `code` (for the UI, the CLI exit
 * message and tests) and a one-line message in the shape
 * `<file or value>: <what is wrong>; <what to do>` so a user can act on it
 * without reading a stack trace.
 */

export type ModelErrorCode =
  /** config.json (or the folder) is not there */
  | 'config-missing'
  /** config.json / generation_config.json is not valid JSON or a field is wrong */
  | 'config-invalid'
  /** a valid config asks for a feature ParaLab cannot execute (yet) */
  | 'config-unsupported'
  /** `architectures` / `model_type` names a family ParaLab does not know */
  | 'unknown-arch'
  /** a folder has no *.safetensors (or its index points at a missing shard) */
  | 'weights-missing'
  /** a safetensors file is truncated, its header is garbled or inconsistent */
  | 'safetensors-corrupt'
  /** a tensor the architecture needs is not in any weight file */
  | 'tensor-missing'
  /** a tensor has a shape other than the config implies, or a slice is out of range */
  | 'shape-mismatch'
  /** a tensor is stored in a dtype ParaLab cannot convert */
  | 'unsupported-dtype'
  /** tokenizer.json is missing or cannot be parsed */
  | 'tokenizer-missing'
  /** a model id is neither a preset nor a folder */
  | 'unknown-preset'
  /** a token id outside the vocabulary was asked for */
  | 'token-out-of-range'
  /** a prompt plus its new tokens do not fit the context (max_position_embeddings, or the engine's maxSeq) */
  | 'context-too-long'
  /** a file could not be read or written for a reason outside the format (permissions, disk full) */
  | 'io';

export class ModelError extends Error {
  readonly code: ModelErrorCode;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelError';
    this.code = code;
  }
}

export function isModelError(e: unknown, code?: ModelErrorCode): e is ModelError {
  return e instanceof ModelError && (code === undefined || e.code === code);
}

/**
 * The message of any thrown value, for wrapping low-level errors into
 * ModelErrors: on one line (V8's JSON.parse errors quote the text around the
 * fault, line breaks included) and at most 1000 characters.
 */
export function errorText(e: unknown): string {
  let text: string;
  try {
    text = e instanceof Error ? e.message : String(e);
  } catch {
    text = 'an unprintable error';
  }
  return oneLine(text, 1000);
}

/**
 * Text taken from a file (a tensor name, a shard name, a quoted snippet)
 * inside a one-line message: line breaks and other control characters
 * escaped (written as \n, \u0000), anything past `max` characters cut.
 */
export function oneLine(text: string, max = 200): string {
  const s = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) =>
    ch === '\n' ? '\\n' : ch === '\r' ? '\\r' : ch === '\t' ? '\\t' : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > max ? `${s.slice(0, Math.max(0, max - 3))}...` : s;
}

/**
 * A JSON value found in a file, for a message: its JSON, cut after `max`
 * characters. A value nested too deeply for JSON.stringify (which recurses)
 * is described instead of crashing the message.
 */
export function show(v: unknown, max = 60): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    return Array.isArray(v) ? '[...] (a list nested too deeply to show)' : typeof v === 'object' && v !== null ? '{...} (an object nested too deeply to show)' : oneLine(String(v), max);
  }
  // JSON.stringify leaves U+2028 / U+2029 and C1 controls as they are
  return oneLine(s ?? String(v), max);
}
