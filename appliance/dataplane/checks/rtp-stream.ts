/**
 * The RTP stream of a flow (RFC 3550): version 2, a header that fits, an allowed payload type, the
 * SSRC pinned, and sequence continuity: a replay window behind the highest sequence number, a ceiling
 * on forward jumps and on timestamp steps.
 *
 * Live video has discontinuities an attacker does not make, and this follows them (RFC 3550 A.1,
 * extended to both directions and to a new SSRC): a packet off the flow's position (a forward jump past
 * `maxSeqJump`, a packet behind the replay window, or a new SSRC) starts or extends a *run*, packets of
 * one SSRC in sequence with timestamps that do not leap. A run of `probationPackets` is followed: the
 * same SSRC resynchronises there (`rtp_resync`); a new SSRC takes the pin (`rtp_ssrc_handover`) only if
 * the pinned SSRC has also been silent for `handoverSilenceMs`, or for `SILENCE_CADENCE_FACTOR` times its
 * own largest recent inter-arrival gap when that is longer (a stream that naturally pauses 80 ms between
 * bursts is not silent after 50 ms, and a hijacker must not win in its pauses). A packet at the old
 * position ends any run, so two streams interleaved on one 5-tuple (a hijack, a replay beside the live
 * stream) never complete one. After a resync the position the stream left is remembered: the old
 * stream's packets, replayed, would otherwise look like a forward step from the new position. A flow
 * first seen mid-stream (after a GWLB failover) takes its first packet as the baseline.
 */
import type { InnerPacket } from "../../wire/ip.ts";
import { parseRtp, RtpHeader, RtpStatus } from "../../wire/rtp.ts";
import { RTP_STATUS_REASON } from "../../wire/status.ts";
import type { CompiledProfile } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const MALFORMED = reasonIndex(RTP_STATUS_REASON[RtpStatus.malformed]);
const VERSION = reasonIndex(RTP_STATUS_REASON[RtpStatus.badVersion]);
const PAYLOAD_TYPE = reasonIndex("rtp_payload_type");
const SSRC_CHANGED = reasonIndex("rtp_ssrc_changed");
const REPLAY = reasonIndex("rtp_seq_replay");
const JUMP = reasonIndex("rtp_seq_jump");
const STALE = reasonIndex("rtp_seq_stale");
const TIMESTAMP_JUMP = reasonIndex("rtp_timestamp_jump");
const RESYNC = reasonIndex("rtp_resync");
const HANDOVER = reasonIndex("rtp_ssrc_handover");

const SEQ_MODULO = 0x10000;
const SEQ_HALF = 0x8000;
/** Sequence numbers the replay bitmap remembers behind the highest (two 32-bit words). */
export const REPLAY_WINDOW = 64;
const NO_RUN = -1;
const MAX_RUN_COUNTED = 255;
const NO_POSITION = -1;
/** The pinned SSRC counts as silent only after this many times its largest recent gap... */
export const SILENCE_CADENCE_FACTOR = 4;
/** ...where a gap longer than this is a pause, not cadence (so the silence needed stays under 1 s)... */
export const CADENCE_GAP_CAP_MS = 250;
/** ...and the largest gap fades by this factor per packet (about half in 70 packets). */
const CADENCE_DECAY = 0.99;

/** What an accepted packet does to the flow's stream state. */
const Step = { none: 0, baseline: 1, advance: 2, late: 3, resync: 4, handover: 5 } as const;

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
  /** When the pinned SSRC last had a packet forwarded (the inspector's clock, ms). */
  private lastForwarded = new Float64Array(0);
  /** The pinned SSRC's largest recent inter-arrival gap (ms, fading): its cadence. */
  private cadenceMs = new Float32Array(0);
  /** The highest sequence number before the last resync, or NO_POSITION. */
  private retiredSeq = new Int32Array(0);
  // The run of packets off the flow's position: its SSRC, the sequence number that extends it, its
  // length and last timestamp. Written by dropped packets too: it is the newcomer's state, not the flow's.
  private runSsrc = new Uint32Array(0);
  private runNext = new Int32Array(0);
  private runLength = new Uint8Array(0);
  private runTimestamp = new Uint32Array(0);
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
    this.lastForwarded = new Float64Array(maxFlows);
    this.cadenceMs = new Float32Array(maxFlows);
    this.retiredSeq = new Int32Array(maxFlows);
    this.runSsrc = new Uint32Array(maxFlows);
    this.runNext = new Int32Array(maxFlows);
    this.runLength = new Uint8Array(maxFlows);
    this.runTimestamp = new Uint32Array(maxFlows);
  }

  open(id: number): void {
    this.seen[id] = 0;
    this.runNext[id] = NO_RUN;
    this.runLength[id] = 0;
    this.cadenceMs[id] = 0;
    this.retiredSeq[id] = NO_POSITION;
  }

  /** Whether the packet being inspected, if forwarded, starts the stream over (baseline, resync, handover). */
  get startsOver(): boolean {
    return this.step === Step.baseline || this.step === Step.resync || this.step === Step.handover;
  }

  check(buf: Buffer, packet: InnerPacket, id: number, profile: CompiledProfile, now: number): number {
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
      if (!profile.pinSsrc) {
        this.step = Step.baseline;
        return 0;
      }
      return this.offPosition(id, profile, now, SSRC_CHANGED);
    }
    const delta = (rtp.sequence - this.highestSeq[id]) & 0xffff;
    // A run under way stays one, even where it walks into the replay window or past the old highest.
    if (this.runLength[id] !== 0 && this.runNext[id] === rtp.sequence && this.runSsrc[id] === rtp.ssrc) {
      return this.offPosition(id, profile, now, delta < SEQ_HALF ? JUMP : STALE);
    }
    if (delta === 0) return this.events.drop(REPLAY, id, null);
    if (delta < SEQ_HALF) {
      if (delta > profile.maxSeqJump) return this.offPosition(id, profile, now, JUMP);
      // The old stream's numbers, seen from the new position, are a run to prove, not a step to take
      // (only the very next number is the stream's own for sure).
      if (delta > 1 && this.nearRetired(id, rtp.sequence, profile))
        return this.offPosition(id, profile, now, STALE);
      const ticks = (rtp.timestamp - this.lastTimestamp[id]) | 0;
      if (ticks > profile.maxTimestampJump || ticks < -profile.maxTimestampJump) {
        return this.events.drop(TIMESTAMP_JUMP, id, null);
      }
      this.step = Step.advance;
      this.delta = delta;
      return 0;
    }
    const back = SEQ_MODULO - delta;
    if (back > profile.reorderWindow || back > REPLAY_WINDOW)
      return this.offPosition(id, profile, now, STALE);
    const bit = back - 1;
    const seen = bit < 32 ? this.windowLo[id] & (1 << bit) : this.windowHi[id] & (1 << (bit - 32));
    if (seen !== 0) return this.events.drop(REPLAY, id, null);
    this.step = Step.late;
    this.delta = bit;
    return 0;
  }

  /**
   * A packet off the flow's position: it extends the run it continues (or starts one); a run long
   * enough is followed, anything else is dropped as `reason`.
   */
  private offPosition(id: number, profile: CompiledProfile, now: number, reason: number): number {
    const rtp = this.header;
    // A packet the run already had (a replay of it) neither ends the run nor starts another.
    const behind = (this.runNext[id] - rtp.sequence) & 0xffff;
    if (
      this.runLength[id] !== 0 &&
      this.runSsrc[id] === rtp.ssrc &&
      behind >= 1 &&
      behind <= this.runLength[id]
    ) {
      return this.events.drop(REPLAY, id, null);
    }
    const ticks = (rtp.timestamp - this.runTimestamp[id]) | 0;
    const extends_ =
      this.runNext[id] === rtp.sequence &&
      this.runSsrc[id] === rtp.ssrc &&
      ticks <= profile.maxTimestampJump &&
      ticks >= -profile.maxTimestampJump;
    const length = extends_ ? Math.min(MAX_RUN_COUNTED, this.runLength[id] + 1) : 1;
    this.runSsrc[id] = rtp.ssrc;
    this.runNext[id] = (rtp.sequence + 1) & 0xffff;
    this.runLength[id] = length;
    this.runTimestamp[id] = rtp.timestamp;
    if (length < profile.probationPackets) return this.events.drop(reason, id, null);
    if (reason !== SSRC_CHANGED) {
      this.step = Step.resync;
      return 0;
    }
    // Interleaved with a live pinned SSRC, a newcomer is a hijack however consistent it looks.
    const silence = Math.max(profile.handoverSilenceMs, SILENCE_CADENCE_FACTOR * this.cadenceMs[id]);
    if (now - this.lastForwarded[id] < silence) return this.events.drop(reason, id, null);
    this.step = Step.handover;
    return 0;
  }

  /**
   * Whether `sequence` is at or behind (by up to maxSeqJump) the position the stream left at its last
   * resync: where the old stream's packets are, which a forward step from the new position can reach.
   */
  private nearRetired(id: number, sequence: number, profile: CompiledProfile): boolean {
    const retired = this.retiredSeq[id];
    return retired !== NO_POSITION && ((retired - sequence) & 0xffff) <= profile.maxSeqJump;
  }

  /** The packet is forwarded: its sequence number, timestamp and SSRC become the flow's. */
  commit(id: number, now: number): void {
    const step = this.step;
    if (step === Step.none) return;
    if (step === Step.advance || step === Step.late) {
      const gap = Math.min(CADENCE_GAP_CAP_MS, now - this.lastForwarded[id]);
      this.cadenceMs[id] = Math.max(gap, this.cadenceMs[id] * CADENCE_DECAY);
    } else {
      this.cadenceMs[id] = 0; // a new stream: its cadence is not the old one's
    }
    this.lastForwarded[id] = now;
    if (step === Step.late) {
      const bit = this.delta;
      if (bit < 32) this.windowLo[id] = (this.windowLo[id] | (1 << bit)) >>> 0;
      else this.windowHi[id] = (this.windowHi[id] | (1 << (bit - 32))) >>> 0;
      return;
    }
    const rtp = this.header;
    if (step === Step.advance) {
      this.shiftWindow(id, this.delta);
      // Once the stream itself reaches the position it left, those numbers are its own again.
      const retired = this.retiredSeq[id];
      if (retired !== NO_POSITION && ((rtp.sequence - retired) & 0xffff) < SEQ_HALF)
        this.retiredSeq[id] = NO_POSITION;
    } else {
      if (step === Step.resync) {
        this.events.alert(RESYNC, id, `sequence ${this.highestSeq[id]} -> ${rtp.sequence}`);
        this.retiredSeq[id] = this.highestSeq[id];
      } else {
        if (step === Step.handover) this.events.alert(HANDOVER, id, `SSRC ${this.ssrc[id]} -> ${rtp.ssrc}`);
        this.retiredSeq[id] = NO_POSITION; // another SSRC's numbers are no replay of this one's
      }
      // The run's earlier packets (dropped in probation) are behind the new position: replays of them
      // are replays.
      const earlier = step === Step.baseline ? 0 : Math.min(REPLAY_WINDOW, this.runLength[id] - 1);
      this.windowLo[id] = earlier >= 32 ? 0xffffffff : ((1 << earlier) - 1) >>> 0;
      this.windowHi[id] = earlier > 32 ? ((1 << (earlier - 32)) - 1) >>> 0 : 0;
      this.seen[id] = 1;
      this.ssrc[id] = rtp.ssrc;
    }
    // The flow's own position moved on: a run beside it is interleaved, not a restart.
    if (this.runLength[id] !== 0) {
      this.runNext[id] = NO_RUN;
      this.runLength[id] = 0;
    }
    this.highestSeq[id] = rtp.sequence;
    this.lastTimestamp[id] = rtp.timestamp;
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
