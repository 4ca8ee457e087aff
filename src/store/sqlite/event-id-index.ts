/**
 * The SQLite store's idempotency index, in memory.
 *
 * A B-tree index on random client-supplied ids costs about one page write per inserted row (every
 * transaction copies each index page it touches into the WAL): measured here, it cuts batched
 * inserts from ~300k to ~35k rows/s. So SQLite keeps no such index. This table maps a 32-bit hash
 * of (account, event id) to the row's `seq`; a hash match is confirmed by reading that row, so a
 * hash collision never makes a new event a duplicate. It holds every event created within the
 * dedup window, is rebuilt from the events table when the store opens, and is only extended after
 * a transaction commits, so it never disagrees with what is durable. 8 bytes per event.
 *
 * (PostgreSQL keeps a real unique index: several instances may write at once, and its index costs
 * less there.)
 */
export class EventIdIndex {
  private hashes: Uint32Array;
  private seqs: Uint32Array;
  private used = 0;

  constructor(capacity = 1 << 16) {
    this.hashes = new Uint32Array(capacity);
    this.seqs = new Uint32Array(capacity);
  }

  get size(): number {
    return this.used;
  }

  /** Every seq stored under this id's hash: candidates to confirm against the table. */
  *candidates(hash: number): Generator<number> {
    const cap = this.hashes.length;
    let i = hash % cap;
    while (this.seqs[i] !== 0) {
      if (this.hashes[i] === hash) yield this.seqs[i];
      i = i + 1 === cap ? 0 : i + 1;
    }
  }

  add(hash: number, seq: number): void {
    if (seq <= 0 || seq > 0xffffffff) throw new RangeError(`event seq ${seq} out of range for the id index`);
    if ((this.used + 1) * 4 > this.hashes.length * 3) this.grow();
    this.insert(hash, seq);
  }

  private insert(hash: number, seq: number): void {
    const cap = this.hashes.length;
    let i = hash % cap;
    // seq 0 marks an empty slot (SQLite rowids start at 1)
    while (this.seqs[i] !== 0) i = i + 1 === cap ? 0 : i + 1;
    this.hashes[i] = hash;
    this.seqs[i] = seq;
    this.used++;
  }

  private grow(): void {
    const oldHashes = this.hashes;
    const oldSeqs = this.seqs;
    this.hashes = new Uint32Array(oldHashes.length * 2);
    this.seqs = new Uint32Array(oldSeqs.length * 2);
    this.used = 0;
    for (let i = 0; i < oldSeqs.length; i++) if (oldSeqs[i] !== 0) this.insert(oldHashes[i], oldSeqs[i]);
  }
}

/** 32-bit MurmurHash3 of (account, event id), over UTF-16 code units. */
export function idHash(accountId: string, eventId: string): number {
  let h = 0x9747b28c;
  for (let i = 0; i < accountId.length; i++) h = mix(h, accountId.charCodeAt(i));
  h = mix(h, 0x10000); // separator outside the code-unit range
  for (let i = 0; i < eventId.length; i++) h = mix(h, eventId.charCodeAt(i));
  h ^= accountId.length + eventId.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** One MurmurHash3 round (a module function: a closure per call cost more than the hashing). */
function mix(h: number, k0: number): number {
  let k = Math.imul(k0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
