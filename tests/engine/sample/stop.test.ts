import { describe, expect, it } from 'vitest';
import { StopChecker } from '../../../main/engine/sample/stop';

/** Feed pieces one token at a time; return the first hit and how many tokens it took. */
function feed(checker: StopChecker, pieces: [id: number, text: string][]) {
  let text = '';
  for (let i = 0; i < pieces.length; i++) {
    text += pieces[i][1];
    const hit = checker.check(pieces[i][0], text);
    if (hit) return { hit, tokens: i + 1 };
  }
  return { hit: null, tokens: pieces.length };
}

describe('StopChecker', () => {
  it('stops on eos unless ignoreEos', () => {
    const pieces: [number, string][] = [[5, 'a'], [2, ''], [6, 'b']];
    expect(feed(new StopChecker({ eosIds: [2] }), pieces)).toEqual({ hit: { reason: 'eos', text: 'a' }, tokens: 2 });
    expect(feed(new StopChecker({ eosIds: [2], ignoreEos: true }), pieces).hit).toBeNull();
    expect(feed(new StopChecker({ eosIds: [2], ignoreEos: true, stopIds: [6] }), pieces)).toEqual({ hit: { reason: 'stop', text: 'ab' }, tokens: 3 });
  });

  it('finds a stop string spanning several tokens and cuts the text before it', () => {
    const checker = new StopChecker({ eosIds: [], stopStrings: ['STOP'] });
    const r = feed(checker, [[1, 'Hello'], [2, ' wor'], [3, 'ld ST'], [4, 'O'], [5, 'P more'], [6, '!']]);
    expect(r.tokens).toBe(5);
    expect(r.hit).toEqual({ reason: 'stop', text: 'Hello world ', stopString: 'STOP' });
  });

  it('takes the earliest of several stop strings', () => {
    const checker = new StopChecker({ eosIds: [], stopStrings: ['\n\n', 'User:'] });
    const r = feed(checker, [[1, 'ok User'], [2, ':\n\nmore']]);
    expect(r.hit).toEqual({ reason: 'stop', text: 'ok ', stopString: 'User:' });
  });

  it('finds a stop string inside one token, and ignores empty ones', () => {
    const r = feed(new StopChecker({ eosIds: [], stopStrings: ['', 'end'] }), [[1, 'the ending']]);
    expect(r.hit).toEqual({ reason: 'stop', text: 'the ', stopString: 'end' });
    expect(feed(new StopChecker({ eosIds: [], stopStrings: [''] }), [[1, 'abc']]).hit).toBeNull();
  });

  it('scans only the tail, yet sees strings completed by a long piece', () => {
    const checker = new StopChecker({ eosIds: [], stopStrings: ['<|end|>'] });
    const long = 'x'.repeat(1000);
    const r = feed(checker, [[1, long], [2, '<|e'], [3, 'nd'], [4, '|>tail']]);
    expect(r.tokens).toBe(4);
    expect(r.hit?.text).toBe(long);
  });
});
