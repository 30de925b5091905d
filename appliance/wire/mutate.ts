/**
 * Structure-aware mutations of GENEVE datagrams, for fuzzing the parser and the daemon: each mutation
 * attacks one length field, flag or boundary the parsers rely on, on top of plain byte flips and
 * truncation. Deterministic for a given random source, so a failure can be replayed from its seed.
 */

import { EtherType, GENEVE_LAYOUT, GWLB_INNER_OFFSET } from "./geneve.ts";
import { IPV4_LAYOUT, UDP_LAYOUT } from "./ip.ts";
import { TS_LAYOUT, TS_PACKET_SIZE } from "./mpegts.ts";
import { RTP_LAYOUT } from "./rtp.ts";

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

// Where the fields are in a datagram built with the three GWLB options around IPv4/UDP/RTP/MPEG-TS.
const GENEVE = GENEVE_LAYOUT;
const IPV4 = GWLB_INNER_OFFSET;
const UDP = IPV4 + IPV4_LAYOUT.headerLength;
const RTP = UDP + UDP_LAYOUT.headerLength;
const TS = RTP + RTP_LAYOUT.headerLength;
/** Options a GENEVE header can hold (6-bit length in 4-byte words): a byte flip may land on any of them. */
const OPTION_SLOTS = 8;
/** TS packets in the seed's RTP payload, and the bytes of each one up to the adaptation field flags. */
const TS_PACKETS = 7;
const TS_HEAD = TS_LAYOUT.adaptationFieldFlags + 1;

type Mutation = (buf: Buffer, random: Random) => Buffer;

/** Sets the byte at `at` to a random value below `max`, if the datagram reaches that far. */
function setByte(b: Buffer, at: number, r: Random, max = 256): Buffer {
  if (at < b.length) b[at] = int(r, max);
  return b;
}

/** Sets the 16-bit field at `at` to a random value, if the datagram holds all of it. */
function setWord(b: Buffer, at: number, r: Random): Buffer {
  if (at + 1 < b.length) b.writeUInt16BE(int(r, 65536), at);
  return b;
}

/** Sets one of the two adjacent bytes at `at`, if the datagram holds both. */
function setEitherByte(b: Buffer, at: number, r: Random): Buffer {
  if (at + 1 < b.length) b[at + int(r, 2)] = int(r, 256);
  return b;
}

const VERSION_OPTLEN = GENEVE.versionOptionsLength;

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
    if (b.length > VERSION_OPTLEN) b[VERSION_OPTLEN] = (b[VERSION_OPTLEN] & 0x3f) | (int(r, 4) << 6);
    return b;
  },
  (b, r) => {
    if (b.length > VERSION_OPTLEN) b[VERSION_OPTLEN] = (b[VERSION_OPTLEN] & 0xc0) | int(r, 64);
    return b;
  },
  (b, r) =>
    setByte(
      b,
      GENEVE.headerLength + GENEVE.optionHeaderLength * int(r, OPTION_SLOTS) + GENEVE.optionLength,
      r,
    ),
  (b, r) => {
    if (b.length > GENEVE.protocolType + 1) {
      const type = [EtherType.ipv4, EtherType.ipv6, 0x6558, int(r, 65536)][int(r, 4)];
      b.writeUInt16BE(type, GENEVE.protocolType);
    }
    return b;
  },
  // inner IPv4: version/IHL, total length, flags/fragment, TTL or protocol (adjacent)
  (b, r) => setByte(b, IPV4 + IPV4_LAYOUT.versionIhl, r),
  (b, r) => setWord(b, IPV4 + IPV4_LAYOUT.totalLength, r),
  (b, r) => setWord(b, IPV4 + IPV4_LAYOUT.flagsFragment, r),
  (b, r) => setEitherByte(b, IPV4 + IPV4_LAYOUT.ttl, r),
  // UDP length
  (b, r) => setWord(b, UDP + UDP_LAYOUT.length, r),
  // RTP: first byte (version, padding, extension, CSRC count) or payload type (adjacent)
  (b, r) => setEitherByte(b, RTP + RTP_LAYOUT.flags, r),
  // MPEG-TS: sync bytes, PIDs, adaptation field lengths, PSI pointer fields
  (b, r) => setByte(b, TS + TS_PACKET_SIZE * int(r, TS_PACKETS) + int(r, TS_HEAD), r),
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
