/**
 * Sequence-parallel attention (Ulysses, Ring, USP) as an executor block.
 * (Filled in below; registered with the block factories at import.)
 */
import { registerBlockFactory } from './blocks';

registerBlockFactory(async () => null);
