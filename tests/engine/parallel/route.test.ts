import { describe, expect, it } from 'vitest';
import { route } from '../../../main/engine/parallel/dp/route';

describe('data-parallel routing', () => {
  it('round-robin continues across requests', () => {
    const active = [0, 0];
    const counter = { next: 0 };
    expect(route('round-robin', 3, active, counter)).toEqual([0, 1, 0]);
    expect(route('round-robin', 1, active, counter)).toEqual([1]);
    expect(active).toEqual([2, 2]);
  });

  it('least-loaded sends new work to the replica with the fewest sequences in flight', () => {
    const active = [3, 0, 1];
    expect(route('least-loaded', 4, active, { next: 0 })).toEqual([1, 1, 2, 1]);
    expect(active).toEqual([3, 3, 2]);
    // ties go to the lowest index
    expect(route('least-loaded', 1, [2, 2], { next: 0 })).toEqual([0]);
  });
});
