/**
 * The inner packet GWLB carries: IPv4 or IPv6 with UDP, TCP or ICMP. `parseInner` is the per-packet
 * path (in place, no allocation, never reads past the datagram); the builders and `decodeIpUdp`
 * allocate and serve the lab, tools and tests.
 */
import { formatAddress, parseAddress } from "../../contracts/cidr.ts";
import { WireError } from "./errors.ts";
import { INNER_STATUS_REASON, InnerStatus } from "./status.ts";

export { InnerStatus };

export const IpProtocol = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

/*
 * RFC 791 §3.1, the IPv4 header:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Version|  IHL  |Type of Service|          Total Length         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Identification        |Flags|      Fragment Offset    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Time to Live |    Protocol   |         Header Checksum       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                       Source Address                          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Destination Address                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Options                    |    Padding    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
const IP_VERSION = 0; // Version in the top 4 bits, IPv6 alike; IPv4: IHL (4-byte words) in the low 4
const V4_TOS = 1;
const V4_TOTAL_LENGTH = 2;
const V4_IDENTIFICATION = 4;
const V4_FLAGS_FRAGMENT = 6;
const V4_DONT_FRAGMENT = 0x4000;
const V4_MORE_FRAGMENTS = 0x2000;
const V4_FRAGMENT_OFFSET_MASK = 0x1fff;
const V4_TTL = 8;
const V4_PROTOCOL = 9;
const V4_CHECKSUM = 10;
const V4_SOURCE = 12;
const V4_DESTINATION = 16;
const V4_HEADER_LENGTH = 20; // without options
const V4_FIRST_BYTE = 0x45; // version 4, IHL 5: no options

/*
 * RFC 8200 §3, the IPv6 header:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Version| Traffic Class |           Flow Label                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Payload Length        |  Next Header  |   Hop Limit   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                  Source Address (16 bytes)                    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                Destination Address (16 bytes)                 |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * and the extension headers it walks: hop-by-hop, routing and destination options (§4.3, §4.4, §4.6),
 * then the fragment header (§4.5):
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Next Header  |  Hdr Ext Len  |       Options (…)             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                         Identification                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
const V6_PAYLOAD_LENGTH = 4;
const V6_NEXT_HEADER = 6;
const V6_HOP_LIMIT = 7;
const V6_SOURCE = 8;
const V6_DESTINATION = 24;
const V6_HEADER_LENGTH = 40;
const V6_FIRST_WORD = 0x60000000; // version 6, traffic class and flow label 0
const EXT_NEXT_HEADER = 0;
const EXT_LENGTH = 1; // in 8-byte units, not counting the first 8
const EXT_UNIT = 8;
const FRAGMENT_OFFSET = 2; // top 13 bits: the offset; the low bit: more fragments
const FRAGMENT_HEADER_LENGTH = 8;

const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_DESTINATION = 60;
const MAX_IPV6_EXTENSIONS = 8;

/*
 * RFC 768, the UDP header, and the start of TCP's (RFC 9293 §3.1), which has the ports in the same place:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |          Source Port          |       Destination Port        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |            Length             |           Checksum            |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |          Source Port          |       Destination Port        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                        Sequence Number                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Acknowledgment Number                      |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Data |       |C|E|U|A|P|R|S|F|                               |
 *   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *   |       |       |R|E|G|K|H|T|N|N|                               |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
const SOURCE_PORT = 0;
const DESTINATION_PORT = 2;
const UDP_LENGTH = 4;
const UDP_CHECKSUM = 6;
const UDP_HEADER_LENGTH = 8;
const TCP_DATA_OFFSET = 12; // top 4 bits, in 4-byte words
const TCP_HEADER_LENGTH = 20; // without options

/** IPv4 and UDP offsets by name, for code that writes packets in place (the fuzzer, traffic generators). */
export const IPV4_LAYOUT = {
  versionIhl: IP_VERSION,
  totalLength: V4_TOTAL_LENGTH,
  identification: V4_IDENTIFICATION,
  flagsFragment: V4_FLAGS_FRAGMENT,
  ttl: V4_TTL,
  protocol: V4_PROTOCOL,
  checksum: V4_CHECKSUM,
  source: V4_SOURCE,
  destination: V4_DESTINATION,
  headerLength: V4_HEADER_LENGTH,
} as const;

export const UDP_LAYOUT = {
  sourcePort: SOURCE_PORT,
  destinationPort: DESTINATION_PORT,
  length: UDP_LENGTH,
  checksum: UDP_CHECKSUM,
  headerLength: UDP_HEADER_LENGTH,
} as const;

/** Facts of one inner packet; reused from packet to packet. Addresses are four words, IPv4 in word 3. */
export class InnerPacket {
  family: 4 | 6 = 4;
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  protocol = 0;
  ttl = 0;
  /** IP packet length (header included), equal to the GENEVE inner length when well formed. */
  length = 0;
  hasOptions = false;
  isFragment = false;
  /** True for a fragment other than the first: it carries no transport header. */
  isLaterFragment = false;
  l4Offset = 0;
  l4Length = 0;
  srcPort = 0;
  dstPort = 0;
  /** Transport payload (UDP payload, TCP segment data), absolute offsets in the datagram. */
  payloadOffset = 0;
  payloadLength = 0;
}

function readPorts(buf: Buffer, out: InnerPacket): number {
  const l4 = out.l4Offset;
  const len = out.l4Length;
  out.srcPort = 0;
  out.dstPort = 0;
  out.payloadOffset = l4 + len;
  out.payloadLength = 0;
  if (out.isLaterFragment) return InnerStatus.ok;
  if (out.protocol === IpProtocol.udp) {
    if (len < UDP_HEADER_LENGTH) return InnerStatus.udpMalformed;
    out.srcPort = (buf[l4 + SOURCE_PORT] << 8) | buf[l4 + SOURCE_PORT + 1];
    out.dstPort = (buf[l4 + DESTINATION_PORT] << 8) | buf[l4 + DESTINATION_PORT + 1];
    const udpLength = (buf[l4 + UDP_LENGTH] << 8) | buf[l4 + UDP_LENGTH + 1];
    // A first fragment carries the whole datagram's UDP length; otherwise it must match exactly.
    if (out.isFragment ? udpLength < len : udpLength !== len) return InnerStatus.udpMalformed;
    out.payloadOffset = l4 + UDP_HEADER_LENGTH;
    out.payloadLength = len - UDP_HEADER_LENGTH;
  } else if (out.protocol === IpProtocol.tcp) {
    if (len < TCP_HEADER_LENGTH) return out.isFragment ? InnerStatus.ok : InnerStatus.ipMalformed;
    out.srcPort = (buf[l4 + SOURCE_PORT] << 8) | buf[l4 + SOURCE_PORT + 1];
    out.dstPort = (buf[l4 + DESTINATION_PORT] << 8) | buf[l4 + DESTINATION_PORT + 1];
    const dataOffset = (buf[l4 + TCP_DATA_OFFSET] >>> 4) << 2;
    if (dataOffset < TCP_HEADER_LENGTH || dataOffset > len) return InnerStatus.ipMalformed;
    out.payloadOffset = l4 + dataOffset;
    out.payloadLength = len - dataOffset;
  }
  return InnerStatus.ok;
}

function parseIpv4(buf: Buffer, offset: number, length: number, out: InnerPacket): number {
  if (length < V4_HEADER_LENGTH) return InnerStatus.ipMalformed;
  const b0 = buf[offset + IP_VERSION];
  if (b0 >>> 4 !== 4) return InnerStatus.ipMalformed;
  const headerLength = (b0 & 0x0f) << 2;
  if (headerLength < V4_HEADER_LENGTH || headerLength > length) return InnerStatus.ipMalformed;
  const totalLength = (buf[offset + V4_TOTAL_LENGTH] << 8) | buf[offset + V4_TOTAL_LENGTH + 1];
  if (totalLength !== length) return InnerStatus.ipMalformed;
  let sum = 0;
  for (let i = offset; i < offset + headerLength; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  if (sum !== 0xffff) return InnerStatus.ipChecksum;
  const flagsFragment = (buf[offset + V4_FLAGS_FRAGMENT] << 8) | buf[offset + V4_FLAGS_FRAGMENT + 1];
  const fragmentOffset = flagsFragment & V4_FRAGMENT_OFFSET_MASK;
  out.family = 4;
  out.length = totalLength;
  out.hasOptions = headerLength > V4_HEADER_LENGTH;
  out.isFragment = (flagsFragment & V4_MORE_FRAGMENTS) !== 0 || fragmentOffset !== 0;
  out.isLaterFragment = fragmentOffset !== 0;
  out.ttl = buf[offset + V4_TTL];
  out.protocol = buf[offset + V4_PROTOCOL];
  out.src[0] = 0;
  out.src[1] = 0;
  out.src[2] = 0;
  out.src[3] = buf.readUInt32BE(offset + V4_SOURCE);
  out.dst[0] = 0;
  out.dst[1] = 0;
  out.dst[2] = 0;
  out.dst[3] = buf.readUInt32BE(offset + V4_DESTINATION);
  out.l4Offset = offset + headerLength;
  out.l4Length = totalLength - headerLength;
  return readPorts(buf, out);
}

function parseIpv6(buf: Buffer, offset: number, length: number, out: InnerPacket): number {
  if (length < V6_HEADER_LENGTH) return InnerStatus.ipMalformed;
  if (buf[offset + IP_VERSION] >>> 4 !== 6) return InnerStatus.ipMalformed;
  const payloadLength = (buf[offset + V6_PAYLOAD_LENGTH] << 8) | buf[offset + V6_PAYLOAD_LENGTH + 1];
  // jumbograms are not carried by GWLB
  if (payloadLength + V6_HEADER_LENGTH !== length) return InnerStatus.ipMalformed;
  out.family = 6;
  out.length = length;
  out.ttl = buf[offset + V6_HOP_LIMIT];
  for (let i = 0; i < 4; i++) {
    out.src[i] = buf.readUInt32BE(offset + V6_SOURCE + 4 * i);
    out.dst[i] = buf.readUInt32BE(offset + V6_DESTINATION + 4 * i);
  }
  out.hasOptions = false;
  out.isFragment = false;
  out.isLaterFragment = false;
  let next = buf[offset + V6_NEXT_HEADER];
  let cursor = offset + V6_HEADER_LENGTH;
  const end = offset + length;
  for (let n = 0; n < MAX_IPV6_EXTENSIONS; n++) {
    if (next === IPV6_HOP_BY_HOP || next === IPV6_ROUTING || next === IPV6_DESTINATION) {
      if (cursor + EXT_UNIT > end) return InnerStatus.ipMalformed;
      const extLength = (buf[cursor + EXT_LENGTH] + 1) * EXT_UNIT;
      if (cursor + extLength > end) return InnerStatus.ipMalformed;
      out.hasOptions = true;
      next = buf[cursor + EXT_NEXT_HEADER];
      cursor += extLength;
    } else if (next === IPV6_FRAGMENT) {
      if (cursor + FRAGMENT_HEADER_LENGTH > end) return InnerStatus.ipMalformed;
      const fragment = (buf[cursor + FRAGMENT_OFFSET] << 8) | buf[cursor + FRAGMENT_OFFSET + 1];
      out.isFragment = true;
      out.isLaterFragment = fragment >>> 3 !== 0;
      next = buf[cursor + EXT_NEXT_HEADER];
      cursor += FRAGMENT_HEADER_LENGTH;
    } else {
      break;
    }
  }
  if (
    next === IPV6_HOP_BY_HOP ||
    next === IPV6_ROUTING ||
    next === IPV6_DESTINATION ||
    next === IPV6_FRAGMENT
  ) {
    return InnerStatus.ipMalformed; // a chain longer than any real stack sends
  }
  out.protocol = next;
  out.l4Offset = cursor;
  out.l4Length = end - cursor;
  return readPorts(buf, out);
}

/** Parses the inner packet at `buf[offset .. offset+length)`, which GENEVE says is IPv4 or IPv6. */
export function parseInner(
  buf: Buffer,
  offset: number,
  length: number,
  ipv6: boolean,
  out: InnerPacket,
): number {
  return ipv6 ? parseIpv6(buf, offset, length, out) : parseIpv4(buf, offset, length, out);
}

// ---------------------------------------------------------------------------------------------
// Allocating builders and decoder (lab, tools, tests).

function onesComplementSum(buf: Buffer, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export interface UdpPacketInput {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  ttl?: number;
  id?: number;
}

function addressWords(text: string, family: 4 | 6): [number, number, number, number] {
  const address = parseAddress(text);
  if (!address || address.family !== family) {
    throw new WireError("ip_malformed", `"${text}" is not an IPv${family} address`);
  }
  return address.words;
}

function writeUdp(out: Buffer, offset: number, input: UdpPacketInput, pseudoSum: number): void {
  const udpLength = UDP_HEADER_LENGTH + input.payload.length;
  out.writeUInt16BE(input.srcPort, offset + SOURCE_PORT);
  out.writeUInt16BE(input.dstPort, offset + DESTINATION_PORT);
  out.writeUInt16BE(udpLength, offset + UDP_LENGTH);
  out.writeUInt16BE(0, offset + UDP_CHECKSUM);
  input.payload.copy(out, offset + UDP_HEADER_LENGTH);
  const sum = onesComplementSum(out, offset, offset + udpLength, pseudoSum + IpProtocol.udp + udpLength);
  const checksum = ~sum & 0xffff;
  out.writeUInt16BE(checksum === 0 ? 0xffff : checksum, offset + UDP_CHECKSUM);
}

export function buildIpv4Udp(input: UdpPacketInput): Buffer {
  const src = addressWords(input.src, 4)[3];
  const dst = addressWords(input.dst, 4)[3];
  const total = V4_HEADER_LENGTH + UDP_HEADER_LENGTH + input.payload.length;
  if (total > 65535) throw new WireError("ip_malformed", `IPv4 packet of ${total} bytes is too long`);
  const out = Buffer.allocUnsafe(total);
  out[IP_VERSION] = V4_FIRST_BYTE;
  out[V4_TOS] = 0;
  out.writeUInt16BE(total, V4_TOTAL_LENGTH);
  out.writeUInt16BE((input.id ?? 0) & 0xffff, V4_IDENTIFICATION);
  out.writeUInt16BE(V4_DONT_FRAGMENT, V4_FLAGS_FRAGMENT); // GWLB paths never fragment
  out[V4_TTL] = input.ttl ?? 64;
  out[V4_PROTOCOL] = IpProtocol.udp;
  out.writeUInt16BE(0, V4_CHECKSUM);
  out.writeUInt32BE(src, V4_SOURCE);
  out.writeUInt32BE(dst, V4_DESTINATION);
  out.writeUInt16BE(~onesComplementSum(out, 0, V4_HEADER_LENGTH) & 0xffff, V4_CHECKSUM);
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
  writeUdp(out, V4_HEADER_LENGTH, input, pseudo);
  return out;
}

export function buildIpv6Udp(input: UdpPacketInput): Buffer {
  const src = addressWords(input.src, 6);
  const dst = addressWords(input.dst, 6);
  const payloadLength = UDP_HEADER_LENGTH + input.payload.length;
  const out = Buffer.allocUnsafe(V6_HEADER_LENGTH + payloadLength);
  out.writeUInt32BE(V6_FIRST_WORD, IP_VERSION);
  out.writeUInt16BE(payloadLength, V6_PAYLOAD_LENGTH);
  out[V6_NEXT_HEADER] = IpProtocol.udp;
  out[V6_HOP_LIMIT] = input.ttl ?? 64;
  let pseudo = 0;
  for (let i = 0; i < 4; i++) {
    out.writeUInt32BE(src[i], V6_SOURCE + 4 * i);
    out.writeUInt32BE(dst[i], V6_DESTINATION + 4 * i);
    pseudo += (src[i] >>> 16) + (src[i] & 0xffff) + (dst[i] >>> 16) + (dst[i] & 0xffff);
  }
  writeUdp(out, V6_HEADER_LENGTH, input, pseudo);
  return out;
}

export interface DecodedUdp {
  family: 4 | 6;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  ttl: number;
  payload: Buffer;
}

/** Allocating decoder for an inner IPv4/IPv6 UDP packet; throws WireError naming the reason. */
export function decodeIpUdp(buf: Buffer): DecodedUdp {
  const view = new InnerPacket();
  const version = buf.length > 0 ? buf[IP_VERSION] >>> 4 : 0;
  const status = parseInner(buf, 0, buf.length, version === 6, view);
  if (status !== InnerStatus.ok) {
    const reason = INNER_STATUS_REASON[status as keyof typeof INNER_STATUS_REASON];
    throw new WireError(reason, `inner packet rejected: ${reason}`);
  }
  if (view.protocol !== IpProtocol.udp)
    throw new WireError(
      INNER_STATUS_REASON[InnerStatus.udpMalformed],
      `protocol ${view.protocol} is not UDP`,
    );
  return {
    family: view.family,
    src: formatAddress(view.family, view.src),
    dst: formatAddress(view.family, view.dst),
    srcPort: view.srcPort,
    dstPort: view.dstPort,
    ttl: view.ttl,
    payload: Buffer.from(buf.subarray(view.payloadOffset, view.payloadOffset + view.payloadLength)),
  };
}
