/**
 * A synthetic contribution stream: constant-bitrate MPEG-TS in RTP, 7 TS packets (1,316 bytes) per
 * RTP packet as MediaConnect's RTP outputs carry it, PAT/PMT every 100 ms and a PCR with them.
 */
import { TS_PACKET_SIZE } from "../../wire/mpegts.ts";
import { TsMuxer, type TsMuxerOptions } from "./mpegts.ts";
import { RTP_HEADER_LENGTH, RtpPacketizer } from "./rtp.ts";

export interface SyntheticStreamOptions {
  /** Bits per second of TS (the RTP/UDP/IP overhead comes on top). */
  bitrate: number;
  ssrc: number;
  tsPacketsPerRtp?: number;
  sequence?: number;
  /** The program's PIDs and PSI version (an encoder restart may change both). */
  muxer?: TsMuxerOptions;
}

const PSI_INTERVAL_MS = 100;

export class SyntheticStream {
  readonly packetIntervalMs: number;
  readonly rtp: RtpPacketizer;
  private readonly muxer: TsMuxer;
  private readonly tsPerRtp: number;
  private lastPsiMs = Number.NEGATIVE_INFINITY;

  constructor(options: SyntheticStreamOptions) {
    this.tsPerRtp = options.tsPacketsPerRtp ?? 7;
    this.muxer = new TsMuxer(options.muxer);
    this.packetIntervalMs = (this.tsPerRtp * TS_PACKET_SIZE * 8 * 1000) / options.bitrate;
    this.rtp = new RtpPacketizer({ ssrc: options.ssrc, sequence: options.sequence });
  }

  /** The RTP packet due at stream time `nowMs` (a new Buffer: it is kept for the return check). */
  next(nowMs: number): Buffer {
    const out = Buffer.allocUnsafe(RTP_HEADER_LENGTH + this.tsPerRtp * TS_PACKET_SIZE);
    const psiDue = nowMs - this.lastPsiMs >= PSI_INTERVAL_MS;
    if (psiDue) this.lastPsiMs = nowMs;
    const ticks90k = Math.floor(nowMs * 90);
    this.rtp.writeHeader(out, ticks90k);
    this.muxer.nextPackets(this.tsPerRtp, ticks90k * 300, psiDue, out.subarray(RTP_HEADER_LENGTH));
    return out;
  }
}
