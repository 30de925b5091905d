/** RTP fixed header (RFC 3550 §5.1), read in place. */
import { RtpStatus } from "./status.ts";

export { RtpStatus };

/*
 * RFC 3550 §5.1, the fixed header, and §5.3.1, the header extension that follows the CSRC list when
 * X is set:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                           timestamp                           |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |           synchronization source (SSRC) identifier            |
 *   +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *   |            contributing source (CSRC) identifiers             |
 *   |                             ....                              |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |      defined by profile       |           length              |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                        header extension                       |
 *   |                             ....                              |
 *
 * With P set, the payload's last byte counts the padding bytes at its end, itself included.
 */
const FLAGS = 0; // V in the top 2 bits, then P, X and CC (the CSRC count)
const FLAG_PADDING = 0x20;
const FLAG_EXTENSION = 0x10;
const CSRC_COUNT_MASK = 0x0f;
const MARKER_PAYLOAD_TYPE = 1;
const MARKER = 0x80;
const PAYLOAD_TYPE_MASK = 0x7f;
const SEQUENCE = 2;
const TIMESTAMP = 4;
const SSRC = 8;
const FIXED_HEADER_LENGTH = 12;
const CSRC_LENGTH = 4;
const EXTENSION_LENGTH = 2; // in 4-byte words, not counting the extension's own 4-byte header
const EXTENSION_HEADER_LENGTH = 4;
const RTP_VERSION = 2;
const VERSION_SHIFT = 6; // V: the top 2 bits of FLAGS

/** RTP offsets by name, for generators that rewrite sequence numbers and timestamps in place. */
export const RTP_LAYOUT = {
  flags: FLAGS,
  markerPayloadType: MARKER_PAYLOAD_TYPE,
  markerFlag: MARKER,
  payloadTypeMask: PAYLOAD_TYPE_MASK,
  sequence: SEQUENCE,
  timestamp: TIMESTAMP,
  ssrc: SSRC,
  headerLength: FIXED_HEADER_LENGTH,
  versionShift: VERSION_SHIFT,
} as const;

/** Where the header of one RTP packet puts things; reused from packet to packet. */
export class RtpHeader {
  version = 0;
  marker = false;
  payloadType = 0;
  sequence = 0;
  timestamp = 0;
  ssrc = 0;
  csrcCount = 0;
  /** The payload after the CSRCs, the extension and before the padding, absolute offsets. */
  payloadOffset = 0;
  payloadLength = 0;
}

export function parseRtp(buf: Buffer, offset: number, length: number, out: RtpHeader): number {
  if (length <= 0) return RtpStatus.malformed;
  const b0 = buf[offset + FLAGS];
  const version = b0 >>> VERSION_SHIFT;
  out.version = version;
  // A wrong version says more than a short packet does.
  if (version !== RTP_VERSION) return RtpStatus.badVersion;
  if (length < FIXED_HEADER_LENGTH) return RtpStatus.malformed;
  const b1 = buf[offset + MARKER_PAYLOAD_TYPE];
  out.marker = (b1 & MARKER) !== 0;
  out.payloadType = b1 & PAYLOAD_TYPE_MASK;
  out.sequence = (buf[offset + SEQUENCE] << 8) | buf[offset + SEQUENCE + 1];
  out.timestamp = buf.readUInt32BE(offset + TIMESTAMP);
  out.ssrc = buf.readUInt32BE(offset + SSRC);
  const csrcs = b0 & CSRC_COUNT_MASK;
  out.csrcCount = csrcs;
  let header = FIXED_HEADER_LENGTH + csrcs * CSRC_LENGTH;
  if (header > length) return RtpStatus.malformed;
  if (b0 & FLAG_EXTENSION) {
    const extension = header + EXTENSION_HEADER_LENGTH;
    if (extension > length) return RtpStatus.malformed;
    const words =
      (buf[offset + header + EXTENSION_LENGTH] << 8) | buf[offset + header + EXTENSION_LENGTH + 1];
    header = extension + words * 4;
    if (header > length) return RtpStatus.malformed;
  }
  let padding = 0;
  if (b0 & FLAG_PADDING) {
    padding = buf[offset + length - 1];
    if (padding === 0 || header + padding > length) return RtpStatus.malformed;
  }
  out.payloadOffset = offset + header;
  out.payloadLength = length - header - padding;
  return RtpStatus.ok;
}

/** Bytes of an RTP packet `rtpPayloadType` reads. */
export const RTP_PAYLOAD_TYPE_END = MARKER_PAYLOAD_TYPE + 1;

/** The payload type of the RTP packet at `offset`, which holds at least RTP_PAYLOAD_TYPE_END bytes. */
export function rtpPayloadType(buf: Buffer, offset: number): number {
  return buf[offset + MARKER_PAYLOAD_TYPE] & PAYLOAD_TYPE_MASK;
}
