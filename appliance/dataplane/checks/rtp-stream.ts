/**
 * The RTP stream of a flow (RFC 3550): version 2, a header that fits, an allowed payload type, the
 * SSRC pinned to the first one seen, and sequence continuity: a replay window behind the highest
 * sequence number, a ceiling on forward jumps (with the RFC 3550 A.1 resynchronisation), and on
 * timestamp steps. A flow first seen mid-stream (after a GWLB failover) takes its first packet as the
 * baseline.
 */

import type { InnerPacket } from "../../wire/ip.ts";
import { parseRtp, RtpHeader, RtpStatus } from "../../wire/rtp.ts";
import type { CompiledProfile } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const MALFORMED = reasonIndex("rtp_malformed");
const VERSION = reasonIndex("rtp_version");
const PAYLOAD_TYPE = reasonIndex("rtp_payload_type");
const SSRC_CHANGED = reasonIndex("rtp_ssrc_changed");
const REPLAY = reasonIndex("rtp_seq_replay");
const JUMP = reasonIndex("rtp_seq_jump");
const STALE = reasonIndex("rtp_seq_stale");
const TIMESTAMP_JUMP = reasonIndex("rtp_timestamp_jump");

const SEQ_MODULO = 0x10000;
const SEQ_HALF = 0x8000;
/** Sequence numbers the replay bitmap remembers behind the highest (two 32-bit words). */
export const REPLAY_WINDOW = 64;

/** What an accepted packet does to the flow's sequence state. */
const Step = { none: 0, baseline: 1, advance: 2, late: 3, resync: 4 } as const;

export class RtpStream {
  /** The header of the packet being inspected (the transport stream check reads its payload). */
  readonly header = new RtpHeader();
  private seen = new Uint8Array(0);
  private ssrc = new Uint32Array(0);
  private highestSeq = new Int32Array(0);
  /** Bitmap of sequence numbers seen at highestSeq-1 … highestSeq-64. */
  private windowLo = new Uint32Array(0);
  private windowHi = new Uint32Array(0);
  private lastTimestamp = new Uint32Array(0);
  /** The sequence number a jumped stream must continue with to be followed there, or -1. */
  private resyncSeq = new Int32Array(0);
  // The pending step of the packet being inspected, applied by commit().
  private step = 0;
  private delta = 0;
  private readonly events: SecurityEvents;

  constructor(events: SecurityEvents) {
    this.events = events;
  }

  allocate(maxFlows: number): void {
    this.seen = new Uint8Array(maxFlows);
    this.ssrc = new Uint32Array(maxFlows);
    this.highestSeq = new Int32Array(maxFlows);
    this.windowLo = new Uint32Array(maxFlows);
    this.windowHi = new Uint32Array(maxFlows);
    this.lastTimestamp = new Uint32Array(maxFlows);
    this.resyncSeq = new Int32Array(maxFlows);
  }

  open(id: number): void {
    this.seen[id] = 0;
    this.resyncSeq[id] = -1;
  }

  check(buf: Buffer, packet: InnerPacket, id: number, profile: CompiledProfile): number {
    this.step = Step.none;
    const rtp = this.header;
    const status = parseRtp(buf, packet.payloadOffset, packet.payloadLength, rtp);
    if (status === RtpStatus.badVersion) return this.events.drop(VERSION, id, null);
    if (status !== RtpStatus.ok) return this.events.drop(MALFORMED, id, null);
    if (profile.payloadTypes[rtp.payloadType] !== 1) return this.events.drop(PAYLOAD_TYPE, id, null);
    if (this.seen[id] === 0) {
      this.step = Step.baseline;
      return 0;
    }
    if (rtp.ssrc !== this.ssrc[id]) {
      if (profile.pinSsrc) return this.events.drop(SSRC_CHANGED, id, null);
      this.step = Step.baseline;
      return 0;
    }
    const delta = (rtp.sequence - this.highestSeq[id]) & 0xffff;
    if (delta === 0) return this.events.drop(REPLAY, id, null);
    if (delta < SEQ_HALF) {
      if (delta > profile.maxSeqJump) {
        // RFC 3550 A.1: a jump is accepted once the stream shows it continues from there.
        if (this.resyncSeq[id] !== rtp.sequence) {
          this.resyncSeq[id] = (rtp.sequence + 1) & 0xffff;
          return this.events.drop(JUMP, id, null);
        }
        this.step = Step.resync;
        return 0;
      }
      const stepTicks = (rtp.timestamp - this.lastTimestamp[id]) | 0;
      if (stepTicks > profile.maxTimestampJump || stepTicks < -profile.maxTimestampJump) {
        return this.events.drop(TIMESTAMP_JUMP, id, null);
      }
      this.step = Step.advance;
      this.delta = delta;
      return 0;
    }
    const back = SEQ_MODULO - delta;
    if (back > profile.reorderWindow || back > REPLAY_WINDOW) return this.events.drop(STALE, id, null);
    const bit = back - 1;
    const seen = bit < 32 ? this.windowLo[id] & (1 << bit) : this.windowHi[id] & (1 << (bit - 32));
    if (seen !== 0) return this.events.drop(REPLAY, id, null);
    this.step = Step.late;
    this.delta = bit;
    return 0;
  }

  /** The packet is forwarded: its sequence number, timestamp and SSRC become the flow's. */
  commit(id: number): void {
    const step = this.step;
    if (step === Step.none) return;
    if (step === Step.late) {
      const bit = this.delta;
      if (bit < 32) this.windowLo[id] = (this.windowLo[id] | (1 << bit)) >>> 0;
      else this.windowHi[id] = (this.windowHi[id] | (1 << (bit - 32))) >>> 0;
      return;
    }
    if (step === Step.advance) {
      this.shiftWindow(id, this.delta);
    } else {
      this.windowLo[id] = 0;
      this.windowHi[id] = 0;
      this.seen[id] = 1;
      this.ssrc[id] = this.header.ssrc;
    }
    this.highestSeq[id] = this.header.sequence;
    this.lastTimestamp[id] = this.header.timestamp;
    this.resyncSeq[id] = -1;
  }

  /** Moves the replay window `delta` forward; the previous highest is then `delta` behind. */
  private shiftWindow(id: number, delta: number): void {
    let lo = this.windowLo[id];
    let hi = this.windowHi[id];
    if (delta >= 64) {
      lo = 0;
      hi = 0;
    } else if (delta >= 32) {
      hi = lo << (delta - 32);
      lo = 0;
    } else {
      hi = (hi << delta) | (lo >>> (32 - delta));
      lo = lo << delta;
    }
    const bit = delta - 1;
    if (bit < 32) lo |= 1 << bit;
    else if (bit < 64) hi |= 1 << (bit - 32);
    this.windowLo[id] = lo >>> 0;
    this.windowHi[id] = hi >>> 0;
  }
}
