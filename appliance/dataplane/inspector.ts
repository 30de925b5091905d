/**
 * The per-packet decision: GENEVE → inner IP/UDP → flow → profile checks (IP, custom rules, rate,
 * RTP, anomaly, MPEG-TS). `inspect` returns 0 to forward or 1 + the index of the drop reason.
 *
 * Nothing here allocates on the forwarding path. Flow state is only committed once a packet has passed
 * every check, so a dropped packet (a hijack attempt, a replay) cannot move a flow's baseline.
 */
import { DROP_REASONS } from "../../contracts/appliance-metrics.ts";
import { formatAddress } from "../../contracts/cidr.ts";
import { EtherType, GeneveHeader, GeneveStatus, parseGeneve } from "../wire/geneve.ts";
import { InnerPacket, InnerStatus, IpProtocol, parseInner } from "../wire/ip.ts";
import {
  LAST_SI_PID,
  PID_NULL,
  PID_PAT,
  readPat,
  readPmt,
  TS_PACKET_SIZE,
  TS_SYNC_BYTE,
} from "../wire/mpegts.ts";
import { parseRtp, RtpHeader, RtpStatus } from "../wire/rtp.ts";
import {
  Action,
  type CompiledPolicy,
  type CompiledProfile,
  classify,
  RuleActionCode,
  ruleMaskFor,
} from "./compiled-policy.ts";
import { ALERT_BASE, Counter, DROP_BASE, RULE_BASE, reasonIndex } from "./counters.ts";
import { FlowTable, hashKey, PIDS_PER_FLOW } from "./flow-table.ts";

const R = {
  geneveMalformed: reasonIndex("geneve_malformed"),
  geneveProtocol: reasonIndex("geneve_unsupported_protocol"),
  gwlbOptions: reasonIndex("gwlb_options_missing"),
  ipMalformed: reasonIndex("ip_malformed"),
  ipChecksum: reasonIndex("ip_checksum"),
  ipOptions: reasonIndex("ip_options"),
  ipFragment: reasonIndex("ip_fragment"),
  ipTtl: reasonIndex("ip_ttl_low"),
  udpMalformed: reasonIndex("udp_malformed"),
  notAllowed: reasonIndex("flow_not_allowed"),
  tableFull: reasonIndex("flow_table_full"),
  newFlowRate: reasonIndex("new_flow_rate"),
  ratePackets: reasonIndex("rate_packets"),
  rateBits: reasonIndex("rate_bits"),
  rtpMalformed: reasonIndex("rtp_malformed"),
  rtpVersion: reasonIndex("rtp_version"),
  rtpPayloadType: reasonIndex("rtp_payload_type"),
  rtpSsrc: reasonIndex("rtp_ssrc_changed"),
  rtpReplay: reasonIndex("rtp_seq_replay"),
  rtpJump: reasonIndex("rtp_seq_jump"),
  rtpStale: reasonIndex("rtp_seq_stale"),
  rtpTimestamp: reasonIndex("rtp_timestamp_jump"),
  tsMisaligned: reasonIndex("ts_misaligned"),
  tsSync: reasonIndex("ts_sync_lost"),
  tsError: reasonIndex("ts_transport_error"),
  tsContinuity: reasonIndex("ts_continuity"),
  tsPid: reasonIndex("ts_unexpected_pid"),
  anomaly: reasonIndex("anomaly"),
  customRule: reasonIndex("custom_rule"),
  noPolicy: reasonIndex("no_policy"),
} as const;

const GENEVE_REASON = [0, R.geneveMalformed, R.geneveProtocol, R.gwlbOptions];
const INNER_REASON = [0, R.ipMalformed, R.ipChecksum, R.udpMalformed];

// Flow flags.
const F_RTP_SEEN = 1;
const F_PAT_SEEN = 2;
const F_PMT_KNOWN = 4;
const F_ANOMALOUS = 8;

// What an accepted RTP packet does to the flow's sequence state.
const SEQ_INIT = 1;
const SEQ_ADVANCE = 2;
const SEQ_LATE = 3;
const SEQ_RESYNC = 4;

const CC_UNKNOWN = 0xff;
const EWMA_ALPHA = 0.1;
const GAP_ALPHA = 0.02;
/** A silence this many times the usual inter-arrival gap (and at least MIN_GAP_MS) is an anomaly. */
const GAP_FACTOR = 50;
const MIN_GAP_MS = 250;
const MAX_SOURCES_TRACKED = 65_536;

export interface SecurityEvent {
  kind: "drop" | "alert";
  reason: (typeof DROP_REASONS)[number];
  flow: string;
  detail?: string;
}

export type SecurityEventSink = (event: SecurityEvent) => void;

interface SourceBucket {
  tokens: number;
  last: number;
}

export class Inspector {
  private policy: CompiledPolicy | null = null;
  private table: FlowTable | null = null;
  private readonly geneve = new GeneveHeader();
  private readonly inner = new InnerPacket();
  private readonly rtp = new RtpHeader();
  private readonly psiPids = new Uint16Array(PIDS_PER_FLOW);
  private readonly ccBackup = new Uint8Array(PIDS_PER_FLOW);
  private readonly pidBackup = new Uint16Array(PIDS_PER_FLOW);
  private readonly sources = new Map<number | string, SourceBucket>();
  private readonly eventTokens = new Float64Array(DROP_REASONS.length);
  private eventRefill = 0;
  private sweepCursor = 0;
  private readonly evicted = { count: 0 };
  // Pending RTP state of the packet being inspected, committed only if it is forwarded.
  private seqMode = 0;
  private seqDelta = 0;

  private readonly counters: Float64Array;
  private readonly onEvent: SecurityEventSink;

  constructor(counters: Float64Array, onEvent: SecurityEventSink) {
    this.counters = counters;
    this.onEvent = onEvent;
  }

  setPolicy(policy: CompiledPolicy): void {
    if (!this.table || this.table.capacity !== policy.limits.maxFlows) {
      this.table = new FlowTable(policy.limits.maxFlows);
      this.sweepCursor = 0;
    }
    this.policy = policy;
    this.counters[Counter.policyGeneration] = policy.generation;
    this.counters[Counter.activeFlows] = this.table.size;
  }

  get flowCount(): number {
    return this.table?.size ?? 0;
  }

  /** Inspects one GENEVE datagram; 0 = forward it, otherwise 1 + index of the drop reason. */
  inspect(buf: Buffer, length: number, now: number): number {
    const counters = this.counters;
    counters[Counter.received]++;
    this.inner.length = 0;
    counters[Counter.bytesReceived] += length;
    const geneve = this.geneve;
    const geneveStatus = parseGeneve(buf, length, geneve);
    if (geneveStatus !== GeneveStatus.ok) return this.drop(GENEVE_REASON[geneveStatus], -1, null);
    const packet = this.inner;
    const innerStatus = parseInner(
      buf,
      geneve.innerOffset,
      geneve.innerLength,
      geneve.protocolType === EtherType.ipv6,
      packet,
    );
    if (innerStatus !== InnerStatus.ok) return this.drop(INNER_REASON[innerStatus], -1, null);
    const policy = this.policy;
    const table = this.table;
    if (policy === null || table === null) return this.drop(R.noPolicy, -1, null);
    if (packet.isFragment) return this.inspectFragment(policy);

    const hash = hashKey(packet);
    let id = table.find(packet, hash);
    if (id < 0) {
      id = this.admit(policy, table, hash, now);
      if (id < 0) return -id;
    } else if (table.generation[id] !== policy.generation) {
      const entry = classify(policy, packet);
      if (entry < 0) {
        table.remove(id);
        counters[Counter.activeFlows] = table.size;
        return this.drop(R.notAllowed, -1, "no longer allowed by the policy");
      }
      table.entry[id] = entry;
      table.ruleMask[id] = ruleMaskFor(policy, packet);
      table.generation[id] = policy.generation;
    }
    const profile = policy.profiles[policy.flows[table.entry[id]].profile];

    if (packet.ttl < profile.minTtl) return this.drop(R.ipTtl, id, null);
    if (packet.hasOptions && !profile.allowOptions) return this.drop(R.ipOptions, id, null);

    const ruleMask = table.ruleMask[id];
    if (ruleMask !== 0) {
      const verdict = this.applyRules(policy, ruleMask, buf, id);
      if (verdict !== 0) return verdict;
    }

    const gap = now - table.lastSeen[id];
    table.lastSeen[id] = now;
    if (profile.rate) {
      const bits = packet.length * 8;
      const packets = Math.min(profile.burstPackets, table.tokensPackets[id] + gap * profile.packetsPerMs);
      const bitTokens = Math.min(profile.burstBits, table.tokensBits[id] + gap * profile.bitsPerMs);
      if (packets < 1) {
        table.tokensPackets[id] = packets;
        table.tokensBits[id] = bitTokens;
        return this.drop(R.ratePackets, id, null);
      }
      if (bitTokens < bits) {
        table.tokensPackets[id] = packets;
        table.tokensBits[id] = bitTokens;
        return this.drop(R.rateBits, id, null);
      }
      table.tokensPackets[id] = packets - 1;
      table.tokensBits[id] = bitTokens - bits;
    }

    this.seqMode = 0;
    const isRtp = profile.rtp && packet.protocol === IpProtocol.udp;
    if (isRtp) {
      const verdict = this.checkRtp(buf, id, profile);
      if (verdict !== 0) return verdict;
    }
    if (profile.anomaly !== Action.off) {
      const verdict = this.checkAnomaly(id, profile, gap, now);
      if (verdict !== 0) return verdict;
    }
    if (isRtp && profile.mpegts) {
      const verdict = this.checkTransportStream(buf, id, profile);
      if (verdict !== 0) return verdict;
    }
    if (this.seqMode !== 0) this.commitRtp(id);
    if (profile.anomaly !== Action.off) {
      table.windowPackets[id]++;
      table.windowBytes[id] += packet.length;
    }
    return 0;
  }

  /** Removes idle flows, a slice of the table per call; also forgets idle new-flow buckets. */
  sweep(now: number, budget = 65_536): void {
    const table = this.table;
    const policy = this.policy;
    if (!table || !policy) return;
    this.evicted.count = 0;
    this.sweepCursor = table.evictIdle(
      now - policy.limits.flowIdleMs,
      this.sweepCursor,
      budget,
      this.evicted,
    );
    this.counters[Counter.flowsEvicted] += this.evicted.count;
    this.counters[Counter.activeFlows] = table.size;
    if (this.sources.size > MAX_SOURCES_TRACKED / 2) {
      for (const [key, bucket] of this.sources) {
        if (now - bucket.last > 10_000) this.sources.delete(key);
      }
    }
  }

  private inspectFragment(policy: CompiledPolicy): number {
    const packet = this.inner;
    // A later fragment has no ports: it may only follow a flow entry that allows fragments at all.
    const entry = classify(policy, packet, packet.isLaterFragment);
    if (entry < 0) return this.drop(R.notAllowed, -1, null);
    const profile = policy.profiles[policy.flows[entry].profile];
    if (!profile.allowFragments) return this.drop(R.ipFragment, -1, null);
    return 0;
  }

  private admit(policy: CompiledPolicy, table: FlowTable, hash: number, now: number): number {
    const packet = this.inner;
    const entry = classify(policy, packet);
    if (entry < 0) return -this.drop(R.notAllowed, -1, null);
    const limits = policy.limits;
    const key =
      packet.family === 4
        ? packet.src[3]
        : `${packet.src[0]}:${packet.src[1]}:${packet.src[2]}:${packet.src[3]}`;
    let bucket = this.sources.get(key);
    if (bucket === undefined) {
      if (this.sources.size >= MAX_SOURCES_TRACKED) this.sweepSources(now);
      bucket = { tokens: limits.newFlowBurst, last: now };
      this.sources.set(key, bucket);
    } else {
      bucket.tokens = Math.min(
        limits.newFlowBurst,
        bucket.tokens + (now - bucket.last) * limits.newFlowsPerMs,
      );
      bucket.last = now;
    }
    if (bucket.tokens < 1) return -this.drop(R.newFlowRate, -1, null);
    const id = table.insert(packet, hash);
    if (id < 0) return -this.drop(R.tableFull, -1, null);
    bucket.tokens -= 1;
    const profile = policy.profiles[policy.flows[entry].profile];
    table.lastSeen[id] = now;
    table.generation[id] = policy.generation;
    table.entry[id] = entry;
    table.ruleMask[id] = ruleMaskFor(policy, packet);
    table.flags[id] = 0;
    table.resyncSeq[id] = -1;
    table.tokensPackets[id] = profile.burstPackets;
    table.tokensBits[id] = profile.burstBits;
    table.pidCount[id] = 0;
    table.pidDeclared[id] = 0;
    table.pmtSlots[id] = 0;
    table.windowStart[id] = now;
    table.windowPackets[id] = 0;
    table.windowBytes[id] = 0;
    table.windowsSeen[id] = 0;
    table.meanBytes[id] = 0;
    table.varBytes[id] = 0;
    table.meanGap[id] = 0;
    this.counters[Counter.flowsCreated]++;
    this.counters[Counter.activeFlows] = table.size;
    return id;
  }

  private sweepSources(now: number): void {
    for (const [key, bucket] of this.sources) {
      if (now - bucket.last > 1000) this.sources.delete(key);
    }
    if (this.sources.size >= MAX_SOURCES_TRACKED) this.sources.clear();
  }

  private applyRules(policy: CompiledPolicy, mask: number, buf: Buffer, id: number): number {
    const packet = this.inner;
    const rules = policy.rules;
    for (let i = 0; i < rules.length; i++) {
      if ((mask & (1 << i)) === 0) continue;
      const rule = rules[i];
      if (packet.length < rule.minLength || packet.length > rule.maxLength) continue;
      if (rule.payloadTypes !== null) {
        if (packet.protocol !== IpProtocol.udp || packet.payloadLength < 2) continue;
        if (!rule.payloadTypes[buf[packet.payloadOffset + 1] & 0x7f]) continue;
      }
      this.counters[RULE_BASE + i]++;
      if (rule.action === RuleActionCode.allow) return 0;
      if (rule.action === RuleActionCode.drop) return this.drop(R.customRule, id, rule.name);
      this.alert(R.customRule, id, rule.name);
    }
    return 0;
  }

  private checkRtp(buf: Buffer, id: number, profile: CompiledProfile): number {
    const packet = this.inner;
    const rtp = this.rtp;
    const status = parseRtp(buf, packet.payloadOffset, packet.payloadLength, rtp);
    if (status === RtpStatus.badVersion) return this.drop(R.rtpVersion, id, null);
    if (status !== RtpStatus.ok) return this.drop(R.rtpMalformed, id, null);
    if (profile.payloadTypes[rtp.payloadType] !== 1) return this.drop(R.rtpPayloadType, id, null);
    const table = this.table!;
    // First packet of a flow, possibly mid-stream after a failover: it becomes the baseline.
    if ((table.flags[id] & F_RTP_SEEN) === 0) {
      this.seqMode = SEQ_INIT;
      return 0;
    }
    if (rtp.ssrc !== table.ssrc[id]) {
      if (profile.pinSsrc) return this.drop(R.rtpSsrc, id, null);
      this.seqMode = SEQ_INIT;
      return 0;
    }
    const delta = (rtp.sequence - table.highestSeq[id]) & 0xffff;
    if (delta === 0) return this.drop(R.rtpReplay, id, null);
    if (delta < 0x8000) {
      if (delta > profile.maxSeqJump) {
        // RFC 3550 A.1: a jump is accepted once the stream shows it continues from there.
        if (table.resyncSeq[id] !== rtp.sequence) {
          table.resyncSeq[id] = (rtp.sequence + 1) & 0xffff;
          return this.drop(R.rtpJump, id, null);
        }
        this.seqMode = SEQ_RESYNC;
        return 0;
      }
      const step = (rtp.timestamp - table.lastTimestamp[id]) | 0;
      if (step > profile.maxTimestampJump || step < -profile.maxTimestampJump) {
        return this.drop(R.rtpTimestamp, id, null);
      }
      this.seqMode = SEQ_ADVANCE;
      this.seqDelta = delta;
      return 0;
    }
    const back = 0x10000 - delta;
    if (back > profile.reorderWindow || back > 64) return this.drop(R.rtpStale, id, null);
    const bit = back - 1;
    const seen = bit < 32 ? table.seqWindowLo[id] & (1 << bit) : table.seqWindowHi[id] & (1 << (bit - 32));
    if (seen !== 0) return this.drop(R.rtpReplay, id, null);
    this.seqMode = SEQ_LATE;
    this.seqDelta = bit;
    return 0;
  }

  private commitRtp(id: number): void {
    const table = this.table!;
    const rtp = this.rtp;
    const mode = this.seqMode;
    if (mode === SEQ_LATE) {
      const bit = this.seqDelta;
      if (bit < 32) table.seqWindowLo[id] = (table.seqWindowLo[id] | (1 << bit)) >>> 0;
      else table.seqWindowHi[id] = (table.seqWindowHi[id] | (1 << (bit - 32))) >>> 0;
      return;
    }
    if (mode === SEQ_ADVANCE) {
      const delta = this.seqDelta;
      let lo = table.seqWindowLo[id];
      let hi = table.seqWindowHi[id];
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
      const bit = delta - 1; // the previous highest is now `delta` behind
      if (bit < 32) lo |= 1 << bit;
      else if (bit < 64) hi |= 1 << (bit - 32);
      table.seqWindowLo[id] = lo >>> 0;
      table.seqWindowHi[id] = hi >>> 0;
    } else {
      table.seqWindowLo[id] = 0;
      table.seqWindowHi[id] = 0;
      table.flags[id] |= F_RTP_SEEN;
      table.ssrc[id] = rtp.ssrc;
    }
    table.highestSeq[id] = rtp.sequence;
    table.lastTimestamp[id] = rtp.timestamp;
    table.resyncSeq[id] = -1;
  }

  private checkAnomaly(id: number, profile: CompiledProfile, gap: number, now: number): number {
    const table = this.table!;
    const warm = table.windowsSeen[id] >= profile.anomalyWarmup;
    let finding: string | null = null;
    if (warm && gap > MIN_GAP_MS && gap > GAP_FACTOR * table.meanGap[id]) {
      finding = `silence of ${Math.round(gap)} ms`;
    }
    if (gap < 1000) table.meanGap[id] += GAP_ALPHA * (gap - table.meanGap[id]);
    const elapsed = now - table.windowStart[id];
    if (elapsed >= profile.anomalyWindowMs) {
      // Normalise to a full window so a late-closing window does not look like a surge.
      const value = (table.windowBytes[id] * profile.anomalyWindowMs) / elapsed;
      const mean = table.meanBytes[id];
      const variance = table.varBytes[id];
      table.flags[id] &= ~F_ANOMALOUS;
      if (warm) {
        const deviation = Math.abs(value - mean) / Math.sqrt(variance + 1);
        const ratio = value > mean ? value / (mean + 1) : mean / (value + 1);
        if (deviation > profile.anomalyZ && ratio > profile.anomalyRatio) {
          table.flags[id] |= F_ANOMALOUS;
          const perSecond = 8000 / profile.anomalyWindowMs;
          finding = `bitrate ${Math.round(value * perSecond)} bit/s against a baseline of ${Math.round(mean * perSecond)} bit/s`;
        }
      }
      if (table.windowsSeen[id] === 0) {
        table.meanBytes[id] = value;
      } else if ((table.flags[id] & F_ANOMALOUS) === 0) {
        // Anomalous windows stay out of the baseline, or a sustained attack would become normal.
        const diff = value - mean;
        table.meanBytes[id] = mean + EWMA_ALPHA * diff;
        table.varBytes[id] = (1 - EWMA_ALPHA) * (variance + EWMA_ALPHA * diff * diff);
      }
      if (table.windowsSeen[id] < 0xffff) table.windowsSeen[id]++;
      table.windowStart[id] = now;
      table.windowPackets[id] = 0;
      table.windowBytes[id] = 0;
    }
    if (profile.anomaly === Action.drop) {
      if (finding !== null || (table.flags[id] & F_ANOMALOUS) !== 0) return this.drop(R.anomaly, id, finding);
    } else if (finding !== null) {
      this.alert(R.anomaly, id, finding);
    }
    return 0;
  }

  private findPidSlot(id: number, pid: number): number {
    const table = this.table!;
    const base = id * PIDS_PER_FLOW;
    const count = table.pidCount[id];
    for (let i = 0; i < count; i++) if (table.pids[base + i] === pid) return i;
    return -1;
  }

  private addPid(id: number, pid: number): number {
    const table = this.table!;
    const count = table.pidCount[id];
    if (count >= PIDS_PER_FLOW) return -1;
    table.pids[id * PIDS_PER_FLOW + count] = pid;
    table.pidCc[id * PIDS_PER_FLOW + count] = CC_UNKNOWN;
    table.pidCount[id] = count + 1;
    return count;
  }

  private declarePid(id: number, pid: number, isPmt: boolean): void {
    let slot = this.findPidSlot(id, pid);
    if (slot < 0) slot = this.addPid(id, pid);
    if (slot < 0) return;
    const table = this.table!;
    table.pidDeclared[id] |= 1 << slot;
    if (isPmt) table.pmtSlots[id] |= 1 << slot;
  }

  private checkTransportStream(buf: Buffer, id: number, profile: CompiledProfile): number {
    const rtp = this.rtp;
    const length = rtp.payloadLength;
    if (length === 0 || length % TS_PACKET_SIZE !== 0) return this.drop(R.tsMisaligned, id, null);
    const table = this.table!;
    const base = id * PIDS_PER_FLOW;
    // Continuity state is updated as we go; keep a copy to put back if this RTP packet is dropped.
    const savedCount = table.pidCount[id];
    const savedDeclared = table.pidDeclared[id];
    const savedPmt = table.pmtSlots[id];
    const savedFlags = table.flags[id];
    for (let i = 0; i < savedCount; i++) {
      this.ccBackup[i] = table.pidCc[base + i];
      this.pidBackup[i] = table.pids[base + i];
    }
    let continuityAlerted = false;
    let transportAlerted = false;
    let pidAlerted = false;
    const end = rtp.payloadOffset + length;
    for (let offset = rtp.payloadOffset; offset < end; offset += TS_PACKET_SIZE) {
      let reason = -1;
      if (buf[offset] !== TS_SYNC_BYTE) {
        reason = R.tsSync;
      } else {
        const pid = ((buf[offset + 1] & 0x1f) << 8) | buf[offset + 2];
        if ((buf[offset + 1] & 0x80) !== 0 && profile.transportError !== Action.off) {
          if (profile.transportError === Action.drop) reason = R.tsError;
          else if (!transportAlerted) {
            transportAlerted = true;
            this.alert(R.tsError, id, `PID ${pid}`);
          }
        }
        if (reason < 0 && pid !== PID_NULL) reason = this.trackPid(buf, offset, pid, id, profile);
        if (reason === -2) {
          if (!pidAlerted) {
            pidAlerted = true;
            this.alert(R.tsPid, id, `PID ${pid} is not in the PMT`);
          }
          reason = -1;
        } else if (reason === -3) {
          if (!continuityAlerted) {
            continuityAlerted = true;
            this.alert(R.tsContinuity, id, `PID ${pid}`);
          }
          reason = -1;
        }
      }
      if (reason >= 0) {
        table.pidCount[id] = savedCount;
        table.pidDeclared[id] = savedDeclared;
        table.pmtSlots[id] = savedPmt;
        table.flags[id] = savedFlags;
        for (let i = 0; i < savedCount; i++) {
          table.pidCc[base + i] = this.ccBackup[i];
          table.pids[base + i] = this.pidBackup[i];
        }
        return this.drop(reason, id, null);
      }
    }
    return 0;
  }

  /**
   * Learns PAT/PMT and checks one TS packet's PID and continuity counter. Returns -1 (fine), a drop
   * reason, -2 (unexpected PID, alert only) or -3 (continuity gap, alert only).
   */
  private trackPid(buf: Buffer, offset: number, pid: number, id: number, profile: CompiledProfile): number {
    const table = this.table!;
    let slot = this.findPidSlot(id, pid);
    const pmtKnown = (table.flags[id] & F_PMT_KNOWN) !== 0;
    if (pid === PID_PAT) {
      const count = readPat(buf, offset, this.psiPids);
      if (count > 0) {
        for (let i = 0; i < count; i++) this.declarePid(id, this.psiPids[i], true);
        table.flags[id] |= F_PAT_SEEN;
      }
    } else if (slot >= 0 && (table.pmtSlots[id] & (1 << slot)) !== 0) {
      const count = readPmt(buf, offset, this.psiPids);
      if (count > 0) {
        for (let i = 0; i < count; i++) this.declarePid(id, this.psiPids[i], false);
        table.flags[id] |= F_PMT_KNOWN;
      }
    } else if (pid > LAST_SI_PID && pmtKnown && (slot < 0 || (table.pidDeclared[id] & (1 << slot)) === 0)) {
      if (profile.unexpectedPid === Action.drop) return R.tsPid;
      if (profile.unexpectedPid === Action.alert) return -2;
      return -1;
    }
    if (profile.continuity === Action.off) return -1;
    if (slot < 0) slot = this.findPidSlot(id, pid);
    if (slot < 0) slot = this.addPid(id, pid);
    if (slot < 0) return -1;
    const b3 = buf[offset + 3];
    if ((b3 & 0x10) === 0) return -1; // no payload: the counter does not advance
    const cc = b3 & 0x0f;
    const ccIndex = id * PIDS_PER_FLOW + slot;
    const previous = table.pidCc[ccIndex];
    table.pidCc[ccIndex] = cc;
    if (previous === CC_UNKNOWN || cc === previous) return -1; // first sight, or the one allowed duplicate
    if (cc === ((previous + 1) & 0x0f)) return -1;
    const discontinuity = (b3 & 0x20) !== 0 && buf[offset + 4] > 0 && (buf[offset + 5] & 0x80) !== 0;
    if (discontinuity) return -1;
    return profile.continuity === Action.drop ? R.tsContinuity : -3;
  }

  private drop(reason: number, id: number, detail: string | null): number {
    this.counters[DROP_BASE + reason]++;
    this.event("drop", reason, id, detail);
    return 1 + reason;
  }

  private alert(reason: number, id: number, detail: string | null): void {
    this.counters[ALERT_BASE + reason]++;
    this.event("alert", reason, id, detail);
  }

  /** Emits a sampled security event: a flood costs a counter increment, not a log line. */
  private event(kind: "drop" | "alert", reason: number, id: number, detail: string | null): void {
    const perSecond = this.policy?.limits.securityEventsPerSecond ?? 10;
    const now = Date.now();
    if (now - this.eventRefill >= 1000) {
      this.eventTokens.fill(perSecond);
      this.eventRefill = now;
    }
    if (this.eventTokens[reason] < 1) {
      this.counters[Counter.eventsSuppressed]++;
      return;
    }
    this.eventTokens[reason]--;
    const event: SecurityEvent = { kind, reason: DROP_REASONS[reason], flow: this.describeFlow() };
    if (detail) event.detail = detail;
    if (id >= 0 && this.policy && this.table)
      event.detail = event.detail ?? this.policy.flows[this.table.entry[id]]?.name;
    this.onEvent(event);
  }

  private describeFlow(): string {
    const packet = this.inner;
    if (packet.length === 0) return "unparsed";
    const proto =
      packet.protocol === IpProtocol.udp
        ? "udp"
        : packet.protocol === IpProtocol.tcp
          ? "tcp"
          : `ip/${packet.protocol}`;
    const src = formatAddress(packet.family, packet.src);
    const dst = formatAddress(packet.family, packet.dst);
    return `${proto} ${src}:${packet.srcPort} > ${dst}:${packet.dstPort}`;
  }
}
