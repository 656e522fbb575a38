/**
 * Fuzzing the parallel spec (a string a user types, or a client sends):
 * parseSpec and validateSpecForModel either accept it or throw a SpecError
 * with a one-line message — never a JavaScript error, never a long loop
 * (a divisor list of a 16-digit degree), whatever the keys, numbers and
 * separators.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatSpec, MAX_WORLD, parseSpec, SpecError, type ParallelSpec } from '../../main/engine/parallel/spec';
import { SUPPORTED_AXES, SUPPORTED_SP_IMPL, validateSpecForModel } from '../../main/engine/parallel/validate';
import { presetConfig } from '../../main/engine/model/presets';
import type { ModelConfig } from '../../main/engine/model/types';
import { nastyString, outcome, params, preview } from './fuzz-helpers';

const SPEC = { cls: SpecError };
const KEYS = ['dp', 'pp', 'tp', 'sp', 'ep', 'micro', 'sp_impl', 'ulysses', 'ring_chunks', 'ep_tp'];

/** Checks one accepted spec: sane degrees, and the canonical form reads back to the same spec. */
function checkAccepted(s: ParallelSpec, text: string): void {
  for (const k of ['dp', 'pp', 'tp', 'sp', 'ep', 'micro', 'ulysses'] as const) {
    expect(Number.isSafeInteger(s[k]) && s[k] >= 1, `${k}=${s[k]} from ${preview(text)}`).toBe(true);
  }
  expect(s.world).toBe(s.dp * s.pp * s.tp * s.sp);
  expect(s.world).toBeLessThanOrEqual(MAX_WORLD);
  expect(parseSpec(formatSpec(s))).toEqual(s);
}

const parse = (text: string) => outcome(() => parseSpec(text), SPEC, () => preview(text));

/** Near-valid specs: known keys (any case), random keys, numbers of every kind, and odd separators. */
const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...KEYS) },
  { weight: 2, arbitrary: fc.mixedCase(fc.constantFrom(...KEYS)) },
  { weight: 1, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.constantFrom('single', 'SINGLE', 'x', 'tp ', ' d p', '=', 'sp_impl=', 'world') },
);
const value = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 70 }).map(String) },
  { weight: 2, arbitrary: fc.constantFrom('ulysses', 'ring', 'usp', 'megatron', 'RING', 'zigzag', 'naive', 'share', 'allreduce', 'AllReduce') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '-1', '-0', '+2', '1.5', '2.0', '1e3', '0x10', '0b1', ' 2 ', '', '٣', '2 2', 'NaN', 'Infinity',
      // large and huge degrees: a divisor or smallest-factor search over them must not loop
      '65', '128', '4096', '1000000007', '2147483647', '4294967296', '9007199254740881', '9007199254740991', '9007199254740993', '99999999999999999999', '9'.repeat(400),
    ),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: nastyString },
);
const item = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(key, fc.constantFrom('=', ' = ', '==', '=\n'), value).map(([k, eq, v]) => `${k}${eq}${v}`) },
  { weight: 1, arbitrary: key },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'single', '=', '=2', ',') },
);
const specText = fc.tuple(fc.array(item, { minLength: 1, maxLength: 6 }), fc.constantFrom(',', ', ', ' ,', ',,', ';', '\n', '\t', ' ')).map(([items, sep]) => items.join(sep));

describe('parseSpec fuzz', () => {
  it('arbitrary strings: accepted or a one-line SpecError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: fc.constantFrom(...'dptsemicro_=,0123456789 \n\t-.'), maxLength: 40 })), (text) => {
        const r = parse(text);
        if (r.ok) checkAccepted(r.value, text);
      }),
      params(3000),
    );
  });

  it('near-valid key=value lists: accepted or a one-line SpecError', () => {
    let accepted = 0;
    fc.assert(
      fc.property(specText, (text) => {
        const r = parse(text);
        if (r.ok) {
          accepted++;
          checkAccepted(r.value, text);
        }
      }),
      params(6000),
    );
    // the generator must reach the accepting paths, not only the first error
    expect(accepted).toBeGreaterThan(100);
  });

  it('huge degrees on every key that lists divisors or factors answer at once', () => {
    const huge = fc.constantFrom('1000000007', '2147483647', '4294967291', '999999999989', '9007199254740881', '9007199254740991');
    fc.assert(
      fc.property(huge, fc.constantFrom('usp', 'ulysses', 'ring', 'megatron'), fc.constantFrom('', ',ulysses=3', ',ulysses=2', ',ep=3', ',dp=3,ep=2'), (n, impl, rest) => {
        for (const text of [`sp=${n},sp_impl=${impl}${rest}`, `tp=${n},sp_impl=${impl}${rest}`, `dp=${n}${rest}`, `ep=${n}`, `sp=4,sp_impl=usp,ulysses=${n}`]) {
          const r = parse(text);
          if (r.ok) checkAccepted(r.value, text);
        }
      }),
      params(300),
    );
  });
});

// ---------------------------------------------------------------------------

/** Small model configs, dense and MoE, with head / KV / expert counts that divide and that do not. */
const smallConfig: fc.Arbitrary<ModelConfig> = fc
  .record({
    base: fc.constantFrom(presetConfig('synth-llama-tiny'), presetConfig('synth-moe-tiny')),
    heads: fc.oneof(fc.integer({ min: 1, max: 96 }), fc.constantFrom(2 ** 31 - 1, 2 ** 40, 2 ** 52, 9007199254740881)),
    kvDiv: fc.integer({ min: 1, max: 8 }),
    layers: fc.oneof(fc.integer({ min: 1, max: 70 }), fc.constantFrom(2 ** 31 - 1, 2 ** 52)),
    experts: fc.oneof(fc.integer({ min: 1, max: 70 }), fc.constantFrom(1000000007, 2 ** 52, 9007199254740881)),
    vocab: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(2 ** 52, 9007199254740881)),
    ffn: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(2 ** 52)),
    qkNorm: fc.constantFrom<ModelConfig['qkNormScope'] | null>(null, 'head', 'projection'),
  })
  .map(({ base, heads, kvDiv, layers, experts, vocab, ffn, qkNorm }) => {
    const kvHeads = heads % kvDiv === 0 ? heads / kvDiv : heads;
    const c: ModelConfig = { ...base, heads, kvHeads, layers, vocabSize: vocab, ffn: base.moe ? 0 : ffn, qkNorm: qkNorm !== null };
    if (qkNorm) c.qkNormScope = qkNorm;
    if (base.moe) c.moe = { ...base.moe, experts, topK: Math.min(base.moe.topK, experts), expertFfn: ffn };
    return c;
  });

const validSpec = fc
  .record({
    dp: fc.constantFrom(1, 1, 2, 3),
    pp: fc.constantFrom(1, 1, 2, 3, 8),
    tp: fc.constantFrom(1, 1, 2, 3, 4),
    sp: fc.constantFrom(1, 1, 2, 4),
    ep: fc.constantFrom(1, 1, 2, 4),
    impl: fc.constantFrom('', ',sp_impl=ring', ',sp_impl=usp,ulysses=2', ',sp_impl=usp,ulysses=1', ',sp_impl=megatron', ',sp_impl=ring,ring_chunks=naive', ',ep_tp=allreduce'),
  })
  .map(({ dp, pp, tp, sp, ep, impl }) => `dp=${dp},pp=${pp},tp=${tp},sp=${sp},ep=${ep}${impl}`);

describe('validateSpecForModel fuzz', () => {
  it('every parsed spec × small config: notes or a one-line SpecError', () => {
    let checked = 0;
    fc.assert(
      fc.property(
        fc.oneof({ weight: 3, arbitrary: validSpec }, { weight: 1, arbitrary: specText }),
        smallConfig,
        fc.option(fc.subarray([...SUPPORTED_AXES]), { nil: undefined }),
        fc.option(fc.subarray([...SUPPORTED_SP_IMPL]), { nil: undefined }),
        (text, config, supported, supportedSpImpl) => {
          const parsed = parse(text);
          if (!parsed.ok) return;
          checked++;
          const input = () => `${preview(text)} on ${preview({ heads: config.heads, kvHeads: config.kvHeads, layers: config.layers, moe: config.moe })}`;
          const r = outcome(() => validateSpecForModel(parsed.value, config, { supported, supportedSpImpl }), { cls: SpecError, codes: ['model-mismatch', 'unsupported'] }, input);
          if (r.ok) {
            for (const note of r.value.notes) expect(note.length > 0 && !note.includes('\n'), `note ${preview(note)} for ${input()}`).toBe(true);
          }
        },
      ),
      params(3000),
    );
    expect(checked).toBeGreaterThan(800);
  });
});
