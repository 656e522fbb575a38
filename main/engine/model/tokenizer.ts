/**
 * A model folder's tokenizer: `tokenizer.json` through @huggingface/tokenizers,
 * the chat template of `tokenizer_config.json` (or `chat_template.jinja`)
 * through @huggingface/jinja, and a streaming detokenizer.
 *
 * Byte-level BPE splits one Chinese character (3 UTF-8 bytes) across several
 * tokens, so decoding token by token would print broken characters; the
 * stream decoder holds text back until it ends on a complete character.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { bytesToUnicode } from './bpe';
import { ModelError, errorText } from './errors';

export interface ChatMessage {
  role: string;
  content: string;
}

/** Incremental detokenizer: feed ids one at a time, get the text that became complete. */
export interface StreamDecoder {
  /** adds a token; returns the newly completed text (often '' in the middle of a character) */
  push(id: number): string;
  /** returns whatever is still held back (at the end of generation) */
  flush(): string;
}

export interface TextTokenizer {
  /** number of ids the tokenizer knows (vocabulary + added tokens); may be below the model's vocab_size */
  readonly vocabSize: number;
  readonly bosId: number | null;
  /** ids that end generation: the tokenizer's eos_token plus eos_token_id of generation_config.json / config.json */
  readonly eosIds: number[];
  readonly hasChatTemplate: boolean;
  /**
   * Text → ids. `addSpecial` (default true, as in Hugging Face) lets the
   * tokenizer's post-processor add BOS/EOS where the model expects them;
   * pass false for text that already went through the chat template.
   */
  encode(text: string, opts?: { addSpecial?: boolean }): number[];
  /** Ids → text; `skipSpecial` drops special tokens (<|im_end|>, ...). */
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  /** Renders the chat template; null when the model has none. */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: boolean }): string | null;
  createStreamDecoder(opts?: { skipSpecial?: boolean }): StreamDecoder;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

type Json = Record<string, unknown>;

function readJson(file: string, what: string): Json {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new ModelError('tokenizer-missing', `${file}: cannot be read as ${what} (${errorText(e)}); re-download the model's tokenizer files`, { cause: e });
  }
}

function readOptionalJson(file: string, what: string): Json | null {
  return fs.existsSync(file) ? readJson(file, what) : null;
}

/** A special-token field: a string, or an AddedToken-shaped `{content}`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** The chat template: tokenizer_config's string or named list, else chat_template.jinja / chat_template.json. */
function findChatTemplate(dir: string, config: Json): string | null {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as { name?: string; template?: string }[];
    const pick = named.find((x) => x.name === 'default') ?? named[0];
    if (typeof pick?.template === 'string') return pick.template;
  }
  const jinja = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinja)) return fs.readFileSync(jinja, 'utf8');
  const json = readOptionalJson(path.join(dir, 'chat_template.json'), 'a chat template');
  return typeof json?.chat_template === 'string' ? json.chat_template : null;
}

function eosIdsOf(v: unknown): number[] {
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0);
}

/** Byte-level symbol → byte (the inverse of GPT-2's bytes_to_unicode). */
const BYTE_OF = new Map(bytesToUnicode().map((c, b) => [c, b]));

/**
 * Decodes byte-level BPE ids exactly like the library's ByteLevel decoder
 * (runs of ordinary tokens → bytes → UTF-8, added tokens verbatim), but with
 * a map lookup per token: the library searches the added-token list for every
 * token, which is slow with the 31k reserved tokens of the 32000 presets.
 */
class ByteLevelDecoder {
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  constructor(private readonly tok: Tokenizer, private readonly added: Map<number, string>) {}

  decode(ids: readonly number[]): string {
    let out = '';
    let bytes: number[] = [];
    for (const id of ids) {
      const content = this.added.get(id);
      if (content === undefined) {
        for (const ch of this.tok.id_to_token(id) ?? '') bytes.push(BYTE_OF.get(ch) ?? 0);
        continue;
      }
      if (bytes.length > 0) out += this.utf8.decode(Uint8Array.from(bytes));
      bytes = [];
      out += content;
    }
    if (bytes.length > 0) out += this.utf8.decode(Uint8Array.from(bytes));
    return out;
  }
}

class HfTextTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: number[];
  readonly hasChatTemplate: boolean;
  private readonly specialIds: Set<number>;
  private readonly template: Template | null;
  private readonly cleanUpSpaces: boolean;
  /** set when tokenizer.json's decoder is plain ByteLevel (GPT-2, Llama 3, Qwen, the presets) */
  private readonly byteLevel: ByteLevelDecoder | null;

  constructor(
    private readonly tok: Tokenizer,
    private readonly config: Json,
    private readonly source: string,
    chatTemplate: string | null,
    extraEos: number[],
    decoderType: unknown,
  ) {
    let max = -1;
    for (const id of tok.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    const added = tok.get_added_tokens_decoder();
    this.specialIds = new Set([...added].filter(([, t]) => t.special).map(([id]) => id));
    const bos = tokenContent(config.bos_token);
    this.bosId = bos === null ? null : tok.token_to_id(bos) ?? null;
    const eos = tokenContent(config.eos_token);
    const eosId = eos === null ? undefined : tok.token_to_id(eos);
    this.eosIds = [...new Set([...(eosId === undefined ? [] : [eosId]), ...extraEos])];
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    this.byteLevel = decoderType === 'ByteLevel' && !this.cleanUpSpaces
      ? new ByteLevelDecoder(tok, new Map([...added].map(([id, t]) => [id, t.content])))
      : null;
    this.template = chatTemplate === null ? null : this.compile(chatTemplate);
    this.hasChatTemplate = this.template !== null;
  }

  encode(text: string, opts: { addSpecial?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecial ?? true }).ids;
  }

  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ModelError('token-out-of-range', `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1}) of ${this.source}; the ids do not belong to this model`);
      }
    }
    // Filter specials here: the library's own skip does a linear search per token.
    const keep = opts.skipSpecial ? ids.filter((id) => !this.specialIds.has(id)) : [...ids];
    if (keep.length === 0) return '';
    if (this.byteLevel) return this.byteLevel.decode(keep);
    return this.tok.decode(keep, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: boolean }): string | null {
    if (!this.template) return null;
    const c = this.config;
    try {
      return this.template.render({
        messages,
        add_generation_prompt: opts.addGenerationPrompt,
        bos_token: tokenContent(c.bos_token) ?? '',
        eos_token: tokenContent(c.eos_token) ?? '',
        pad_token: tokenContent(c.pad_token) ?? '',
        unk_token: tokenContent(c.unk_token) ?? '',
      });
    } catch (e) {
      throw new ModelError('config-invalid', `${this.source}: the chat template failed to render (${errorText(e)}); use --raw to skip it`, { cause: e });
    }
  }

  createStreamDecoder(opts: { skipSpecial?: boolean } = {}): StreamDecoder {
    return new TextStream(this, opts.skipSpecial ?? false);
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  private compile(source: string): Template {
    try {
      return new Template(source);
    } catch (e) {
      throw new ModelError('config-invalid', `${this.source}: the chat template does not parse (${errorText(e)}); fix tokenizer_config.json or use --raw`, { cause: e });
    }
  }
}

/**
 * Text Generation Inference's incremental decoding: decode a small window
 * of recent ids twice (without and with the new ones) and emit the
 * difference once it no longer ends in U+FFFD (an unfinished UTF-8
 * sequence). Windows start where earlier text ended on a complete
 * character, so the emitted pieces concatenate to decode(all ids).
 */
class TextStream implements StreamDecoder {
  private ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;

  constructor(private readonly tok: TextTokenizer, private readonly skipSpecial: boolean) {}

  push(id: number): string {
    this.ids.push(id);
    return this.emit(false);
  }

  flush(): string {
    return this.emit(true);
  }

  private emit(final: boolean): string {
    const opts = { skipSpecial: this.skipSpecial };
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset), opts);
    const full = this.tok.decode(this.ids.slice(this.prefixOffset), opts);
    if (full.length <= prefix.length || (!final && full.endsWith('\uFFFD'))) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    // Drop ids before the window: they are never decoded again.
    if (this.prefixOffset > 0) {
      this.ids = this.ids.slice(this.prefixOffset);
      this.readOffset -= this.prefixOffset;
      this.prefixOffset = 0;
    }
    return full.slice(prefix.length);
  }
}

/** Loads `<dir>/tokenizer.json` (+ tokenizer_config.json, chat template, eos ids). */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) {
    throw new ModelError('tokenizer-missing', `${dir}: has no tokenizer.json; download it with the model, or use --prompt-ids to pass token ids directly`);
  }
  const json = readJson(file, 'a Hugging Face tokenizer');
  const config = readOptionalJson(path.join(dir, 'tokenizer_config.json'), 'tokenizer_config.json') ?? {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new ModelError('tokenizer-missing', `${file}: is not a tokenizer @huggingface/tokenizers can load (${errorText(e)}); re-download it`, { cause: e });
  }
  const gen = readOptionalJson(path.join(dir, 'generation_config.json'), 'generation_config.json');
  const model = readOptionalJson(path.join(dir, 'config.json'), 'config.json');
  const extraEos = [...eosIdsOf(gen?.eos_token_id), ...eosIdsOf(model?.eos_token_id)];
  const decoderType = (json.decoder as Json | null)?.type;
  return new HfTextTokenizer(tok, config, file, findChatTemplate(dir, config), extraEos, decoderType);
}
