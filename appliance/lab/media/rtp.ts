/** RTP packetisation (RFC 3550) of MPEG-TS, payload type 33 (RFC 2250), 90 kHz timestamps. */

import { RTP_LAYOUT } from "../../wire/rtp.ts";

export const RTP_HEADER_LENGTH = RTP_LAYOUT.headerLength;

export interface RtpHeaderFields {
  sequence: number;
  timestamp: number;
  ssrc: number;
  payloadType?: number;
  /** 2 unless a test bends it. */
  version?: number;
  marker?: boolean;
}

/** Writes the fixed 12-byte header (no CSRCs, no extension) into `out[0..12)`. */
export function writeRtpHeader(out: Buffer, fields: RtpHeaderFields): void {
  const L = RTP_LAYOUT;
  out[L.flags] = (fields.version ?? 2) << L.versionShift;
  out[L.markerPayloadType] =
    (fields.marker ? L.markerFlag : 0) | ((fields.payloadType ?? 33) & L.payloadTypeMask);
  out.writeUInt16BE(fields.sequence & 0xffff, L.sequence);
  out.writeUInt32BE(fields.timestamp >>> 0, L.timestamp);
  out.writeUInt32BE(fields.ssrc >>> 0, L.ssrc);
}

export interface RtpPacketizerOptions {
  ssrc: number;
  payloadType?: number;
  sequence?: number;
  timestamp?: number;
}

export class RtpPacketizer {
  ssrc: number;
  readonly payloadType: number;
  sequence: number;

  constructor(options: RtpPacketizerOptions) {
    this.ssrc = options.ssrc >>> 0;
    this.payloadType = options.payloadType ?? 33;
    this.sequence = (options.sequence ?? Math.floor(Math.random() * 65536)) & 0xffff;
  }

  /** Writes the header into `out[0..12)` and advances the sequence number. */
  writeHeader(out: Buffer, timestamp90k: number, marker = false): void {
    writeRtpHeader(out, {
      sequence: this.sequence,
      timestamp: timestamp90k,
      ssrc: this.ssrc,
      payloadType: this.payloadType,
      marker,
    });
    this.sequence = (this.sequence + 1) & 0xffff;
  }

  packet(payload: Buffer, timestamp90k: number): Buffer {
    const out = Buffer.allocUnsafe(RTP_HEADER_LENGTH + payload.length);
    this.writeHeader(out, timestamp90k);
    payload.copy(out, RTP_HEADER_LENGTH);
    return out;
  }
}
