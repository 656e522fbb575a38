/**
 * The device mesh: every rank's coordinates, groups and pipeline neighbours,
 * derived once and purely from a ParallelSpec (after picotron's
 * process_group_manager). Pass it as an argument; never recompute ranks in
 * model code.
 *
 * Axes from outermost to innermost: dp, pp, sp, tp, so
 *
 *   rank = ((dp·PP + pp)·SP + sp)·TP + tp
 *
 * and the ranks of one TP group are neighbours (the most chatty collective
 * gets the closest link). Every group is a sorted list of global ranks.
 *
 * - tpGroup / spGroup / dpGroup: ranks that differ only in that coordinate.
 * - ppGroup: ranks with the same (dp, sp, tp) across stages, in stage order.
 * - ulyssesGroup / ringGroup (sp_impl=usp): the sp group viewed as a
 *   ring × ulysses grid, ulysses innermost: sp index s has ulysses
 *   coordinate s mod U and ring coordinate ⌊s / U⌋. For sp_impl=ulysses the
 *   ring groups are singletons, for ring the ulysses groups are.
 * - epGroup: the ranks of one stage ordered by (dp, sp, tp), cut into
 *   consecutive blocks of ep (ep divides dp·sp·tp); experts are sharded over
 *   one block. With dp=2,ep=2 a block spans the two replicas (DP-attention +
 *   EP experts); with tp=2,ep=2 it is the tp group.
 *
 * The mesh also names the communication groups a cluster needs
 * (`commGroups()`: one per group of every axis with degree > 1, named after
 * its first rank, e.g. `tp0`, `pp1`, `uly0`) and, per rank, which of them it
 * talks over (`links(rank)`), so nobody else rebuilds them.
 */
import type { ParallelSpec } from './spec';
import { splitEven, type Range } from './split';

export interface MeshCoord {
  dp: number;
  pp: number;
  sp: number;
  tp: number;
}

export type GroupKind = 'dp' | 'pp' | 'sp' | 'tp' | 'ep' | 'ulysses' | 'ring';

/** Where one rank sits in the mesh. Plain data: structured-clone safe. */
export interface RankPlace {
  rank: number;
  coord: MeshCoord;
  tpGroup: number[];
  spGroup: number[];
  ulyssesGroup: number[];
  ringGroup: number[];
  ppGroup: number[];
  dpGroup: number[];
  epGroup: number[];
  /** index of this rank inside epGroup (which expert shard it holds) */
  epRank: number;
  /** previous / next pipeline stage of the same (dp, sp, tp); null at the ends */
  prev: number | null;
  next: number | null;
  isFirstStage: boolean;
  isLastStage: boolean;
}

/** A named communication group: global ranks in group-rank order. */
export interface CommGroup {
  name: string;
  ranks: number[];
}

/** The names of a rank's groups (null: that axis has degree 1) and its pipeline neighbours as indices in its pp group. */
export interface RankLinks {
  tp: string | null;
  pp: string | null;
  prev: number | null;
  next: number | null;
  /** sequence-parallel group, and (sp_impl=usp / ring / ulysses) its all-to-all and ring sub-groups */
  sp: string | null;
  ulysses: string | null;
  ring: string | null;
  /** expert-parallel group */
  ep: string | null;
}

export class Mesh {
  readonly world: number;
  /** ranks[r] describes global rank r */
  readonly ranks: readonly RankPlace[];

  constructor(readonly spec: ParallelSpec) {
    const { dp, pp, sp, tp } = spec;
    this.world = dp * pp * sp * tp;
    if (this.world !== spec.world) throw new Error(`Mesh: spec.world=${spec.world} but dp·pp·sp·tp = ${this.world}`);
    const places: RankPlace[] = [];
    for (let r = 0; r < this.world; r++) places.push(this.buildPlace(r));
    this.ranks = places;
  }

  /** Global rank of a coordinate. */
  rankOf(c: MeshCoord): number {
    const { pp, sp, tp } = this.spec;
    return ((c.dp * pp + c.pp) * sp + c.sp) * tp + c.tp;
  }

  /** Coordinates of a global rank. */
  coordOf(rank: number): MeshCoord {
    this.checkRank(rank);
    const { pp, sp, tp } = this.spec;
    return {
      tp: rank % tp,
      sp: Math.floor(rank / tp) % sp,
      pp: Math.floor(rank / (tp * sp)) % pp,
      dp: Math.floor(rank / (tp * sp * pp)),
    };
  }

  place(rank: number): RankPlace {
    this.checkRank(rank);
    return this.ranks[rank];
  }

  /** Every distinct group of one kind, each sorted, ordered by first rank. */
  groups(kind: GroupKind): number[][] {
    const seen = new Map<number, number[]>();
    for (const p of this.ranks) {
      const g = groupOf(p, kind);
      if (!seen.has(g[0])) seen.set(g[0], g);
    }
    return [...seen.values()].sort((a, b) => a[0] - b[0]);
  }

  /**
   * Every communication group the plan uses. USP's Ulysses and ring
   * sub-groups exist only when both have more than one rank (with pure
   * Ulysses or pure ring the sp group itself plays that part).
   */
  commGroups(): CommGroup[] {
    const { tp, pp, sp, ep, ulysses } = this.spec;
    const named = (kind: GroupKind, prefix: string) => this.groups(kind).map((ranks) => ({ name: `${prefix}${ranks[0]}`, ranks }));
    const usp = sp > 1 && ulysses > 1 && ulysses < sp;
    return [
      ...(tp > 1 ? named('tp', 'tp') : []),
      ...(pp > 1 ? named('pp', 'pp') : []),
      ...(ep > 1 ? named('ep', 'ep') : []),
      ...(sp > 1 ? named('sp', 'sp') : []),
      ...(usp ? named('ulysses', 'uly') : []),
      ...(usp ? named('ring', 'ring') : []),
    ];
  }

  /** Which of commGroups() a rank talks over, and its pipeline neighbours (as ranks of its pp group). */
  links(rank: number): RankLinks {
    const p = this.place(rank);
    const { tp, pp, sp, ep, ulysses } = this.spec;
    // With sp_impl=ulysses the Ulysses group is the sp group; with ring, the ring is.
    const spName = sp > 1 ? `sp${p.spGroup[0]}` : null;
    return {
      tp: tp > 1 ? `tp${p.tpGroup[0]}` : null,
      pp: pp > 1 ? `pp${p.ppGroup[0]}` : null,
      ep: ep > 1 ? `ep${p.epGroup[0]}` : null,
      sp: spName,
      ulysses: ulysses <= 1 ? null : ulysses === sp ? spName : `uly${p.ulyssesGroup[0]}`,
      ring: sp / ulysses <= 1 ? null : ulysses === 1 ? spName : `ring${p.ringGroup[0]}`,
      prev: pp > 1 && p.prev !== null ? p.coord.pp - 1 : null,
      next: pp > 1 && p.next !== null ? p.coord.pp + 1 : null,
    };
  }

  /** `TP(2)-SP(1)-PP(2)-DP(2)`, innermost axis first; `-EP(n)` appended when ep > 1. */
  describe(): string {
    const { tp, sp, pp, dp, ep } = this.spec;
    const base = `TP(${tp})-SP(${sp})-PP(${pp})-DP(${dp})`;
    return ep > 1 ? `${base}-EP(${ep})` : base;
  }

  /**
   * Layers owned by pipeline stage `stage`, as a half-open range [start, end)
   * of layer indices. Stages are contiguous; when pp does not divide the layer
   * count the first stages get one layer more (8 over 3 → 3/3/2).
   */
  layerRange(stage: number, layers: number): Range {
    if (layers < this.spec.pp) throw new RangeError(`pp=${this.spec.pp} exceeds the ${layers} layers of this model; use pp ≤ ${layers}`);
    return splitEven(layers, this.spec.pp, stage);
  }

  private checkRank(rank: number): void {
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.world) {
      throw new RangeError(`rank ${rank} is outside this mesh of ${this.world} ranks (0..${this.world - 1})`);
    }
  }

  private buildPlace(rank: number): RankPlace {
    const { dp, pp, sp, tp, ep, ulysses } = this.spec;
    const c = this.coordOf(rank);
    const along = (axis: keyof MeshCoord, size: number): number[] =>
      Array.from({ length: size }, (_, i) => this.rankOf({ ...c, [axis]: i }));

    const spGroup = along('sp', sp);
    const ringIndex = Math.floor(c.sp / ulysses);
    const ulyssesIndex = c.sp % ulysses;
    const ulyssesGroup = spGroup.filter((_, s) => Math.floor(s / ulysses) === ringIndex);
    const ringGroup = spGroup.filter((_, s) => s % ulysses === ulyssesIndex);

    // Position inside the stage, ordered by (dp, sp, tp).
    const inStage = (c.dp * sp + c.sp) * tp + c.tp;
    const blockStart = inStage - (inStage % ep);
    const epGroup = Array.from({ length: ep }, (_, i) => {
      const j = blockStart + i;
      return this.rankOf({ dp: Math.floor(j / (sp * tp)), pp: c.pp, sp: Math.floor(j / tp) % sp, tp: j % tp });
    });

    return {
      rank,
      coord: c,
      tpGroup: along('tp', tp),
      spGroup,
      ulyssesGroup,
      ringGroup,
      ppGroup: along('pp', pp),
      dpGroup: along('dp', dp),
      epGroup,
      epRank: inStage % ep,
      prev: c.pp > 0 ? this.rankOf({ ...c, pp: c.pp - 1 }) : null,
      next: c.pp < pp - 1 ? this.rankOf({ ...c, pp: c.pp + 1 }) : null,
      isFirstStage: c.pp === 0,
      isLastStage: c.pp === pp - 1,
    };
  }
}

/** The mesh of a spec (same as `new Mesh(spec)`). */
export function buildMesh(spec: ParallelSpec): Mesh {
  return new Mesh(spec);
}

/** The group of kind `kind` that a rank belongs to. */
export function groupOf(p: RankPlace, kind: GroupKind): number[] {
  switch (kind) {
    case 'dp': return p.dpGroup;
    case 'pp': return p.ppGroup;
    case 'sp': return p.spGroup;
    case 'tp': return p.tpGroup;
    case 'ep': return p.epGroup;
    case 'ulysses': return p.ulyssesGroup;
    case 'ring': return p.ringGroup;
  }
}
