/**
 * The index of one receive loop's flows: inner 5-tuple → flow id, in an open-addressing hash table
 * (linear probing, backward-shift deletion), with the last time each flow was seen so idle flows can be
 * evicted. Flow ids are dense (0 … capacity-1) and reused, so each checker keeps its own per-flow state
 * as columns (typed arrays) indexed by flow id and sets a flow's row when the flow opens; nothing here
 * knows what a checker keeps. Pages of the preallocated arrays are only made resident when a flow first
 * touches them, so memory follows the number of live flows.
 *
 * A flow key is the inner 5-tuple: source and destination as four words each (IPv4 in word 3), the two
 * ports, the protocol and the address family.
 */
import type { InnerPacket } from "../wire/ip.ts";

/** Words of one key: 0-3 source, 4-7 destination, 8 source port << 16 | destination port, 9 family << 8 | protocol. */
export const KEY_WORDS = 10;
const EMPTY = -1;

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return (h << 13) | (h >>> 19);
}

export function hashKey(packet: InnerPacket): number {
  let h = packet.family === 4 ? 0x1234567 : 0x7654321;
  const src = packet.src;
  const dst = packet.dst;
  h = mix(h, src[3]);
  h = mix(h, dst[3]);
  if (packet.family === 6) {
    h = mix(h, src[0]);
    h = mix(h, src[1]);
    h = mix(h, src[2]);
    h = mix(h, dst[0]);
    h = mix(h, dst[1]);
    h = mix(h, dst[2]);
  }
  h = mix(h, (packet.srcPort << 16) | packet.dstPort);
  h = mix(h, packet.protocol);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

export class FlowTable {
  readonly capacity: number;
  private readonly mask: number;
  /** Slot → flow id, or EMPTY. */
  private readonly slots: Int32Array;
  private readonly hashes: Uint32Array;
  private readonly keys: Uint32Array;
  private readonly freeIds: Int32Array;
  private freeCount: number;
  size = 0;
  readonly inUse: Uint8Array;
  /** When each flow last had a packet (the caller's clock, ms): what idle eviction reads. */
  readonly lastSeen: Float64Array;

  constructor(maxFlowsWanted: number) {
    const maxFlows = Math.max(1, maxFlowsWanted | 0);
    let capacity = 16;
    while (capacity < maxFlows * 1.5) capacity *= 2;
    this.capacity = maxFlows;
    this.mask = capacity - 1;
    this.slots = new Int32Array(capacity).fill(EMPTY);
    this.hashes = new Uint32Array(maxFlows);
    this.keys = new Uint32Array(maxFlows * KEY_WORDS);
    this.freeIds = new Int32Array(maxFlows);
    for (let i = 0; i < maxFlows; i++) this.freeIds[i] = maxFlows - 1 - i;
    this.freeCount = maxFlows;
    this.inUse = new Uint8Array(maxFlows);
    this.lastSeen = new Float64Array(maxFlows);
  }

  private keyEquals(id: number, packet: InnerPacket): boolean {
    const k = id * KEY_WORDS;
    const keys = this.keys;
    const src = packet.src;
    const dst = packet.dst;
    return (
      keys[k + 3] === src[3] &&
      keys[k + 7] === dst[3] &&
      keys[k + 8] === ((packet.srcPort << 16) | packet.dstPort) >>> 0 &&
      keys[k + 9] === ((packet.family << 8) | packet.protocol) &&
      keys[k] === src[0] &&
      keys[k + 1] === src[1] &&
      keys[k + 2] === src[2] &&
      keys[k + 4] === dst[0] &&
      keys[k + 5] === dst[1] &&
      keys[k + 6] === dst[2]
    );
  }

  /** The flow id of this packet's 5-tuple, or -1. */
  find(packet: InnerPacket, hash: number): number {
    const slots = this.slots;
    const mask = this.mask;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const id = slots[slot];
      if (id === EMPTY) return -1;
      if (this.hashes[id] === hash && this.keyEquals(id, packet)) return id;
    }
  }

  /**
   * Adds the packet's 5-tuple (which must not be present), seen at `now`; returns the new flow id, or -1
   * when the table is full.
   */
  insert(packet: InnerPacket, hash: number, now: number): number {
    if (this.freeCount === 0) return -1;
    const id = this.freeIds[--this.freeCount];
    const k = id * KEY_WORDS;
    const keys = this.keys;
    for (let i = 0; i < 4; i++) {
      keys[k + i] = packet.src[i];
      keys[k + 4 + i] = packet.dst[i];
    }
    keys[k + 8] = ((packet.srcPort << 16) | packet.dstPort) >>> 0;
    keys[k + 9] = (packet.family << 8) | packet.protocol;
    this.hashes[id] = hash;
    const slots = this.slots;
    const mask = this.mask;
    let slot = hash & mask;
    while (slots[slot] !== EMPTY) slot = (slot + 1) & mask;
    slots[slot] = id;
    this.inUse[id] = 1;
    this.lastSeen[id] = now;
    this.size++;
    return id;
  }

  /** Records a packet of flow `id` at `now`; returns the time since the previous one. */
  touch(id: number, now: number): number {
    const gap = now - this.lastSeen[id];
    this.lastSeen[id] = now;
    return gap;
  }

  remove(id: number): void {
    if (!this.inUse[id]) return;
    const slots = this.slots;
    const mask = this.mask;
    let slot = this.hashes[id] & mask;
    while (slots[slot] !== id) slot = (slot + 1) & mask;
    // Backward-shift: pull later members of the probe run into the hole so lookups never stop early.
    let hole = slot;
    for (let next = (hole + 1) & mask; slots[next] !== EMPTY; next = (next + 1) & mask) {
      const home = this.hashes[slots[next]] & mask;
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        slots[hole] = slots[next];
        hole = next;
      }
    }
    slots[hole] = EMPTY;
    this.inUse[id] = 0;
    this.freeIds[this.freeCount++] = id;
    this.size--;
  }

  /**
   * Removes flows idle since before `idleBefore`, scanning at most `budget` ids from `cursor`. Returns
   * the next cursor; `evicted` gets the count. Incremental so a big table never stalls the loop.
   */
  evictIdle(idleBefore: number, cursor: number, budget: number, evicted: { count: number }): number {
    const total = this.capacity;
    let id = cursor;
    for (let n = 0; n < budget && n < total; n++) {
      if (id >= total) id = 0;
      if (this.inUse[id] && this.lastSeen[id] < idleBefore) {
        this.remove(id);
        evicted.count++;
      }
      id++;
    }
    return id >= total ? 0 : id;
  }
}
