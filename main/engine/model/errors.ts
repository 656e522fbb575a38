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

/** The message of any thrown value, for wrapping low-level errors into ModelErrors. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
