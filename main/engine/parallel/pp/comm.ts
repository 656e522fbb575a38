/**
 * Pipeline parallelism's closed form: per micro-batch, a stage that is not
 * the last sends its output stream, L floats (Bm·S·H, or this rank's share
 * of the tokens under SP / Megatron-SP), to the next stage; a stage that is
 * not the first receives as much from the previous one. 4·L bytes each.
 */
import { addExpected } from '../../comm/ledger';
import type { Expected } from '../../comm/ledger';
import type { RankPlace } from '../mesh';

export function ppStepComm(into: Expected, place: Pick<RankPlace, 'prev' | 'next'>, floats: number): void {
  if (place.next !== null) addExpected(into, 'send', 1, 4 * floats, 0);
  if (place.prev !== null) addExpected(into, 'recv', 1, 0, 4 * floats);
}
