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
import { ModelError, errorText, show } from './errors';
import { checkTokenIds, findChatTemplate, readJson, readOptionalJson, tokenContent } from './tokenizer-files';
import type { Json } from './tokenizer-files';

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
    // The library's id → token array (added tokens included) is as long as the largest id + 1. Not
    // get_vocab(): it walks every hole of that array, and one id of 7·10^8 in tokenizer.json took a minute.
    const ids = tok.model?.vocab;
    this.vocabSize = Array.isArray(ids) ? ids.length : 0;
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
    const ids = this.library('encode the text', () => this.tok.encode(text, { add_special_tokens: opts.addSpecial ?? true }).ids);
    // a piece the vocabulary lacks, with no usable unk_token, comes back as id undefined
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ModelError('tokenizer-missing', `${this.source}: encoding the text gave token id ${show(id)}, outside the vocabulary (0..${this.vocabSize - 1}); tokenizer.json has no token (and no unk_token) for part of the text, re-download it or pass --prompt-ids`);
      }
    }
    return ids;
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
    const byteLevel = this.byteLevel;
    if (byteLevel) return this.library('decode ids', () => byteLevel.decode(keep));
    return this.library('decode ids', () => this.tok.decode(keep, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces }));
  }

  /**
   * A call into @huggingface/tokenizers. A tokenizer.json it loads can still
   * fail in use (a RobertaProcessing post-processor without cls / sep throws a
   * TypeError on every encode); that is the file's fault, reported as such.
   */
  private library<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw new ModelError('tokenizer-missing', `${this.source}: @huggingface/tokenizers could not ${what} with this tokenizer (${errorText(e)}); re-download tokenizer.json, or pass --prompt-ids`, { cause: e });
    }
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
  checkTokenIds(json, file);
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
