/**
 * A byte-level BPE trainer and the Hugging Face tokenizer files it produces,
 * for the synthetic presets.
 *
 * Same scheme as GPT-2 / Llama 3 / Qwen: text is split by the GPT-2
 * pre-tokenizer regex, each piece's UTF-8 bytes are mapped to printable
 * characters (bytes_to_unicode), and merges are learned greedily: the most
 * frequent adjacent pair in the corpus becomes a new token, ties broken by
 * the lexicographically smallest pair so training is deterministic.
 *
 * Token ids: the 4 special tokens first (0..3), then the 256 byte tokens in
 * byte order, then one token per merge. When the corpus runs out of pairs
 * seen at least twice before the vocabulary is full (a 32000 vocabulary
 * needs far more text than we ship), the rest is `<|reserved_N|>` special
 * tokens, so the tokenizer's size always equals the model's vocab_size.
 */
import { CORPUS } from './corpus';

export const BOS_TOKEN = '<|begin_of_text|>';
export const EOS_TOKEN = '<|end_of_text|>';
export const IM_START_TOKEN = '<|im_start|>';
export const IM_END_TOKEN = '<|im_end|>';
/** In id order: these are ids 0, 1, 2, 3. */
export const SPECIAL_TOKENS = [BOS_TOKEN, EOS_TOKEN, IM_START_TOKEN, IM_END_TOKEN] as const;
export const BOS_ID = 0;
export const EOS_ID = 1;
export const IM_START_ID = 2;
export const IM_END_ID = 3;
const FIRST_BYTE_ID = SPECIAL_TOKENS.length;
const FIRST_MERGE_ID = FIRST_BYTE_ID + 256;

/** GPT-2's pre-tokenizer (the Hugging Face ByteLevel pre-tokenizer with use_regex). */
export const PRE_TOKENIZE_RE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** ChatML, as Qwen uses it: `<|im_start|>role\ncontent<|im_end|>\n` per message. */
export const CHATML_TEMPLATE =
  "{%- for message in messages -%}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/**
 * GPT-2's reversible byte → printable character map: printable Latin-1
 * bytes map to themselves, the other 68 bytes to U+0100 onward.
 */
export function bytesToUnicode(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep(b) ? b : next++);
  return out;
}

/** Word (as byte-level symbols) → how often it occurs in the corpus. */
function wordCounts(corpus: string): Map<string, number> {
  const byteChar = bytesToUnicode();
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const piece of corpus.match(PRE_TOKENIZE_RE) ?? []) {
    let w = '';
    for (const b of enc.encode(piece)) w += byteChar[b];
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return counts;
}

/** Byte-level symbols never contain a space, so "a b" is an unambiguous pair key (and sorts like the tuple). */
const pairKey = (a: string, b: string) => `${a} ${b}`;

function countPairs(words: { syms: string[]; n: number }[]): Map<string, number> {
  const pairs = new Map<string, number>();
  for (const { syms, n } of words) {
    for (let i = 0; i + 1 < syms.length; i++) {
      const k = pairKey(syms[i], syms[i + 1]);
      pairs.set(k, (pairs.get(k) ?? 0) + n);
    }
  }
  return pairs;
}

/** The most frequent pair; ties go to the smallest key. Null when none reaches `minFrequency`. */
function bestPair(pairs: Map<string, number>, minFrequency: number): string | null {
  let best: string | null = null;
  let bestN = 0;
  for (const [k, n] of pairs) {
    if (n > bestN || (n === bestN && best !== null && k < best)) {
      best = k;
      bestN = n;
    }
  }
  return bestN >= minFrequency ? best : null;
}

function applyMerge(syms: string[], a: string, b: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < syms.length; i++) {
    if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
      out.push(a + b);
      i++;
    } else {
      out.push(syms[i]);
    }
  }
  return out;
}

/**
 * Learns up to `maxMerges` merges from `corpus`, stopping early when no pair
 * occurs `minFrequency` times. Returns the merges in rank order.
 */
export function trainBpe(corpus: string, maxMerges: number, minFrequency = 2): [string, string][] {
  const words = [...wordCounts(corpus)].map(([w, n]) => ({ syms: Array.from(w), n }));
  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const best = bestPair(countPairs(words), minFrequency);
    if (best === null) break;
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    for (const w of words) if (w.syms.length > 1) w.syms = applyMerge(w.syms, a, b);
  }
  return merges;
}

const trained = new Map<string, [string, string][]>();

/** Every merge the corpus supports (min frequency 2), trained once per corpus: greedy merges of a smaller vocabulary are a prefix of these. */
function allMerges(corpus: string): [string, string][] {
  let m = trained.get(corpus);
  if (!m) {
    m = trainBpe(corpus, Number.POSITIVE_INFINITY);
    trained.set(corpus, m);
  }
  return m;
}

export interface TokenizerFiles {
  /** tokenizer.json contents */
  tokenizer: Record<string, unknown>;
  /** tokenizer_config.json contents */
  tokenizerConfig: Record<string, unknown>;
  /** how many tokens came from merges (the rest past 260 are reserved) */
  merges: number;
}

const addedToken = (id: number, content: string) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
});

/** Vocabulary (token → id) and the merges that fit in `vocabSize`. */
function buildVocab(vocabSize: number, corpus: string): { vocab: Map<string, number>; merges: [string, string][]; reserved: number } {
  const vocab = new Map<string, number>();
  SPECIAL_TOKENS.forEach((t, i) => vocab.set(t, i));
  bytesToUnicode().forEach((c, b) => vocab.set(c, FIRST_BYTE_ID + b));
  const kept: [string, string][] = [];
  for (const [a, b] of allMerges(corpus)) {
    if (vocab.size >= vocabSize) break;
    if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
    kept.push([a, b]);
  }
  let reserved = 0;
  while (vocab.size < vocabSize) vocab.set(`<|reserved_${reserved++}|>`, vocab.size);
  return { vocab, merges: kept, reserved };
}

/**
 * tokenizer.json + tokenizer_config.json for a vocabulary of exactly
 * `vocabSize` tokens, trained on `corpus` (the built-in one by default).
 */
export function buildTokenizerFiles(vocabSize: number, opts: { corpus?: string; maxLength?: number } = {}): TokenizerFiles {
  if (vocabSize < FIRST_MERGE_ID) throw new Error(`a byte-level tokenizer needs a vocabulary of at least ${FIRST_MERGE_ID} tokens (got ${vocabSize})`);
  const { vocab, merges, reserved } = buildVocab(vocabSize, opts.corpus ?? CORPUS);
  const added = SPECIAL_TOKENS.map((t, i) => addedToken(i, t));
  for (let r = 0; r < reserved; r++) added.push(addedToken(vocabSize - reserved + r, `<|reserved_${r}|>`));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(added.slice(0, SPECIAL_TOKENS.length).map(({ id, ...rest }) => [String(id), rest])),
    bos_token: BOS_TOKEN,
    eos_token: EOS_TOKEN,
    pad_token: EOS_TOKEN,
    unk_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: opts.maxLength ?? 4096,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizer, tokenizerConfig, merges: merges.length };
}
