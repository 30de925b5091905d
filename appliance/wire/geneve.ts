/**
 * GENEVE (RFC 8926) as the Gateway Load Balancer speaks it: an 8-byte header, TLV options (GWLB adds
 * three of class 0x0108), then the inner IPv4 or IPv6 packet with no Ethernet header.
 *
 * `parseGeneve` is the per-packet path: it reads the received Buffer in place and fills a reusable
 * `GeneveHeader`, allocating nothing. `buildGeneve`/`decodeGeneve` allocate and are for the lab, tools
 * and tests.
 */
import { WireError } from "./errors.ts";
import { GENEVE_STATUS_REASON, GeneveStatus } from "./status.ts";

export const GENEVE_HEADER_LENGTH = 8;
export const AMAZON_OPTION_CLASS = 0x0108;
export const AmazonOption = { endpointId: 1, attachmentId: 2, flowCookie: 3 } as const;
/** Data lengths of the Amazon options: 8-byte endpoint and attachment IDs, a 4-byte flow cookie. */
const AMAZON_ID_LENGTH = 8;
const AMAZON_COOKIE_LENGTH = 4;
export const EtherType = { ipv4: 0x0800, ipv6: 0x86dd } as const;

/*
 * RFC 8926 §3.4, the base header, and §3.5, one option (network byte order):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |        Virtual Network Identifier (VNI)       |    Reserved   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |          Option Class         |C|    Type     |R|R|R| Length  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                 Option Data (Length × 4 bytes)                |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
const VERSION_OPTLEN = 0; // Ver in the top 2 bits, Opt Len (4-byte words) in the low 6
const OPTIONS_LENGTH_MASK = 0x3f;
const FLAGS = 1;
const FLAG_OAM = 0x80; // O: a control message between tunnel endpoints, never data to forward
const FLAG_CRITICAL = 0x40; // C: at least one option is critical
const PROTOCOL_TYPE = 2;
const VNI = 4;
const VNI_RESERVED = 7;
const OPTION_CLASS = 0;
const OPTION_TYPE = 2;
const OPTION_LENGTH = 3;
const OPTION_HEADER_LENGTH = 4;
/** The high bit of an option's type: a receiver that does not know the option MUST drop the packet. */
export const OPTION_TYPE_CRITICAL = 0x80;
const OPTION_LENGTH_MASK = 0x1f; // in 4-byte words, not counting the option's own header
/** The limits the 5-bit option length and the 6-bit options length put on option data. */
const MAX_OPTION_DATA = OPTION_LENGTH_MASK * 4;
const MAX_OPTIONS_LENGTH = OPTIONS_LENGTH_MASK * 4;
/** The only version RFC 8926 defines; a tunnel endpoint MUST drop any other. */
const GENEVE_VERSION = 0;

/** Header and option offsets by name, for code that builds or corrupts datagrams (the fuzzer, generators). */
export const GENEVE_LAYOUT = {
  versionOptionsLength: VERSION_OPTLEN,
  flags: FLAGS,
  protocolType: PROTOCOL_TYPE,
  vni: VNI,
  headerLength: GENEVE_HEADER_LENGTH,
  optionClass: OPTION_CLASS,
  optionType: OPTION_TYPE,
  optionLength: OPTION_LENGTH,
  optionHeaderLength: OPTION_HEADER_LENGTH,
} as const;

/** Where the inner packet starts in a datagram that carries GWLB's three options and no other. */
export const GWLB_INNER_OFFSET =
  GENEVE_HEADER_LENGTH + 3 * OPTION_HEADER_LENGTH + 2 * AMAZON_ID_LENGTH + AMAZON_COOKIE_LENGTH;

export { GeneveStatus };

/** Where things are in one received datagram; reused from packet to packet. */
export class GeneveHeader {
  version = 0;
  protocolType = 0;
  vni = 0;
  oam = false;
  critical = false;
  /** Total length of the options, in bytes. */
  optionsLength = 0;
  innerOffset = 0;
  innerLength = 0;
  /** Offsets of the 8-byte endpoint and attachment IDs in the datagram, or -1. */
  endpointIdOffset = -1;
  attachmentIdOffset = -1;
  flowCookie = 0;
  hasFlowCookie = false;
  /** Options other than the three Amazon ones (carried through untouched). */
  otherOptions = 0;
  /** Offset of the first option this parser does not know that has the critical bit, or -1. */
  unknownCriticalOffset = -1;
}

/**
 * Parses the header and every option of `buf[0..length)`. Never reads past `length`, whatever the
 * length fields claim. Refuses what RFC 8926 says a tunnel endpoint must not pass on as data: an unknown
 * version (§3.4), a control packet (O bit, §3.4) and an unknown option marked critical (§3.5).
 */
export function parseGeneve(buf: Buffer, length: number, out: GeneveHeader): number {
  if (length < GENEVE_HEADER_LENGTH) return GeneveStatus.malformed;
  const b0 = buf[VERSION_OPTLEN];
  out.version = b0 >>> 6;
  if (out.version !== GENEVE_VERSION) return GeneveStatus.unknownVersion;
  const optionsLength = (b0 & OPTIONS_LENGTH_MASK) << 2;
  const innerOffset = GENEVE_HEADER_LENGTH + optionsLength;
  if (innerOffset > length) return GeneveStatus.malformed;
  const flags = buf[FLAGS];
  out.oam = (flags & FLAG_OAM) !== 0;
  out.critical = (flags & FLAG_CRITICAL) !== 0;
  out.protocolType = (buf[PROTOCOL_TYPE] << 8) | buf[PROTOCOL_TYPE + 1];
  out.vni = (buf[VNI] << 16) | (buf[VNI + 1] << 8) | buf[VNI + 2];
  out.optionsLength = optionsLength;
  out.innerOffset = innerOffset;
  out.innerLength = length - innerOffset;
  out.endpointIdOffset = -1;
  out.attachmentIdOffset = -1;
  out.hasFlowCookie = false;
  out.flowCookie = 0;
  out.otherOptions = 0;
  out.unknownCriticalOffset = -1;

  let offset = GENEVE_HEADER_LENGTH;
  while (offset < innerOffset) {
    if (offset + OPTION_HEADER_LENGTH > innerOffset) return GeneveStatus.malformed;
    const optionClass = (buf[offset + OPTION_CLASS] << 8) | buf[offset + OPTION_CLASS + 1];
    const type = buf[offset + OPTION_TYPE];
    const dataLength = (buf[offset + OPTION_LENGTH] & OPTION_LENGTH_MASK) << 2;
    const data = offset + OPTION_HEADER_LENGTH;
    if (data + dataLength > innerOffset) return GeneveStatus.malformed;
    if (
      optionClass === AMAZON_OPTION_CLASS &&
      type === AmazonOption.endpointId &&
      dataLength === AMAZON_ID_LENGTH
    ) {
      out.endpointIdOffset = data;
    } else if (
      optionClass === AMAZON_OPTION_CLASS &&
      type === AmazonOption.attachmentId &&
      dataLength === AMAZON_ID_LENGTH
    ) {
      out.attachmentIdOffset = data;
    } else if (
      optionClass === AMAZON_OPTION_CLASS &&
      type === AmazonOption.flowCookie &&
      dataLength === AMAZON_COOKIE_LENGTH
    ) {
      out.flowCookie =
        ((buf[data] << 24) | (buf[data + 1] << 16) | (buf[data + 2] << 8) | buf[data + 3]) >>> 0;
      out.hasFlowCookie = true;
    } else {
      out.otherOptions++;
      if ((type & OPTION_TYPE_CRITICAL) !== 0 && out.unknownCriticalOffset < 0)
        out.unknownCriticalOffset = offset;
    }
    offset = data + dataLength;
  }
  if (out.unknownCriticalOffset >= 0) return GeneveStatus.criticalOption;
  if (out.oam) return GeneveStatus.controlPacket;
  if (out.protocolType !== EtherType.ipv4 && out.protocolType !== EtherType.ipv6) {
    return GeneveStatus.unsupportedProtocol;
  }
  // GWLB always sends all three; a datagram without them did not come from a GWLB.
  if (out.endpointIdOffset < 0 || out.attachmentIdOffset < 0 || !out.hasFlowCookie) {
    return GeneveStatus.gwlbOptionsMissing;
  }
  return GeneveStatus.ok;
}

export interface GeneveOption {
  optionClass: number;
  type: number;
  data: Buffer;
}

export interface GeneveMessage {
  protocolType: number;
  vni?: number;
  oam?: boolean;
  critical?: boolean;
  options: readonly GeneveOption[];
  inner: Buffer;
}

export interface DecodedGeneve {
  protocolType: number;
  vni: number;
  oam: boolean;
  critical: boolean;
  options: GeneveOption[];
  inner: Buffer;
}

export function buildGeneve(message: GeneveMessage): Buffer {
  let optionsLength = 0;
  for (const option of message.options) {
    if (option.data.length % 4 !== 0 || option.data.length > MAX_OPTION_DATA) {
      throw new WireError(
        GENEVE_STATUS_REASON[GeneveStatus.malformed],
        `option data must be a multiple of 4 bytes up to ${MAX_OPTION_DATA}, got ${option.data.length}`,
      );
    }
    optionsLength += OPTION_HEADER_LENGTH + option.data.length;
  }
  if (optionsLength > MAX_OPTIONS_LENGTH)
    throw new WireError(
      GENEVE_STATUS_REASON[GeneveStatus.malformed],
      `options total ${optionsLength} bytes, limit ${MAX_OPTIONS_LENGTH}`,
    );
  const out = Buffer.allocUnsafe(GENEVE_HEADER_LENGTH + optionsLength + message.inner.length);
  out[VERSION_OPTLEN] = optionsLength >>> 2;
  out[FLAGS] = (message.oam ? FLAG_OAM : 0) | (message.critical ? FLAG_CRITICAL : 0);
  out.writeUInt16BE(message.protocolType, PROTOCOL_TYPE);
  const vni = message.vni ?? 0;
  out[VNI] = (vni >>> 16) & 0xff;
  out[VNI + 1] = (vni >>> 8) & 0xff;
  out[VNI + 2] = vni & 0xff;
  out[VNI_RESERVED] = 0;
  let offset = GENEVE_HEADER_LENGTH;
  for (const option of message.options) {
    out.writeUInt16BE(option.optionClass, offset + OPTION_CLASS);
    out[offset + OPTION_TYPE] = option.type;
    out[offset + OPTION_LENGTH] = option.data.length >>> 2;
    option.data.copy(out, offset + OPTION_HEADER_LENGTH);
    offset += OPTION_HEADER_LENGTH + option.data.length;
  }
  message.inner.copy(out, offset);
  return out;
}

/** The three options GWLB adds, in the order GWLB sends them. */
export function amazonOptions(ids: {
  endpointId: bigint;
  attachmentId: bigint;
  flowCookie: number;
}): GeneveOption[] {
  const endpoint = Buffer.alloc(AMAZON_ID_LENGTH);
  endpoint.writeBigUInt64BE(ids.endpointId);
  const attachment = Buffer.alloc(AMAZON_ID_LENGTH);
  attachment.writeBigUInt64BE(ids.attachmentId);
  const cookie = Buffer.alloc(AMAZON_COOKIE_LENGTH);
  cookie.writeUInt32BE(ids.flowCookie >>> 0);
  return [
    { optionClass: AMAZON_OPTION_CLASS, type: AmazonOption.endpointId, data: endpoint },
    { optionClass: AMAZON_OPTION_CLASS, type: AmazonOption.attachmentId, data: attachment },
    { optionClass: AMAZON_OPTION_CLASS, type: AmazonOption.flowCookie, data: cookie },
  ];
}

/**
 * Allocating decoder: every option copied out. Throws WireError when the datagram cannot be laid out
 * (malformed, or a version whose layout is unknown); decodes the rest, whatever `parseGeneve` thinks of it.
 */
export function decodeGeneve(buf: Buffer): DecodedGeneve {
  const header = new GeneveHeader();
  const status = parseGeneve(buf, buf.length, header);
  if (status === GeneveStatus.malformed)
    throw new WireError(GENEVE_STATUS_REASON[status], "malformed GENEVE datagram");
  if (status === GeneveStatus.unknownVersion)
    throw new WireError(GENEVE_STATUS_REASON[status], `GENEVE version ${header.version} is unknown`);
  const options: GeneveOption[] = [];
  let offset = GENEVE_HEADER_LENGTH;
  while (offset < header.innerOffset) {
    const dataLength = (buf[offset + OPTION_LENGTH] & OPTION_LENGTH_MASK) << 2;
    const data = offset + OPTION_HEADER_LENGTH;
    options.push({
      optionClass: buf.readUInt16BE(offset + OPTION_CLASS),
      type: buf[offset + OPTION_TYPE],
      data: Buffer.from(buf.subarray(data, data + dataLength)),
    });
    offset = data + dataLength;
  }
  return {
    protocolType: header.protocolType,
    vni: header.vni,
    oam: header.oam,
    critical: header.critical,
    options,
    inner: Buffer.from(buf.subarray(header.innerOffset)),
  };
}
