/**
 * The MPEG-2 transport stream in an RTP payload (ISO/IEC 13818-1): whole 188-byte packets with the sync
 * byte, the transport error indicator, a continuity counter per PID, PAT and PMT sections whose CRC_32
 * and lengths hold, and, once a PAT and PMT have been seen, only the PIDs they declare.
 *
 * An encoder restart or reconfiguration is followed, not refused: a PAT of a new version starts the
 * flow's PID knowledge over; a PMT of a new version replaces what that PMT declared (new PIDs are
 * learned, dropped ones forgotten) and restarts those PIDs' counters; a discontinuity_indicator allows
 * a counter jump; and when the RTP stream starts over (resync, SSRC handover) so does the transport
 * stream, as for a flow first seen mid-stream.
 *
 * Per flow: up to PIDS_PER_FLOW PIDs with their counters and what declared them. `check` works on a
 * copy of the flow's row, so a dropped RTP packet changes nothing; `commit` stores it.
 */
import {
  LAST_SI_PID,
  PID_NULL,
  PID_PAT,
  PsiSection,
  PsiStatus,
  readPat,
  readPmt,
  TS_PACKET_SIZE,
  TS_SYNC_BYTE,
  tsDiscontinuity,
} from "../../wire/mpegts.ts";
import type { RtpHeader } from "../../wire/rtp.ts";
import { PSI_STATUS_REASON } from "../../wire/status.ts";
import { Action, type CompiledProfile } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const MISALIGNED = reasonIndex("ts_misaligned");
const SYNC_LOST = reasonIndex("ts_sync_lost");
const TRANSPORT_ERROR = reasonIndex("ts_transport_error");
const CONTINUITY = reasonIndex("ts_continuity");
const UNEXPECTED_PID = reasonIndex("ts_unexpected_pid");
const PSI_CRC = reasonIndex(PSI_STATUS_REASON.badCrc);
const PSI_LENGTH = reasonIndex(PSI_STATUS_REASON.badLength);

/** PIDs a flow tracks; a program has a handful (PAT, PMT, video, audio, PCR, SI tables). */
export const PIDS_PER_FLOW = 16;
const CC_UNKNOWN = 0xff;
/** `owner` of a slot no PMT declared; `version` of a slot that is not a PMT (or whose PMT is unread). */
const NONE = 0xff;

// Flags of a flow's transport stream.
const PAT_SEEN = 1;
const PMT_KNOWN = 2;

/*
 * The TS packet header fields read for every TS packet, as wire/mpegts.ts draws and names them. They
 * are repeated here as module-local constants on purpose: reading them through mpegts.ts accessors
 * cost about 230 instructions per RTP packet (seven TS packets) under callgrind, and imported
 * constants more, since every call into, or constant of, another module is loaded and checked at run
 * time. test/appliance/wire.test.ts checks that the two agree.
 */
const TS_SYNC = 0;
const TS_FLAGS_PID = 1;
const TS_TRANSPORT_ERROR = 0x80;
const TS_PID_HIGH_MASK = 0x1f;
const TS_PID_LOW = 2;
const TS_CONTROL = 3;
const TS_PAYLOAD = 0x10;
const TS_CONTINUITY_MASK = 0x0f;
/** The constants above, for the test that holds them to wire/mpegts.ts's TS_LAYOUT. */
export const TS_HEADER_FIELDS = {
  sync: TS_SYNC,
  flagsPid: TS_FLAGS_PID,
  transportErrorFlag: TS_TRANSPORT_ERROR,
  pidHighMask: TS_PID_HIGH_MASK,
  pidLow: TS_PID_LOW,
  control: TS_CONTROL,
  payloadFlag: TS_PAYLOAD,
  continuityMask: TS_CONTINUITY_MASK,
} as const;

/** trackPid found nothing to drop for (a drop reason is >= 0). */
const FINE = -1;

// Alerts raised at most once per RTP packet.
const ALERTED_TRANSPORT = 1;
const ALERTED_PID = 2;
const ALERTED_CONTINUITY = 4;
const ALERTED_PSI = 8;

export class TransportStream {
  private flags = new Uint8Array(0);
  private patVersion = new Uint8Array(0);
  private pidCount = new Uint8Array(0);
  private pids = new Uint16Array(0);
  private pidCc = new Uint8Array(0);
  /** Per slot: the slot of the PMT that declared its PID, or NONE. */
  private owner = new Uint8Array(0);
  /** Per slot of a PMT PID: the version_number of the PMT last read there, or NONE. */
  private version = new Uint8Array(0);
  /** Bit i set = slot i's PID was declared by the PAT/PMT. */
  private declared = new Uint16Array(0);
  /** Bit i set = slot i's PID is a PMT PID (from the PAT). */
  private pmtSlots = new Uint16Array(0);

  // The working copy of the flow's row, filled by check() and stored by commit(). Owners and versions
  // are only copied when a PAT, a PMT or a new PID needs them (a few packets in a hundred).
  private wFlags = 0;
  private wPatVersion = 0;
  private wCount = 0;
  private wDeclared = 0;
  private wPmtSlots = 0;
  private readonly wPids = new Uint16Array(PIDS_PER_FLOW);
  private readonly wCc = new Uint8Array(PIDS_PER_FLOW);
  private readonly wOwner = new Uint8Array(PIDS_PER_FLOW);
  private readonly wVersion = new Uint8Array(PIDS_PER_FLOW);
  private loadedId = 0;
  private loadedCount = 0;
  private psiLoaded = false;
  private alerted = 0;
  private readonly psiPids = new Uint16Array(PIDS_PER_FLOW);
  private readonly section = new PsiSection();
  private readonly events: SecurityEvents;

  constructor(events: SecurityEvents) {
    this.events = events;
  }

  allocate(maxFlows: number): void {
    this.flags = new Uint8Array(maxFlows);
    this.patVersion = new Uint8Array(maxFlows);
    this.pidCount = new Uint8Array(maxFlows);
    this.pids = new Uint16Array(maxFlows * PIDS_PER_FLOW);
    this.pidCc = new Uint8Array(maxFlows * PIDS_PER_FLOW);
    this.owner = new Uint8Array(maxFlows * PIDS_PER_FLOW);
    this.version = new Uint8Array(maxFlows * PIDS_PER_FLOW);
    this.declared = new Uint16Array(maxFlows);
    this.pmtSlots = new Uint16Array(maxFlows);
  }

  open(id: number): void {
    this.flags[id] = 0;
    this.pidCount[id] = 0;
    this.declared[id] = 0;
    this.pmtSlots[id] = 0;
  }

  /**
   * Checks the TS packets of the RTP payload in `rtp`. With `startsOver` (the RTP stream restarted),
   * the flow's PID knowledge is not used: it starts again from this packet.
   */
  check(buf: Buffer, rtp: RtpHeader, id: number, profile: CompiledProfile, startsOver: boolean): number {
    const length = rtp.payloadLength;
    if (length === 0 || length % TS_PACKET_SIZE !== 0) return this.events.drop(MISALIGNED, id, null);
    this.load(id, startsOver);
    this.alerted = 0;
    const end = rtp.payloadOffset + length;
    for (let offset = rtp.payloadOffset; offset < end; offset += TS_PACKET_SIZE) {
      if (buf[offset + TS_SYNC] !== TS_SYNC_BYTE) return this.events.drop(SYNC_LOST, id, null);
      const pid = ((buf[offset + TS_FLAGS_PID] & TS_PID_HIGH_MASK) << 8) | buf[offset + TS_PID_LOW];
      if ((buf[offset + TS_FLAGS_PID] & TS_TRANSPORT_ERROR) !== 0 && profile.transportError !== Action.off) {
        if (profile.transportError === Action.drop) return this.events.drop(TRANSPORT_ERROR, id, null);
        this.alertOnce(ALERTED_TRANSPORT, TRANSPORT_ERROR, id, pid);
      }
      if (pid === PID_NULL) continue;
      const reason = this.trackPid(buf, offset, pid, id, profile);
      if (reason !== FINE) return this.events.drop(reason, id, null);
    }
    return 0;
  }

  /** The RTP packet is forwarded: what its TS packets taught becomes the flow's. */
  commit(id: number): void {
    this.flags[id] = this.wFlags;
    this.patVersion[id] = this.wPatVersion;
    this.pidCount[id] = this.wCount;
    this.declared[id] = this.wDeclared;
    this.pmtSlots[id] = this.wPmtSlots;
    const base = id * PIDS_PER_FLOW;
    for (let i = 0; i < this.wCount; i++) {
      this.pids[base + i] = this.wPids[i];
      this.pidCc[base + i] = this.wCc[i];
    }
    if (this.psiLoaded) {
      for (let i = 0; i < this.wCount; i++) {
        this.owner[base + i] = this.wOwner[i];
        this.version[base + i] = this.wVersion[i];
      }
    }
  }

  private load(id: number, startsOver: boolean): void {
    this.loadedId = id;
    this.psiLoaded = false;
    if (startsOver) {
      this.wFlags = 0;
      this.wCount = 0;
      this.wDeclared = 0;
      this.wPmtSlots = 0;
      this.loadedCount = 0;
      return;
    }
    this.wFlags = this.flags[id];
    this.wPatVersion = this.patVersion[id];
    this.wCount = this.pidCount[id];
    this.wDeclared = this.declared[id];
    this.wPmtSlots = this.pmtSlots[id];
    this.loadedCount = this.wCount;
    const base = id * PIDS_PER_FLOW;
    for (let i = 0; i < this.wCount; i++) {
      this.wPids[i] = this.pids[base + i];
      this.wCc[i] = this.pidCc[base + i];
    }
  }

  /** Brings the slots' owners and PMT versions into the working copy, once per packet. */
  private loadPsi(): void {
    if (this.psiLoaded) return;
    this.psiLoaded = true;
    const base = this.loadedId * PIDS_PER_FLOW;
    for (let i = 0; i < this.loadedCount; i++) {
      this.wOwner[i] = this.owner[base + i];
      this.wVersion[i] = this.version[base + i];
    }
  }

  private alertOnce(bit: number, reason: number, id: number, pid: number): void {
    if ((this.alerted & bit) !== 0) return;
    this.alerted |= bit;
    this.events.alert(reason, id, `PID ${pid}`);
  }

  private slotOf(pid: number): number {
    const pids = this.wPids;
    for (let i = 0; i < this.wCount; i++) if (pids[i] === pid) return i;
    return -1;
  }

  /**
   * A slot for a PID not yet tracked: a new one, or, when all are taken, one whose PID nothing declares
   * (its counter is forgotten). -1 when every slot is declared.
   */
  private addPid(pid: number): number {
    this.loadPsi();
    let slot = this.wCount;
    if (slot < PIDS_PER_FLOW) {
      this.wCount = slot + 1;
    } else {
      const spoken = this.wDeclared | this.wPmtSlots;
      for (slot = 0; slot < PIDS_PER_FLOW && (spoken & (1 << slot)) !== 0; slot++);
      if (slot === PIDS_PER_FLOW) return -1;
    }
    this.wPids[slot] = pid;
    this.wCc[slot] = CC_UNKNOWN;
    this.wOwner[slot] = NONE;
    this.wVersion[slot] = NONE;
    return slot;
  }

  private declarePid(pid: number, owner: number): number {
    let slot = this.slotOf(pid);
    if (slot < 0) slot = this.addPid(pid);
    if (slot < 0) return -1;
    this.wDeclared |= 1 << slot;
    this.wOwner[slot] = owner;
    return slot;
  }

  /** A PAT: a new version (or the first) starts the PID knowledge over with the PMT PIDs it names. */
  private readPat(buf: Buffer, offset: number): number {
    const count = readPat(buf, offset, this.psiPids, this.section);
    if (count < 0) return count;
    const version = this.section.version;
    if ((this.wFlags & PAT_SEEN) !== 0 && version === this.wPatVersion) return count;
    this.loadPsi();
    if ((this.wFlags & PAT_SEEN) !== 0) {
      // A new multiplex: what the old PAT and PMTs declared, and the old counters, no longer hold.
      this.wFlags = 0;
      this.wDeclared = 0;
      this.wPmtSlots = 0;
      for (let i = 0; i < this.wCount; i++) {
        this.wCc[i] = CC_UNKNOWN;
        this.wOwner[i] = NONE;
      }
    }
    for (let i = 0; i < count; i++) {
      const slot = this.declarePid(this.psiPids[i], NONE);
      if (slot < 0) continue;
      if ((this.wPmtSlots & (1 << slot)) === 0) this.wVersion[slot] = NONE;
      this.wPmtSlots |= 1 << slot;
    }
    this.wPatVersion = version;
    this.wFlags |= PAT_SEEN;
    return count;
  }

  /** A PMT on PMT slot `pmt`: a new version replaces what that PMT declared, counters restarting. */
  private readPmt(buf: Buffer, offset: number, pmt: number): number {
    const count = readPmt(buf, offset, this.psiPids, this.section);
    if (count < 0) return count;
    this.loadPsi();
    const version = this.section.version;
    if (this.wVersion[pmt] !== version) {
      for (let i = 0; i < this.wCount; i++) {
        if (this.wOwner[i] !== pmt) continue;
        this.wOwner[i] = NONE;
        this.wDeclared &= ~(1 << i);
        this.wCc[i] = CC_UNKNOWN;
      }
      for (let i = 0; i < count; i++) {
        const slot = this.declarePid(this.psiPids[i], pmt);
        if (slot >= 0) this.wCc[slot] = CC_UNKNOWN;
      }
      this.wVersion[pmt] = version;
    }
    this.wFlags |= PMT_KNOWN;
    return count;
  }

  /** What a PAT or PMT that failed its CRC or length checks costs, per the profile. */
  private psiError(status: number, id: number, pid: number, profile: CompiledProfile): number {
    if (status !== PsiStatus.badCrc && status !== PsiStatus.badLength) return FINE;
    const reason = status === PsiStatus.badCrc ? PSI_CRC : PSI_LENGTH;
    if (profile.psiErrors === Action.drop) return reason;
    if (profile.psiErrors === Action.alert) this.alertOnce(ALERTED_PSI, reason, id, pid);
    return FINE;
  }

  /** Learns PAT/PMT and checks one TS packet's PID and continuity counter; FINE or a drop reason. */
  private trackPid(buf: Buffer, offset: number, pid: number, id: number, profile: CompiledProfile): number {
    let slot = this.slotOf(pid);
    if (pid === PID_PAT) {
      const error = this.psiError(this.readPat(buf, offset), id, pid, profile);
      if (error !== FINE) return error;
    } else if (slot >= 0 && (this.wPmtSlots & (1 << slot)) !== 0) {
      const error = this.psiError(this.readPmt(buf, offset, slot), id, pid, profile);
      if (error !== FINE) return error;
    } else if (
      pid > LAST_SI_PID &&
      (this.wFlags & PMT_KNOWN) !== 0 &&
      (slot < 0 || (this.wDeclared & (1 << slot)) === 0)
    ) {
      if (profile.unexpectedPid === Action.drop) return UNEXPECTED_PID;
      if (profile.unexpectedPid === Action.alert) this.alertOnce(ALERTED_PID, UNEXPECTED_PID, id, pid);
      return FINE;
    }
    if (profile.continuity === Action.off) return FINE;
    if (slot < 0) slot = this.addPid(pid);
    if (slot < 0) return FINE;
    const control = buf[offset + TS_CONTROL];
    if ((control & TS_PAYLOAD) === 0) return FINE; // no payload: the counter does not advance
    const cc = control & TS_CONTINUITY_MASK;
    const previous = this.wCc[slot];
    this.wCc[slot] = cc;
    if (previous === CC_UNKNOWN || cc === previous) return FINE; // first sight, or the one allowed duplicate
    if (cc === ((previous + 1) & 0x0f)) return FINE;
    if (tsDiscontinuity(buf, offset)) return FINE;
    if (profile.continuity === Action.drop) return CONTINUITY;
    this.alertOnce(ALERTED_CONTINUITY, CONTINUITY, id, pid);
    return FINE;
  }
}
