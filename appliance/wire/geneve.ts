/**
 * GENEVE (RFC 8926) as the Gateway Load Balancer speaks it: an 8-byte header, TLV options (GWLB adds
 * three of class 0x0108), then the inner IPv4 or IPv6 packet with no Ethernet header.
 *
 * `parseGeneve` is the per-packet path: it reads the received Buffer in place and fills a reusable
 * `GeneveHeader`, allocating nothing. `buildGeneve`/`decodeGeneve` allocate and are for the lab, tools
 * and tests.
 */
import { WireError } from "./errors.ts";

export const GENEVE_PORT = 6081;
export const GENEVE_HEADER_LENGTH = 8;
export const AMAZON_OPTION_CLASS = 0x0108;
export const AmazonOption = { endpointId: 1, attachmentId: 2, flowCookie: 3 } as const;
export const EtherType = { ipv4: 0x0800, ipv6: 0x86dd } as const;

/** Result codes of `parseGeneve`. */
export const GeneveStatus = {
  ok: 0,
  malformed: 1,
  unsupportedProtocol: 2,
  gwlbOptionsMissing: 3,
} as const;

/** Where things are in one received datagram; reused from packet to packet. */
export class GeneveHeader {
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
}

/**
 * Parses the header and every option of `buf[0..length)`. Never reads past `length`, whatever the
 * length fields claim.
 */
export function parseGeneve(buf: Buffer, length: number, out: GeneveHeader): number {
  if (length < GENEVE_HEADER_LENGTH) return GeneveStatus.malformed;
  const b0 = buf[0];
  if (b0 >>> 6 !== 0) return GeneveStatus.malformed; // only version 0 exists
  const optionsLength = (b0 & 0x3f) << 2;
  const innerOffset = GENEVE_HEADER_LENGTH + optionsLength;
  if (innerOffset > length) return GeneveStatus.malformed;
  const b1 = buf[1];
  out.oam = (b1 & 0x80) !== 0;
  out.critical = (b1 & 0x40) !== 0;
  out.protocolType = (buf[2] << 8) | buf[3];
  out.vni = (buf[4] << 16) | (buf[5] << 8) | buf[6];
  out.optionsLength = optionsLength;
  out.innerOffset = innerOffset;
  out.innerLength = length - innerOffset;
  out.endpointIdOffset = -1;
  out.attachmentIdOffset = -1;
  out.hasFlowCookie = false;
  out.flowCookie = 0;
  out.otherOptions = 0;

  let offset = GENEVE_HEADER_LENGTH;
  while (offset < innerOffset) {
    if (offset + 4 > innerOffset) return GeneveStatus.malformed;
    const optionClass = (buf[offset] << 8) | buf[offset + 1];
    const type = buf[offset + 2];
    const dataLength = (buf[offset + 3] & 0x1f) << 2;
    const data = offset + 4;
    if (data + dataLength > innerOffset) return GeneveStatus.malformed;
    if (optionClass === AMAZON_OPTION_CLASS && type === AmazonOption.endpointId && dataLength === 8) {
      out.endpointIdOffset = data;
    } else if (
      optionClass === AMAZON_OPTION_CLASS &&
      type === AmazonOption.attachmentId &&
      dataLength === 8
    ) {
      out.attachmentIdOffset = data;
    } else if (optionClass === AMAZON_OPTION_CLASS && type === AmazonOption.flowCookie && dataLength === 4) {
      out.flowCookie =
        ((buf[data] << 24) | (buf[data + 1] << 16) | (buf[data + 2] << 8) | buf[data + 3]) >>> 0;
      out.hasFlowCookie = true;
    } else {
      out.otherOptions++;
    }
    offset = data + dataLength;
  }
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
    if (option.data.length % 4 !== 0 || option.data.length > 124) {
      throw new WireError(
        "geneve_malformed",
        `option data must be a multiple of 4 bytes up to 124, got ${option.data.length}`,
      );
    }
    optionsLength += 4 + option.data.length;
  }
  if (optionsLength > 252)
    throw new WireError("geneve_malformed", `options total ${optionsLength} bytes, limit 252`);
  const out = Buffer.allocUnsafe(GENEVE_HEADER_LENGTH + optionsLength + message.inner.length);
  out[0] = optionsLength >>> 2;
  out[1] = (message.oam ? 0x80 : 0) | (message.critical ? 0x40 : 0);
  out.writeUInt16BE(message.protocolType, 2);
  const vni = message.vni ?? 0;
  out[4] = (vni >>> 16) & 0xff;
  out[5] = (vni >>> 8) & 0xff;
  out[6] = vni & 0xff;
  out[7] = 0;
  let offset = GENEVE_HEADER_LENGTH;
  for (const option of message.options) {
    out.writeUInt16BE(option.optionClass, offset);
    out[offset + 2] = option.type;
    out[offset + 3] = option.data.length >>> 2;
    option.data.copy(out, offset + 4);
    offset += 4 + option.data.length;
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
  const endpoint = Buffer.alloc(8);
  endpoint.writeBigUInt64BE(ids.endpointId);
  const attachment = Buffer.alloc(8);
  attachment.writeBigUInt64BE(ids.attachmentId);
  const cookie = Buffer.alloc(4);
  cookie.writeUInt32BE(ids.flowCookie >>> 0);
  return [
    { optionClass: AMAZON_OPTION_CLASS, type: AmazonOption.endpointId, data: endpoint },
    { optionClass: AMAZON_OPTION_CLASS, type: AmazonOption.attachmentId, data: attachment },
    { optionClass: AMAZON_OPTION_CLASS, type: AmazonOption.flowCookie, data: cookie },
  ];
}

const STATUS_REASON = ["", "geneve_malformed", "geneve_unsupported_protocol", "gwlb_options_missing"];

/** Allocating decoder: every option copied out. Throws WireError on anything `parseGeneve` rejects as malformed. */
export function decodeGeneve(buf: Buffer): DecodedGeneve {
  const header = new GeneveHeader();
  const status = parseGeneve(buf, buf.length, header);
  if (status === GeneveStatus.malformed)
    throw new WireError(STATUS_REASON[status], "malformed GENEVE datagram");
  const options: GeneveOption[] = [];
  let offset = GENEVE_HEADER_LENGTH;
  while (offset < header.innerOffset) {
    const dataLength = (buf[offset + 3] & 0x1f) << 2;
    options.push({
      optionClass: buf.readUInt16BE(offset),
      type: buf[offset + 2],
      data: Buffer.from(buf.subarray(offset + 4, offset + 4 + dataLength)),
    });
    offset += 4 + dataLength;
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
