/**
 * The trie of a vocabulary's token texts, packed into typed arrays once built: a node is an index,
 * its character a code point, its children a first-child / next-sibling chain, its tokens a range
 * of `ids`. A trie of `Map`s for GPT-2's vocabulary is some 200k objects that live as long as the
 * server and that every major garbage collection walks; packed, it is six arrays.
 */

/** A trie under construction (plain objects), packed by `packTrie`. */
interface BuildNode {
  children: Map<number, BuildNode>;
  ids: number[];
  /** Its number once packed. */
  index: number;
}

export class TokenTrie {
  /** Node n's character (node 0, the root, has none). */
  readonly code: Uint32Array;
  /** Node n's first child (-1: none) and its next sibling (-1: none). */
  readonly firstChild: Int32Array;
  readonly nextSibling: Int32Array;
  /** Node n's tokens: ids[idsStart[n] .. idsStart[n + 1]). */
  readonly idsStart: Int32Array;
  readonly ids: Int32Array;

  /** The trie of `entries` ([text, id] pairs). */
  constructor(entries: Iterable<readonly [string, number]>) {
    const root: BuildNode = { children: new Map(), ids: [], index: 0 };
    for (const [text, id] of entries) {
      let node = root;
      for (const c of text) {
        const code = c.codePointAt(0)!;
        let next = node.children.get(code);
        if (!next) node.children.set(code, (next = { children: new Map(), ids: [], index: -1 }));
        node = next;
      }
      node.ids.push(id);
    }
    // Number the nodes breadth first, then fill the arrays.
    const order: BuildNode[] = [root];
    const codes: number[] = [0];
    for (let i = 0; i < order.length; i++) for (const [code, child] of order[i].children) {
      child.index = order.length;
      order.push(child);
      codes.push(code);
    }
    this.code = Uint32Array.from(codes);
    this.firstChild = new Int32Array(order.length).fill(-1);
    this.nextSibling = new Int32Array(order.length).fill(-1);
    this.idsStart = new Int32Array(order.length + 1);
    const ids: number[] = [];
    order.forEach((node, n) => {
      this.idsStart[n] = ids.length;
      for (const id of node.ids) ids.push(id);
      let previous = -1;
      for (const child of node.children.values()) {
        const c = child.index;
        if (previous < 0) this.firstChild[n] = c;
        else this.nextSibling[previous] = c;
        previous = c;
      }
    });
    this.idsStart[order.length] = ids.length;
    this.ids = Int32Array.from(ids);
  }
}
