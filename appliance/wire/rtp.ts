/** RTP fixed header (RFC 3550 §5.1), read in place. */

import { RtpStatus } from "./status.ts";

export { RtpStatus };

export class RtpHeader {
  version = 0;
  marker = false;
  payloadType = 0;
  sequence = 0;
  timestamp = 0;
  ssrc = 0;
  csrcCount = 0;
  payloadOffset = 0;
  payloadLength = 0;
}

export function parseRtp(buf: Buffer, offset: number, length: number, out: RtpHeader): number {
  if (length < 12) return length > 0 && buf[offset] >>> 6 !== 2 ? RtpStatus.badVersion : RtpStatus.malformed;
  const b0 = buf[offset];
  out.version = b0 >>> 6;
  if (out.version !== 2) return RtpStatus.badVersion;
  const b1 = buf[offset + 1];
  out.marker = (b1 & 0x80) !== 0;
  out.payloadType = b1 & 0x7f;
  out.sequence = (buf[offset + 2] << 8) | buf[offset + 3];
  out.timestamp = buf.readUInt32BE(offset + 4);
  out.ssrc = buf.readUInt32BE(offset + 8);
  out.csrcCount = b0 & 0x0f;
  let header = 12 + (out.csrcCount << 2);
  if (header > length) return RtpStatus.malformed;
  if (b0 & 0x10) {
    if (header + 4 > length) return RtpStatus.malformed;
    const words = (buf[offset + header + 2] << 8) | buf[offset + header + 3];
    header += 4 + (words << 2);
    if (header > length) return RtpStatus.malformed;
  }
  let padding = 0;
  if (b0 & 0x20) {
    padding = buf[offset + length - 1];
    if (padding === 0 || header + padding > length) return RtpStatus.malformed;
  }
  out.payloadOffset = offset + header;
  out.payloadLength = length - header - padding;
  return RtpStatus.ok;
}
