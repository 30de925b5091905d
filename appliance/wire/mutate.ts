/**
 * Structure-aware mutations of GENEVE datagrams, for fuzzing the parser and the daemon: each mutation
 * attacks one length field, flag or boundary the parsers rely on, on top of plain byte flips and
 * truncation. Deterministic for a given random source, so a failure can be replayed from its seed.
 */

export type Random = () => number;

/** A small, fast, seedable PRNG (mulberry32). */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (random: Random, max: number) => Math.floor(random() * max);

/** Byte offsets in a datagram built with the three GWLB options (40-byte GENEVE header). */
const INNER = 40;

type Mutation = (buf: Buffer, random: Random) => Buffer;

const MUTATIONS: Mutation[] = [
  // plain bytes
  (b, r) => {
    for (let i = 0, n = 1 + int(r, 8); i < n && b.length > 0; i++) b[int(r, b.length)] = int(r, 256);
    return b;
  },
  (b, r) => {
    if (b.length > 0) b[int(r, b.length)] ^= 1 << int(r, 8);
    return b;
  },
  (b, r) => b.subarray(0, int(r, b.length + 1)),
  (b, r) => Buffer.concat([b, Buffer.alloc(int(r, 9000), int(r, 256))]),
  // GENEVE: version, option length, option data lengths, protocol type
  (b, r) => {
    if (b.length > 0) b[0] = (b[0] & 0x3f) | (int(r, 4) << 6);
    return b;
  },
  (b, r) => {
    if (b.length > 0) b[0] = (b[0] & 0xc0) | int(r, 64);
    return b;
  },
  (b, r) => {
    const option = 8 + 4 * int(r, 8);
    if (option + 3 < b.length) b[option + 3] = int(r, 256);
    return b;
  },
  (b, r) => {
    if (b.length >= 4) b.writeUInt16BE([0x0800, 0x86dd, 0x6558, int(r, 65536)][int(r, 4)], 2);
    return b;
  },
  // inner IPv4: version/IHL, total length, flags/fragment, TTL, protocol
  (b, r) => {
    if (b.length > INNER) b[INNER] = int(r, 256);
    return b;
  },
  (b, r) => {
    if (b.length > INNER + 3) b.writeUInt16BE(int(r, 65536), INNER + 2);
    return b;
  },
  (b, r) => {
    if (b.length > INNER + 7) b.writeUInt16BE(int(r, 65536), INNER + 6);
    return b;
  },
  (b, r) => {
    if (b.length > INNER + 9) b[INNER + 8 + int(r, 2)] = int(r, 256);
    return b;
  },
  // UDP length
  (b, r) => {
    if (b.length > INNER + 25) b.writeUInt16BE(int(r, 65536), INNER + 24);
    return b;
  },
  // RTP: first byte (version, padding, extension, CSRC count) and payload type
  (b, r) => {
    if (b.length > INNER + 29) b[INNER + 28 + int(r, 2)] = int(r, 256);
    return b;
  },
  // MPEG-TS: sync bytes, PIDs, adaptation field lengths, PSI pointer fields
  (b, r) => {
    const ts = INNER + 40 + 188 * int(r, 7) + int(r, 6);
    if (ts < b.length) b[ts] = int(r, 256);
    return b;
  },
];

/** One mutated copy of `seed`: one to three mutations stacked. */
export function mutate(seed: Buffer, random: Random): Buffer {
  let out: Buffer = Buffer.from(seed);
  for (let i = 0, n = 1 + int(random, 3); i < n; i++) {
    out = MUTATIONS[int(random, MUTATIONS.length)](out, random);
    if (out.length === 0) break;
  }
  return out;
}
