/**
 * The inner packet GWLB carries: IPv4 or IPv6 with UDP, TCP or ICMP. `parseInner` is the per-packet
 * path (in place, no allocation, never reads past the datagram); the builders and `decodeIpUdp`
 * allocate and serve the lab, tools and tests.
 */
import { formatAddress, parseAddress } from "../../contracts/cidr.ts";
import { WireError } from "./errors.ts";
import { INNER_STATUS_REASON, InnerStatus } from "./status.ts";

export const IpProtocol = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

export { InnerStatus };

const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_DESTINATION = 60;
const MAX_IPV6_EXTENSIONS = 8;

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
    if (len < 8) return InnerStatus.udpMalformed;
    out.srcPort = (buf[l4] << 8) | buf[l4 + 1];
    out.dstPort = (buf[l4 + 2] << 8) | buf[l4 + 3];
    const udpLength = (buf[l4 + 4] << 8) | buf[l4 + 5];
    // A first fragment carries the whole datagram's UDP length; otherwise it must match exactly.
    if (out.isFragment ? udpLength < len : udpLength !== len) return InnerStatus.udpMalformed;
    out.payloadOffset = l4 + 8;
    out.payloadLength = len - 8;
  } else if (out.protocol === IpProtocol.tcp) {
    if (len < 20) return out.isFragment ? InnerStatus.ok : InnerStatus.ipMalformed;
    out.srcPort = (buf[l4] << 8) | buf[l4 + 1];
    out.dstPort = (buf[l4 + 2] << 8) | buf[l4 + 3];
    const dataOffset = (buf[l4 + 12] >>> 4) << 2;
    if (dataOffset < 20 || dataOffset > len) return InnerStatus.ipMalformed;
    out.payloadOffset = l4 + dataOffset;
    out.payloadLength = len - dataOffset;
  }
  return InnerStatus.ok;
}

function parseIpv4(buf: Buffer, offset: number, length: number, out: InnerPacket): number {
  if (length < 20) return InnerStatus.ipMalformed;
  const b0 = buf[offset];
  if (b0 >>> 4 !== 4) return InnerStatus.ipMalformed;
  const headerLength = (b0 & 0x0f) << 2;
  if (headerLength < 20 || headerLength > length) return InnerStatus.ipMalformed;
  const totalLength = (buf[offset + 2] << 8) | buf[offset + 3];
  if (totalLength !== length) return InnerStatus.ipMalformed;
  let sum = 0;
  for (let i = offset; i < offset + headerLength; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  if (sum !== 0xffff) return InnerStatus.ipChecksum;
  const flagsFragment = (buf[offset + 6] << 8) | buf[offset + 7];
  const fragmentOffset = flagsFragment & 0x1fff;
  out.family = 4;
  out.length = totalLength;
  out.hasOptions = headerLength > 20;
  out.isFragment = (flagsFragment & 0x2000) !== 0 || fragmentOffset !== 0;
  out.isLaterFragment = fragmentOffset !== 0;
  out.ttl = buf[offset + 8];
  out.protocol = buf[offset + 9];
  out.src[0] = 0;
  out.src[1] = 0;
  out.src[2] = 0;
  out.src[3] = buf.readUInt32BE(offset + 12);
  out.dst[0] = 0;
  out.dst[1] = 0;
  out.dst[2] = 0;
  out.dst[3] = buf.readUInt32BE(offset + 16);
  out.l4Offset = offset + headerLength;
  out.l4Length = totalLength - headerLength;
  return readPorts(buf, out);
}

function parseIpv6(buf: Buffer, offset: number, length: number, out: InnerPacket): number {
  if (length < 40) return InnerStatus.ipMalformed;
  if (buf[offset] >>> 4 !== 6) return InnerStatus.ipMalformed;
  const payloadLength = (buf[offset + 4] << 8) | buf[offset + 5];
  if (payloadLength + 40 !== length) return InnerStatus.ipMalformed; // jumbograms are not carried by GWLB
  out.family = 6;
  out.length = length;
  out.ttl = buf[offset + 7];
  for (let i = 0; i < 4; i++) {
    out.src[i] = buf.readUInt32BE(offset + 8 + 4 * i);
    out.dst[i] = buf.readUInt32BE(offset + 24 + 4 * i);
  }
  out.hasOptions = false;
  out.isFragment = false;
  out.isLaterFragment = false;
  let next = buf[offset + 6];
  let cursor = offset + 40;
  const end = offset + length;
  for (let n = 0; n < MAX_IPV6_EXTENSIONS; n++) {
    if (next === IPV6_HOP_BY_HOP || next === IPV6_ROUTING || next === IPV6_DESTINATION) {
      if (cursor + 8 > end) return InnerStatus.ipMalformed;
      const extLength = (buf[cursor + 1] + 1) << 3;
      if (cursor + extLength > end) return InnerStatus.ipMalformed;
      out.hasOptions = true;
      next = buf[cursor];
      cursor += extLength;
    } else if (next === IPV6_FRAGMENT) {
      if (cursor + 8 > end) return InnerStatus.ipMalformed;
      const fragment = (buf[cursor + 2] << 8) | buf[cursor + 3];
      out.isFragment = true;
      out.isLaterFragment = fragment >>> 3 !== 0;
      next = buf[cursor];
      cursor += 8;
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
  const udpLength = 8 + input.payload.length;
  out.writeUInt16BE(input.srcPort, offset);
  out.writeUInt16BE(input.dstPort, offset + 2);
  out.writeUInt16BE(udpLength, offset + 4);
  out.writeUInt16BE(0, offset + 6);
  input.payload.copy(out, offset + 8);
  const sum = onesComplementSum(out, offset, offset + udpLength, pseudoSum + IpProtocol.udp + udpLength);
  const checksum = ~sum & 0xffff;
  out.writeUInt16BE(checksum === 0 ? 0xffff : checksum, offset + 6);
}

export function buildIpv4Udp(input: UdpPacketInput): Buffer {
  const src = addressWords(input.src, 4)[3];
  const dst = addressWords(input.dst, 4)[3];
  const total = 20 + 8 + input.payload.length;
  if (total > 65535) throw new WireError("ip_malformed", `IPv4 packet of ${total} bytes is too long`);
  const out = Buffer.allocUnsafe(total);
  out[0] = 0x45;
  out[1] = 0;
  out.writeUInt16BE(total, 2);
  out.writeUInt16BE((input.id ?? 0) & 0xffff, 4);
  out.writeUInt16BE(0x4000, 6); // don't fragment: GWLB paths never fragment
  out[8] = input.ttl ?? 64;
  out[9] = IpProtocol.udp;
  out.writeUInt16BE(0, 10);
  out.writeUInt32BE(src, 12);
  out.writeUInt32BE(dst, 16);
  out.writeUInt16BE(~onesComplementSum(out, 0, 20) & 0xffff, 10);
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
  writeUdp(out, 20, input, pseudo);
  return out;
}

export function buildIpv6Udp(input: UdpPacketInput): Buffer {
  const src = addressWords(input.src, 6);
  const dst = addressWords(input.dst, 6);
  const payloadLength = 8 + input.payload.length;
  const out = Buffer.allocUnsafe(40 + payloadLength);
  out.writeUInt32BE(0x60000000, 0);
  out.writeUInt16BE(payloadLength, 4);
  out[6] = IpProtocol.udp;
  out[7] = input.ttl ?? 64;
  let pseudo = 0;
  for (let i = 0; i < 4; i++) {
    out.writeUInt32BE(src[i], 8 + 4 * i);
    out.writeUInt32BE(dst[i], 24 + 4 * i);
    pseudo += (src[i] >>> 16) + (src[i] & 0xffff) + (dst[i] >>> 16) + (dst[i] & 0xffff);
  }
  writeUdp(out, 40, input, pseudo);
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
  const version = buf.length > 0 ? buf[0] >>> 4 : 0;
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
