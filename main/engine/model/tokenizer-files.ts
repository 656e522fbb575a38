/**
 * Reading a model folder's tokenizer files (tokenizer.json,
 * tokenizer_config.json, chat_template.jinja / .json) into checked JSON: each
 * unreadable or malformed file is one ModelError naming it; token ids that
 * are not whole numbers are refused here, before the library sees them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelError, errorText, oneLine, show } from './errors';

export type Json = Record<string, unknown>;

export function readJson(file: string, what: string): Json {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new ModelError('tokenizer-missing', `${file}: cannot be read as ${what} (${errorText(e)}); re-download the model's tokenizer files`, { cause: e });
  }
}

export function readOptionalJson(file: string, what: string): Json | null {
  return fs.existsSync(file) ? readJson(file, what) : null;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Token ids are int32 tensor entries downstream. */
const isTokenId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < 2 ** 31;

/**
 * The ids tokenizer.json assigns (model.vocab of BPE / WordLevel / WordPiece,
 * added_tokens) must be whole numbers: the library takes any JSON value as an
 * id, and encode would then hand the model strings or objects.
 */
export function checkTokenIds(json: Json, file: string): void {
  const bad = (where: string, id: unknown) =>
    new ModelError('tokenizer-missing', `${file}: ${where} has id ${show(id)}; token ids must be whole numbers from 0 to 2^31-1, re-download tokenizer.json`);
  const model = json.model;
  if (isObject(model) && isObject(model.vocab)) {
    for (const [token, id] of Object.entries(model.vocab)) if (!isTokenId(id)) throw bad(`model.vocab entry '${oneLine(token, 60)}'`, id);
  }
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens) if (isObject(t) && !isTokenId(t.id)) throw bad(`added_tokens entry ${show(t.content)}`, t.id);
  }
}

/** A special-token field: a string, or an AddedToken-shaped `{content}`. */
export function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** The chat template: tokenizer_config's string or named list, else chat_template.jinja / chat_template.json. */
export function findChatTemplate(dir: string, config: Json): string | null {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    // [{name, template}, ...]; entries of any other shape are skipped
    const named = (t as unknown[]).filter((x): x is { name?: unknown; template?: unknown } => typeof x === 'object' && x !== null);
    const pick = named.find((x) => x.name === 'default') ?? named[0];
    if (typeof pick?.template === 'string') return pick.template;
  }
  const jinja = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinja)) {
    try {
      return fs.readFileSync(jinja, 'utf8');
    } catch (e) {
      throw new ModelError('tokenizer-missing', `${jinja}: cannot be read (${errorText(e)}); re-download the model's tokenizer files or remove it`, { cause: e });
    }
  }
  const json = readOptionalJson(path.join(dir, 'chat_template.json'), 'a chat template');
  return typeof json?.chat_template === 'string' ? json.chat_template : null;
}
