/**
 * The MPEG-2 transport stream in an RTP payload (ISO/IEC 13818-1): whole 188-byte packets with the sync
 * byte, the transport error indicator, a continuity counter per PID, and, once a PAT and PMT have been
 * seen, only the PIDs they declare. Per flow: up to PIDS_PER_FLOW PIDs with their counters and what
 * declared them. `check` works on a copy of the flow's row, so a dropped RTP packet changes nothing;
 * `commit` stores it.
 */
import {
  LAST_SI_PID,
  PID_NULL,
  PID_PAT,
  readPat,
  readPmt,
  TS_PACKET_SIZE,
  TS_SYNC_BYTE,
  tsDiscontinuity,
} from "../../wire/mpegts.ts";
import type { RtpHeader } from "../../wire/rtp.ts";
import { Action, type CompiledProfile } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const MISALIGNED = reasonIndex("ts_misaligned");
const SYNC_LOST = reasonIndex("ts_sync_lost");
const TRANSPORT_ERROR = reasonIndex("ts_transport_error");
const CONTINUITY = reasonIndex("ts_continuity");
const UNEXPECTED_PID = reasonIndex("ts_unexpected_pid");

/** PIDs whose continuity counters a flow tracks; a program has a handful (PAT, PMT, video, audio, PCR). */
export const PIDS_PER_FLOW = 16;
const CC_UNKNOWN = 0xff;

// Flags of a flow's transport stream.
const PAT_SEEN = 1;
const PMT_KNOWN = 2;

// What trackPid found, besides a drop reason (>= 0).
const FINE = -1;
const UNEXPECTED_ALERT = -2;
const CONTINUITY_ALERT = -3;

// TS packet header (4 bytes): sync, TEI|PUSI|priority|PID(13), scrambling|adaptation control|CC.
const TS_FLAGS_PID = 1;
const TS_PID_LOW = 2;
const TS_CONTROL = 3;
const TEI = 0x80;
const HAS_PAYLOAD = 0x10;

export class TransportStream {
  private flags = new Uint8Array(0);
  private pidCount = new Uint8Array(0);
  private pids = new Uint16Array(0);
  private pidCc = new Uint8Array(0);
  /** Bit i set = slot i's PID was declared by the PAT/PMT. */
  private declared = new Uint16Array(0);
  /** Bit i set = slot i's PID is a PMT PID (from the PAT). */
  private pmtSlots = new Uint16Array(0);

  // The working copy of the flow's row, filled by check() and stored by commit().
  private wFlags = 0;
  private wCount = 0;
  private wDeclared = 0;
  private wPmtSlots = 0;
  private readonly wPids = new Uint16Array(PIDS_PER_FLOW);
  private readonly wCc = new Uint8Array(PIDS_PER_FLOW);
  private readonly psiPids = new Uint16Array(PIDS_PER_FLOW);
  private readonly events: SecurityEvents;

  constructor(events: SecurityEvents) {
    this.events = events;
  }

  allocate(maxFlows: number): void {
    this.flags = new Uint8Array(maxFlows);
    this.pidCount = new Uint8Array(maxFlows);
    this.pids = new Uint16Array(maxFlows * PIDS_PER_FLOW);
    this.pidCc = new Uint8Array(maxFlows * PIDS_PER_FLOW);
    this.declared = new Uint16Array(maxFlows);
    this.pmtSlots = new Uint16Array(maxFlows);
  }

  open(id: number): void {
    this.flags[id] = 0;
    this.pidCount[id] = 0;
    this.declared[id] = 0;
    this.pmtSlots[id] = 0;
  }

  check(buf: Buffer, rtp: RtpHeader, id: number, profile: CompiledProfile): number {
    const length = rtp.payloadLength;
    if (length === 0 || length % TS_PACKET_SIZE !== 0) return this.events.drop(MISALIGNED, id, null);
    this.load(id);
    let continuityAlerted = false;
    let transportAlerted = false;
    let pidAlerted = false;
    const end = rtp.payloadOffset + length;
    for (let offset = rtp.payloadOffset; offset < end; offset += TS_PACKET_SIZE) {
      if (buf[offset] !== TS_SYNC_BYTE) return this.events.drop(SYNC_LOST, id, null);
      const pid = ((buf[offset + TS_FLAGS_PID] & 0x1f) << 8) | buf[offset + TS_PID_LOW];
      if ((buf[offset + TS_FLAGS_PID] & TEI) !== 0 && profile.transportError !== Action.off) {
        if (profile.transportError === Action.drop) return this.events.drop(TRANSPORT_ERROR, id, null);
        if (!transportAlerted) {
          transportAlerted = true;
          this.events.alert(TRANSPORT_ERROR, id, `PID ${pid}`);
        }
      }
      if (pid === PID_NULL) continue;
      const found = this.trackPid(buf, offset, pid, profile);
      if (found >= 0) return this.events.drop(found, id, null);
      if (found === UNEXPECTED_ALERT && !pidAlerted) {
        pidAlerted = true;
        this.events.alert(UNEXPECTED_PID, id, `PID ${pid} is not in the PMT`);
      } else if (found === CONTINUITY_ALERT && !continuityAlerted) {
        continuityAlerted = true;
        this.events.alert(CONTINUITY, id, `PID ${pid}`);
      }
    }
    return 0;
  }

  /** The RTP packet is forwarded: what its TS packets taught becomes the flow's. */
  commit(id: number): void {
    this.flags[id] = this.wFlags;
    this.pidCount[id] = this.wCount;
    this.declared[id] = this.wDeclared;
    this.pmtSlots[id] = this.wPmtSlots;
    const base = id * PIDS_PER_FLOW;
    for (let i = 0; i < this.wCount; i++) {
      this.pids[base + i] = this.wPids[i];
      this.pidCc[base + i] = this.wCc[i];
    }
  }

  private load(id: number): void {
    this.wFlags = this.flags[id];
    this.wCount = this.pidCount[id];
    this.wDeclared = this.declared[id];
    this.wPmtSlots = this.pmtSlots[id];
    const base = id * PIDS_PER_FLOW;
    for (let i = 0; i < this.wCount; i++) {
      this.wPids[i] = this.pids[base + i];
      this.wCc[i] = this.pidCc[base + i];
    }
  }

  private slotOf(pid: number): number {
    const pids = this.wPids;
    for (let i = 0; i < this.wCount; i++) if (pids[i] === pid) return i;
    return -1;
  }

  private addPid(pid: number): number {
    const slot = this.wCount;
    if (slot >= PIDS_PER_FLOW) return -1;
    this.wPids[slot] = pid;
    this.wCc[slot] = CC_UNKNOWN;
    this.wCount = slot + 1;
    return slot;
  }

  private declarePid(pid: number, isPmt: boolean): void {
    let slot = this.slotOf(pid);
    if (slot < 0) slot = this.addPid(pid);
    if (slot < 0) return;
    this.wDeclared |= 1 << slot;
    if (isPmt) this.wPmtSlots |= 1 << slot;
  }

  /**
   * Learns PAT/PMT and checks one TS packet's PID and continuity counter. Returns FINE, a drop reason,
   * UNEXPECTED_ALERT or CONTINUITY_ALERT.
   */
  private trackPid(buf: Buffer, offset: number, pid: number, profile: CompiledProfile): number {
    let slot = this.slotOf(pid);
    if (pid === PID_PAT) {
      const count = readPat(buf, offset, this.psiPids);
      if (count > 0) {
        for (let i = 0; i < count; i++) this.declarePid(this.psiPids[i], true);
        this.wFlags |= PAT_SEEN;
      }
    } else if (slot >= 0 && (this.wPmtSlots & (1 << slot)) !== 0) {
      const count = readPmt(buf, offset, this.psiPids);
      if (count > 0) {
        for (let i = 0; i < count; i++) this.declarePid(this.psiPids[i], false);
        this.wFlags |= PMT_KNOWN;
      }
    } else if (
      pid > LAST_SI_PID &&
      (this.wFlags & PMT_KNOWN) !== 0 &&
      (slot < 0 || (this.wDeclared & (1 << slot)) === 0)
    ) {
      if (profile.unexpectedPid === Action.drop) return UNEXPECTED_PID;
      if (profile.unexpectedPid === Action.alert) return UNEXPECTED_ALERT;
      return FINE;
    }
    if (profile.continuity === Action.off) return FINE;
    if (slot < 0) slot = this.slotOf(pid);
    if (slot < 0) slot = this.addPid(pid);
    if (slot < 0) return FINE;
    const control = buf[offset + TS_CONTROL];
    if ((control & HAS_PAYLOAD) === 0) return FINE; // no payload: the counter does not advance
    const cc = control & 0x0f;
    const previous = this.wCc[slot];
    this.wCc[slot] = cc;
    if (previous === CC_UNKNOWN || cc === previous) return FINE; // first sight, or the one allowed duplicate
    if (cc === ((previous + 1) & 0x0f)) return FINE;
    if (tsDiscontinuity(buf, offset)) return FINE;
    return profile.continuity === Action.drop ? CONTINUITY : CONTINUITY_ALERT;
  }
}
