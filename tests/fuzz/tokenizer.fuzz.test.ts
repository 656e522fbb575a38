/**
 * Fuzzing the tokenizer files of a model folder (loadTokenizer:
 * tokenizer.json, tokenizer_config.json, chat_template.jinja / .json,
 * generation_config.json / config.json eos ids): random content, and the
 * byte-level BPE and WordLevel tokenizers ParaLab writes, mutated. Loading
 * either gives a tokenizer that encodes, decodes, streams and renders its
 * chat template — each call returning or refusing with a one-line
 * ModelError — or is refused with a one-line ModelError.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildTokenizerFiles } from '../../main/engine/model/bpe';
import { ModelError } from '../../main/engine/model/errors';
import { placeholderTokenizer } from '../../main/engine/model/llama2c';
import { loadTokenizer, type TextTokenizer } from '../../main/engine/model/tokenizer';
import { caseDir, fuzzRoot, jsonText, nastyJson, nastyNumber, nastyString, outcome, outcomeAsync, params, plainJson, preview } from './fuzz-helpers';

const root = fuzzRoot('tokenizer');
/** loadTokenizer hands tokenizer.json to @huggingface/tokenizers and templates to @huggingface/jinja; their errors arrive wrapped, named as theirs. */
const LIBRARY = /@huggingface\/tokenizers can load|@huggingface\/tokenizers could not|chat template does not parse|chat template failed to render/;
const LOAD = { cls: ModelError, codes: ['tokenizer-missing', 'config-invalid'], wrapsLibrary: LIBRARY };
const USE = { cls: ModelError, codes: ['token-out-of-range', 'config-invalid', 'tokenizer-missing'], wrapsLibrary: LIBRARY };

const bpe = buildTokenizerFiles(300);
const wordLevel = placeholderTokenizer(300) as { tokenizer: Record<string, unknown>; tokenizerConfig: Record<string, unknown> };
const BASES = [
  { tokenizer: bpe.tokenizer, config: bpe.tokenizerConfig },
  { tokenizer: wordLevel.tokenizer, config: wordLevel.tokenizerConfig },
];

const COMPONENT_TYPES = [
  'BPE', 'WordLevel', 'WordPiece', 'Unigram', 'ByteLevel', 'ByteFallback', 'Fuse', 'Metaspace', 'Sequence', 'Split', 'Whitespace', 'WhitespaceSplit',
  'Replace', 'Strip', 'NFC', 'NFKC', 'Lowercase', 'Prepend', 'Precompiled', 'TemplateProcessing', 'RobertaProcessing', 'BertProcessing', 'BertNormalizer',
  'Digits', 'Punctuation', 'CTC', 'BPEDecoder', 'StripAccents', 'NoSuchType', '', 'constructor', '__proto__',
];

/** A pipeline component ({type, ...}) with random or plausible fields. */
const component = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constantFrom(...COMPONENT_TYPES) }, { requiredKeys: [] }) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        type: fc.constantFrom(...COMPONENT_TYPES),
        decoders: fc.array(fc.oneof(fc.record({ type: fc.constantFrom(...COMPONENT_TYPES) }), plainJson), { maxLength: 3 }),
        pretokenizers: fc.array(fc.oneof(fc.record({ type: fc.constantFrom(...COMPONENT_TYPES) }), plainJson), { maxLength: 3 }),
        normalizers: fc.array(fc.oneof(fc.record({ type: fc.constantFrom(...COMPONENT_TYPES) }), plainJson), { maxLength: 3 }),
        pattern: fc.oneof(fc.record({ Regex: fc.constantFrom('(', '[', '\\', '(?<', 'a{99999999}', '.*', '\\p{Nope}', '') }), fc.record({ String: nastyString }), plainJson),
        content: nastyString,
        replacement: nastyString,
        prepend: nastyString,
        behavior: fc.constantFrom('Isolated', 'Removed', 'MergedWithPrevious', 'Contiguous', 'nope'),
        single: plainJson,
        pair: plainJson,
        special_tokens: plainJson,
        add_prefix_space: plainJson,
        precompiled_charsmap: plainJson,
      },
      { requiredKeys: ['type'] },
    ),
  },
  { weight: 1, arbitrary: plainJson },
);

type Mutation = { path: readonly string[]; value: unknown } | { path: readonly string[]; delete: true };

/** Where a mutation lands in tokenizer.json. */
const tokenizerPath = fc.oneof(
  fc.constantFrom(['model'], ['model', 'type'], ['model', 'vocab'], ['model', 'merges'], ['model', 'unk_token'], ['model', 'byte_fallback'], ['model', 'dropout'], ['model', 'continuing_subword_prefix'], ['model', 'max_input_chars_per_word'], ['added_tokens'], ['decoder'], ['pre_tokenizer'], ['normalizer'], ['post_processor'], ['truncation'], ['padding'], ['version']),
  fc.tuple(fc.constant('model'), fc.constant('vocab'), fc.oneof(nastyString, fc.constantFrom('<unk>', '<s>', 'Ġ', 'a', '<|im_end|>'))),
  fc.tuple(fc.constant('model'), fc.constant('merges'), fc.integer({ min: 0, max: 60 }).map(String)),
  fc.tuple(fc.constant('added_tokens'), fc.integer({ min: 0, max: 6 }).map(String)),
  fc.tuple(fc.constant('added_tokens'), fc.integer({ min: 0, max: 3 }).map(String), fc.constantFrom('id', 'content', 'special', 'normalized', 'lstrip')),
);
const tokenizerValue = fc.oneof(
  { weight: 3, arbitrary: component },
  { weight: 2, arbitrary: nastyNumber },
  { weight: 2, arbitrary: nastyJson },
  { weight: 1, arbitrary: fc.dictionary(nastyString, fc.oneof(nastyNumber, plainJson), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(nastyString, fc.constantFrom('a b', 'Ġ t', 'x', 'a  b', ' '), plainJson), { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.array(fc.record({ id: nastyNumber, content: nastyString, special: fc.boolean() }, { requiredKeys: [] }), { maxLength: 3 }) },
);
const tokenizerMutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ path: tokenizerPath, value: tokenizerValue }) },
  { weight: 1, arbitrary: fc.record({ path: tokenizerPath, delete: fc.constant(true as const) }) },
);

/** Where a mutation lands in tokenizer_config.json, and what it sets. */
const TEMPLATES = [
  '{{', '{% for m in messages %}', '{% endfor %}', '{{ messages[0].content }}', '{{ messages[99].content }}', '{{ raise_exception("no system role") }}',
  '{{ bos_token + eos_token }}', '{% if messages|length > 0 %}{{ messages[0]["role"] }}{% endif %}', '{{ 1 / 0 }}', '{{ undefined_thing.x.y }}',
  '{% set x = namespace(a=1) %}{{ x.a }}', '{{ "a" * 3 }}', '{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}',
  `${'{{ ('.repeat(2000)}1${') }}'.repeat(2000)}`, '{{ messages | tojson }}', '{% for m in messages %}{{ m.content | upper }}{% endfor %}{{ add_generation_prompt }}',
];
const configMutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      path: fc.constantFrom(['bos_token'], ['eos_token'], ['pad_token'], ['unk_token'], ['chat_template'], ['clean_up_tokenization_spaces'], ['added_tokens_decoder'], ['model_max_length'], ['add_bos_token']),
      value: fc.oneof(
        nastyJson,
        nastyString,
        fc.constantFrom(...TEMPLATES),
        fc.record({ content: fc.oneof(nastyString, plainJson) }),
        fc.array(fc.oneof(fc.record({ name: fc.oneof(fc.constantFrom('default', 'tool_use'), plainJson), template: fc.oneof(fc.constantFrom(...TEMPLATES), plainJson) }, { requiredKeys: [] }), plainJson), { maxLength: 3 }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ path: fc.constantFrom(['bos_token'], ['eos_token'], ['chat_template']), delete: fc.constant(true as const) }) },
);

function apply(base: unknown, ms: Mutation[]): unknown {
  const out = structuredClone(base) as Record<string, unknown>;
  for (const m of ms) {
    let at: unknown = out;
    for (const key of m.path.slice(0, -1)) {
      const next = typeof at === 'object' && at !== null ? (at as Record<string, unknown>)[key] : undefined;
      if (typeof next !== 'object' || next === null) {
        at = null;
        break;
      }
      at = next;
    }
    if (typeof at !== 'object' || at === null) continue;
    const last = m.path[m.path.length - 1];
    if ('delete' in m) delete (at as Record<string, unknown>)[last];
    else Object.defineProperty(at, last, { value: m.value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A loaded tokenizer must keep working: every call returns or refuses cleanly. */
function exercise(tok: TextTokenizer, ids: number[], input: () => string): void {
  expect(Number.isSafeInteger(tok.vocabSize), `vocabSize ${tok.vocabSize}; ${input()}`).toBe(true);
  const run = <T>(what: string, fn: () => T) => outcome(fn, USE, () => `${what}: ${input()}`);
  const enc = run('encode', () => tok.encode('Hello, 世界 <|im_end|> x\n'));
  if (enc.ok) {
    // what encode gives goes straight to the model: whole ids inside the vocabulary
    for (const id of enc.value) expect(Number.isInteger(id) && id >= 0 && id < tok.vocabSize, `encode gave id ${preview(id)}; ${input()}`).toBe(true);
    run('decode(encode)', () => tok.decode(enc.value));
  }
  run('encode raw', () => tok.encode('ab', { addSpecial: false }));
  run('decode', () => tok.decode(ids));
  run('decode skip', () => tok.decode(ids, { skipSpecial: true }));
  run('stream', () => {
    const s = tok.createStreamDecoder();
    for (const id of ids) s.push(id);
    return s.flush();
  });
  run('chat', () => tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }], { addGenerationPrompt: true }));
  run('tokenToId', () => tok.tokenToId('<s>'));
  for (const id of ids.slice(0, 3)) run('idToToken', () => tok.idToToken(id));
}

const someIds = fc.array(fc.oneof(fc.integer({ min: 0, max: 299 }), fc.constantFrom(-1, 300, 1e9, 0.5, NaN)), { maxLength: 6 });

describe('tokenizer files fuzz', () => {
  it('mutated tokenizer.json / tokenizer_config.json: a working tokenizer or a one-line ModelError', async () => {
    let loaded = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1),
        fc.array(tokenizerMutation, { maxLength: 3 }),
        fc.array(configMutation, { maxLength: 2 }),
        fc.option(fc.record({ eos_token_id: fc.oneof(nastyNumber, plainJson) }), { nil: undefined }),
        someIds,
        async (b, tm, cm, gen, ids) => {
          const dir = caseDir(root());
          const tokenizer = apply(BASES[b].tokenizer, tm);
          const config = apply(BASES[b].config, cm);
          fs.writeFileSync(path.join(dir, 'tokenizer.json'), jsonText(tokenizer));
          fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), jsonText(config));
          if (gen) fs.writeFileSync(path.join(dir, 'generation_config.json'), jsonText(gen));
          const input = () => `base ${b} tokenizer ${preview(tm)} config ${preview(cm)} gen ${preview(gen)} ids ${preview(ids)}`;
          const r = await outcomeAsync(() => loadTokenizer(dir), LOAD, input);
          if (!r.ok) return;
          loaded++;
          exercise(r.value, ids, input);
        },
      ),
      params(700),
    );
    expect(loaded).toBeGreaterThan(100);
  });

  it('found by seed 99: a tokenizer that loads but throws inside the library on encode is refused with a ModelError', async () => {
    const dir = caseDir(root());
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ ...BASES[0].tokenizer, post_processor: { type: 'RobertaProcessing' } }));
    const tok = await loadTokenizer(dir);
    const r = outcome(() => tok.encode('hi'), USE, () => 'RobertaProcessing without cls / sep');
    expect(r.ok).toBe(false);
  });

  // Found, not fixed (outside the parsers): @huggingface/jinja renders without a bound, so a chat
  // template such as '{% for i in range(100000000) %}x{% endfor %}' in tokenizer_config.json keeps
  // applyChatTemplate busy for minutes. The templates above are all ones that finish.
  it.todo('a chat template that loops 10^8 times is stopped (render with a time or output budget)');

  it('random files in every tokenizer slot: a working tokenizer or a one-line ModelError', async () => {
    const content = fc.oneof(
      { weight: 3, arbitrary: nastyJson.map(jsonText) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.from(u).toString('latin1')) },
      { weight: 1, arbitrary: fc.constantFrom('', '{', '{"model":\n', '{"model":{"type":"BPE","vocab":{},"merges":[]}}', '{"model":{"type":"WordLevel","vocab":{"a":0}}}', '{"model":{"type":"Unigram","vocab":[]}}', '{"model":{"type":"WordPiece","vocab":{}}}', 'null', '[]') },
    );
    const slot = fc.constantFrom('tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'chat_template.json', 'generation_config.json', 'config.json');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0, 1), fc.array(fc.tuple(slot, content, fc.boolean()), { minLength: 1, maxLength: 3 }), someIds, async (b, files, ids) => {
        const dir = caseDir(root());
        fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(BASES[b].tokenizer));
        for (const [name, text, asFolder] of files) {
          fs.rmSync(path.join(dir, name), { recursive: true, force: true });
          if (asFolder && name !== 'tokenizer.json') fs.mkdirSync(path.join(dir, name));
          else fs.writeFileSync(path.join(dir, name), text, 'latin1');
        }
        const input = () => `base ${b} ${preview(files)} ids ${preview(ids)}`;
        const r = await outcomeAsync(() => loadTokenizer(dir), LOAD, input);
        if (r.ok) exercise(r.value, ids, input);
      }),
      params(500),
    );
  });
});
