/**
 * How a group's share of the message tag space is laid out. A tag is hi * 2^32 + lo (on the wire:
 * the header's seq and tag words). A group owns `hiWords` high words of its transport, from 0:
 *
 *   [0, q)     collectives: the op's sequence number (q = hiWords / 4), lo = message index
 *   [q, 2q)    point-to-point: q + the (pair, user tag) counter (collectives/sendrecv.ts), lo = user tag
 *   [2q, 4q)   sub-groups: MAX_SPLITS equal regions, one per split() call. A sub-group's transport
 *              view (group_transport.ts) adds its region's start, so inside it the same layout
 *              repeats, smaller.
 *
 * Sibling groups of one split share a region: their members are disjoint, so no two of them ever
 * exchange a message under it. The world owns 2^21 high words (tags below 2^53, JavaScript's exact
 * integers): its collectives' sequence numbers stay below 2^19 and its point-to-point tags start at
 * 2^19 * 2^32, as before sub-groups existed.
 */
export const TAG_HI = 0x1_0000_0000;
export const WORLD_HI_WORDS = 2 ** 21;
/** split() calls one group may make. */
export const MAX_SPLITS = 16;
/** The smallest share a sub-group may get (4 collectives in flight): nesting stops about four deep. */
const MIN_HI_WORDS = 16;

export interface TagRegion {
  /** The region's first high word, in the parent's numbering. */
  readonly startHi: number;
  readonly hiWords: number;
}

export class TagSpace {
  constructor(readonly hiWords: number = WORLD_HI_WORDS) {
    if (!Number.isInteger(Math.log2(hiWords)) || hiWords < MIN_HI_WORDS) throw new RangeError(`a group's tag space must be a power of two of at least ${MIN_HI_WORDS} high words, got ${hiWords}`);
  }

  /** Collective sequence numbers wrap here (ops further apart than this never overlap in time). */
  get seqLimit(): number {
    return this.hiWords / 4;
  }

  /** The first high word of point-to-point tags; their counters wrap after as many. */
  get p2pBase(): number {
    return this.hiWords / 4;
  }

  /** The region of the index-th split() of this group, or null when there is none left. */
  splitRegion(index: number): TagRegion | null {
    const hiWords = this.hiWords / 2 / MAX_SPLITS;
    if (index >= MAX_SPLITS || hiWords < MIN_HI_WORDS) return null;
    return { startHi: this.hiWords / 2 + index * hiWords, hiWords };
  }
}
