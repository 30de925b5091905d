/** RTP packetisation (RFC 3550) of MPEG-TS, payload type 33 (RFC 2250), 90 kHz timestamps. */

export const RTP_HEADER_LENGTH = 12;

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
    out[0] = 0x80;
    out[1] = (marker ? 0x80 : 0) | (this.payloadType & 0x7f);
    out[2] = this.sequence >>> 8;
    out[3] = this.sequence & 0xff;
    out.writeUInt32BE(timestamp90k >>> 0, 4);
    out.writeUInt32BE(this.ssrc, 8);
    this.sequence = (this.sequence + 1) & 0xffff;
  }

  packet(payload: Buffer, timestamp90k: number): Buffer {
    const out = Buffer.allocUnsafe(RTP_HEADER_LENGTH + payload.length);
    this.writeHeader(out, timestamp90k);
    payload.copy(out, RTP_HEADER_LENGTH);
    return out;
  }
}
