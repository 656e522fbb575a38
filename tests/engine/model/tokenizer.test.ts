import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOS_ID, EOS_ID, IM_END_ID, IM_START_ID, buildTokenizerFiles, bytesToUnicode, trainBpe } from '../../../main/engine/model/bpe';
import { CORPUS } from '../../../main/engine/model/corpus';
import { ensurePreset } from '../../../main/engine/model/synth';
import { loadTokenizer, type TextTokenizer } from '../../../main/engine/model/tokenizer';
import { modelError, tmpDir } from './helpers';

const ENGLISH = "Tensor parallelism splits every weight matrix; it's fast when the link is fast.\n  Indented line, numbers 1234 and 3.14!";
const CHINESE = '张量并行把每个权重矩阵切分到多个设备上。流水线并行的气泡会变小吗？';
const MIXED = `${ENGLISH} ${CHINESE} 🚀 café`;

let dir: string;
let tok: TextTokenizer;

beforeAll(async () => {
  dir = await ensurePreset('synth-llama-tiny', { cacheDir: tmpDir() });
  tok = await loadTokenizer(dir);
});

describe('byte-level BPE trainer', () => {
  it('uses the GPT-2 byte map and trains deterministically', () => {
    const map = bytesToUnicode();
    expect(map[32]).toBe('Ġ');
    expect(map[10]).toBe('Ċ');
    expect(map[65]).toBe('A');
    expect(new Set(map).size).toBe(256);
    const a = trainBpe(CORPUS, 50);
    expect(trainBpe(CORPUS, 50)).toEqual(a);
    expect(a[0]).toEqual(['Ġ', 't']);
    expect(trainBpe(CORPUS, 300).slice(0, 50)).toEqual(a);
  });

  it('fills a 32000 vocabulary with reserved tokens, ids in the documented order', async () => {
    const files = buildTokenizerFiles(32000);
    const d = tmpDir();
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(files.tokenizer));
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig));
    const big = await loadTokenizer(d);
    expect(big.vocabSize).toBe(32000);
    expect(big.tokenToId('<|begin_of_text|>')).toBe(0);
    expect(big.tokenToId('<|im_end|>')).toBe(3);
    expect(big.tokenToId('!')).toBe(4 + 33);
    expect(big.tokenToId(`<|reserved_${32000 - 260 - files.merges - 1}|>`)).toBe(31999);
    expect(big.decode(big.encode(MIXED))).toBe(MIXED);
    expect(big.decode([31999, 4 + 34])).toBe('<|reserved_' + (32000 - 260 - files.merges - 1) + '|>"');
    expect(big.decode([31999, 4 + 34], { skipSpecial: true })).toBe('"');
  });
});

describe('loadTokenizer on a preset', () => {
  it('knows its specials and size', () => {
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosId).toBe(BOS_ID);
    expect(tok.eosIds).toEqual([EOS_ID, IM_END_ID]);
    expect(tok.hasChatTemplate).toBe(true);
    expect(tok.encode('<|im_start|>', { addSpecial: false })).toEqual([IM_START_ID]);
  });

  it('round-trips English, Chinese and mixed text', () => {
    for (const text of [ENGLISH, CHINESE, MIXED, '', ' ', '\n\n']) {
      const ids = tok.encode(text);
      expect(ids.every((id) => id >= 4 && id < 512)).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    }
    // merges make common English shorter than its bytes
    expect(tok.encode(ENGLISH).length).toBeLessThan(Buffer.byteLength(ENGLISH) * 0.7);
  });

  it('renders the ChatML template and encodes it with the special ids', () => {
    const text = tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '你好' }], { addGenerationPrompt: true });
    expect(text).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encode(text!, { addSpecial: false });
    expect(ids[0]).toBe(IM_START_ID);
    expect(ids.filter((id) => id === IM_END_ID).length).toBe(2);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode(ids, { skipSpecial: true })).toBe('system\nBe brief.\nuser\n你好\nassistant\n');
    expect(tok.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: false })).toBe('<|im_start|>user\nx<|im_end|>\n');
  });

  it('stream decoder never emits broken UTF-8 and adds up to decode(all)', () => {
    for (const text of [CHINESE, MIXED]) {
      const ids = [...tok.encode(text), IM_END_ID];
      for (const skipSpecial of [false, true]) {
        const stream = tok.createStreamDecoder({ skipSpecial });
        const pieces = ids.map((id) => stream.push(id));
        pieces.push(stream.flush());
        for (const p of pieces) {
          expect(p).not.toContain('\uFFFD');
          expect(Buffer.from(p, 'utf8').toString('utf8')).toBe(p);
        }
        expect(pieces.join('')).toBe(tok.decode(ids, { skipSpecial }));
        // Chinese characters are split over several byte tokens, so some pushes emit nothing
        expect(pieces.filter((p) => p === '').length).toBeGreaterThan(0);
      }
    }
  });

  it('stream decoder matches decode(all) on arbitrary (even invalid UTF-8) id sequences', () => {
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 30; trial++) {
      const ids = Array.from({ length: 40 }, () => Math.floor(rnd() * 512));
      const stream = tok.createStreamDecoder();
      const out = ids.map((id) => stream.push(id)).join('') + stream.flush();
      expect(out).toBe(tok.decode(ids));
    }
  });

  it('decodes exactly like the library (its fast ByteLevel path), incl. specials and invalid bytes', async () => {
    const lib = new Tokenizer(
      JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
    );
    let seed = 11;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 50; trial++) {
      const ids = Array.from({ length: 1 + Math.floor(rnd() * 60) }, () => Math.floor(rnd() * 512));
      expect(tok.decode(ids)).toBe(lib.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
      expect(tok.decode(ids, { skipSpecial: true })).toBe(lib.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }));
    }
  });

  it('out-of-range ids are a ModelError', async () => {
    const e = await modelError(() => tok.decode([5, 512]), 'token-out-of-range');
    expect(e.message).toContain('512');
    expect(e.message).toContain('tokenizer.json');
    await modelError(() => tok.decode([-1]), 'token-out-of-range');
    expect(tok.decode([])).toBe('');
  });
});

describe('tokenizer folders', () => {
  it('missing tokenizer.json names the folder', async () => {
    const d = tmpDir();
    const e = await modelError(() => loadTokenizer(d), 'tokenizer-missing');
    expect(e.message).toContain(d);
    fs.writeFileSync(path.join(d, 'tokenizer.json'), '{"model": ');
    await modelError(() => loadTokenizer(d), 'tokenizer-missing');
  });

  it('reads the list-of-named-templates form, chat_template.jinja, and no template', async () => {
    const copy = (cfg: (c: Record<string, unknown>) => Record<string, unknown>, extra?: [string, string]) => {
      const d = tmpDir();
      fs.copyFileSync(path.join(dir, 'tokenizer.json'), path.join(d, 'tokenizer.json'));
      const c = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
      fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(cfg(c)));
      if (extra) fs.writeFileSync(path.join(d, extra[0]), extra[1]);
      return d;
    };
    const listed = await loadTokenizer(copy((c) => ({
      ...c, chat_template: [{ name: 'tool_use', template: 'TOOLS' }, { name: 'default', template: '{{ bos_token }}{{ messages[0].content }}' }],
    })));
    expect(listed.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: false })).toBe('<|begin_of_text|>hi');

    const { chat_template: _t, ...noTemplate } = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    const jinja = await loadTokenizer(copy(() => noTemplate, ['chat_template.jinja', '[{{ messages | length }}]']));
    expect(jinja.applyChatTemplate([{ role: 'user', content: 'a' }], { addGenerationPrompt: true })).toBe('[1]');

    const none = await loadTokenizer(copy(() => noTemplate));
    expect(none.hasChatTemplate).toBe(false);
    expect(none.applyChatTemplate([{ role: 'user', content: 'a' }], { addGenerationPrompt: true })).toBeNull();

    const broken = await loadTokenizer(copy((c) => ({ ...c, chat_template: "{{ raise_exception('roles must alternate') }}" })));
    const e = await modelError(() => broken.applyChatTemplate([], { addGenerationPrompt: true }), 'config-invalid');
    expect(e.message).toContain('roles must alternate');
  });
});
