import { describe, expect, it } from 'vitest';
import { formatSpec, parseSpec, SpecError, usedAxes, type SpecErrorCode } from '../../../main/engine/parallel/spec';

function errorOf(text: string): SpecError {
  try {
    parseSpec(text);
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
  throw new Error(`expected '${text}' to be rejected`);
}

describe('parseSpec', () => {
  it('parses single and degrees with defaults', () => {
    expect(parseSpec('single')).toEqual({ dp: 1, pp: 1, tp: 1, sp: 1, ep: 1, micro: 1, spImpl: 'ulysses', ulysses: 1, ringChunks: 'zigzag', epTp: 'share', world: 1 });
    expect(parseSpec('tp=2,ep=2,ep_tp=allreduce')).toMatchObject({ tp: 2, ep: 2, epTp: 'allreduce', world: 2 });
    expect(parseSpec('dp=2,tp=2')).toMatchObject({ dp: 2, tp: 2, pp: 1, world: 4, micro: 1 });
    expect(parseSpec('pp=4')).toMatchObject({ pp: 4, micro: 4, world: 4 });
    expect(parseSpec('pp=2,micro=8')).toMatchObject({ pp: 2, micro: 8 });
    expect(parseSpec('sp=4,sp_impl=ring')).toMatchObject({ sp: 4, spImpl: 'ring', ulysses: 1, world: 4 });
    expect(parseSpec('sp=4')).toMatchObject({ sp: 4, spImpl: 'ulysses', ulysses: 4 });
    expect(parseSpec('sp=4,sp_impl=usp,ulysses=2')).toMatchObject({ sp: 4, spImpl: 'usp', ulysses: 2 });
    expect(parseSpec('tp=2,sp_impl=megatron')).toMatchObject({ tp: 2, sp: 1, spImpl: 'megatron', world: 2 });
    expect(parseSpec('dp=2,ep=2')).toMatchObject({ dp: 2, ep: 2, world: 2 });
  });

  it('tolerates whitespace, case and a trailing comma', () => {
    expect(parseSpec('  DP = 2 ,  Tp=2 ,')).toEqual(parseSpec('dp=2,tp=2'));
    expect(parseSpec(' SINGLE ')).toEqual(parseSpec('single'));
    expect(parseSpec('sp=2, SP_IMPL = Ring')).toMatchObject({ spImpl: 'ring' });
  });

  const cases: [string, SpecErrorCode, RegExp][] = [
    ['', 'empty', /write 'single'/],
    [' , ', 'empty', /empty/],
    ['sp=2,sp_impl=ring,ring_chunks=spiral', 'bad-ring-chunks', /^unknown ring_chunks 'spiral'; use zigzag or naive$/],
    ['sp=2,ring_chunks=naive', 'ring-chunks-without-ring', /ring_chunks only applies to sp_impl=ring or usp/],
    ['xp=2', 'unknown-key', /^unknown key 'xp' in 'xp=2'; use dp, pp, tp, sp, ep, micro, sp_impl, ulysses, ring_chunks, ep_tp$/],
    ['tp=2,ep=2,ep_tp=sum', 'bad-ep-tp', /^unknown ep_tp 'sum'; use share or allreduce$/],
    ['dp=2,ep=2,ep_tp=allreduce', 'ep-tp-needs-tp-eq-ep', /needs tp = ep > 1 \(got tp=1, ep=2\)/],
    ['tp=2,ep_tp=allreduce', 'ep-tp-needs-tp-eq-ep', /needs tp = ep > 1/],
    ['tp', 'syntax', /expected key=value, got 'tp'/],
    ['tp=two', 'bad-number', /tp=two is not a whole number/],
    ['tp=1.5', 'bad-number', /not a whole number/],
    ['tp=-2', 'bad-number', /not a whole number/],
    ['tp=', 'bad-number', /not a whole number/],
    ['tp=2,TP=4', 'duplicate-key', /key 'tp' is given twice/],
    ['tp=0', 'zero', /tp=0 is not a degree/],
    ['micro=0,pp=2', 'zero', /micro=0/],
    ['sp=2,sp_impl=zigzag', 'bad-sp-impl', /unknown sp_impl 'zigzag'; use ulysses, ring, usp, megatron/],
    ['tp=3,ep=2', 'ep-divides', /ep=2 does not divide dp·tp·sp = 3.*use ep ∈ \{1,3\}/],
    ['pp=2,ep=2', 'ep-divides', /dp·tp·sp = 1/],
    ['sp=4,ulysses=2', 'ulysses-without-usp', /only meaningful with sp_impl=usp/],
    ['sp=4,sp_impl=usp', 'usp-needs-ulysses', /needs ulysses=U/],
    ['sp=4,sp_impl=usp,ulysses=3', 'ulysses-divides', /ulysses=3 does not divide sp=4; use ulysses ∈ \{1,2,4\}/],
    ['tp=2,sp=2,sp_impl=megatron', 'megatron-with-sp', /takes no sp key; write 'tp=4,sp_impl=megatron'/],
    ['dp=8,tp=16', 'world-too-large', /128 ranks exceeds the limit of 64/],
    ['single,tp=2', 'single-with-keys', /cannot be combined/],
  ];
  for (const [text, code, message] of cases) {
    it(`rejects '${text}' with ${code}`, () => {
      const e = errorOf(text);
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
      expect(e.message).not.toContain('\n');
    });
  }
});

describe('formatSpec', () => {
  it('prints the canonical form', () => {
    expect(formatSpec(parseSpec('tp=2, dp=2'))).toBe('dp=2,tp=2');
    expect(formatSpec(parseSpec('dp=1'))).toBe('single');
    expect(formatSpec(parseSpec('single'))).toBe('single');
    expect(formatSpec(parseSpec('pp=2,micro=2'))).toBe('pp=2');
    expect(formatSpec(parseSpec('pp=2,micro=4'))).toBe('pp=2,micro=4');
    expect(formatSpec(parseSpec('sp=4,sp_impl=ulysses'))).toBe('sp=4');
    expect(formatSpec(parseSpec('sp_impl=megatron,tp=4'))).toBe('tp=4,sp_impl=megatron');
  });

  it('round-trips', () => {
    const texts = [
      'single', 'dp=2,tp=2', 'pp=2,tp=2', 'dp=2,pp=2,tp=2', 'dp=2,ep=2', 'tp=2,ep=2', 'pp=3,micro=6',
      'sp=4,sp_impl=ring', 'sp=8,sp_impl=usp,ulysses=2', 'tp=2,sp_impl=megatron', 'micro=3', 'sp=2,sp_impl=usp,ulysses=1', 'tp=2,ep=2,ep_tp=allreduce',
    ];
    for (const t of texts) {
      const spec = parseSpec(t);
      expect(formatSpec(spec)).toBe(t);
      expect(parseSpec(formatSpec(spec))).toEqual(spec);
    }
  });
});

describe('usedAxes', () => {
  it('lists axes with degree > 1, megatron counting as sp', () => {
    expect(usedAxes(parseSpec('single'))).toEqual([]);
    expect(usedAxes(parseSpec('dp=2,pp=2,tp=2'))).toEqual(['dp', 'pp', 'tp']);
    expect(usedAxes(parseSpec('tp=2,sp_impl=megatron'))).toEqual(['tp', 'sp']);
    expect(usedAxes(parseSpec('dp=2,ep=2'))).toEqual(['dp', 'ep']);
  });
});
