/**
 * The per-packet decision, as a pipeline: GENEVE → inner IP/UDP → the flow (admission) → the checks
 * its profile names (IP header, custom rules, rate, RTP stream, anomaly, MPEG-TS) → commit. `inspect`
 * returns 0 to forward or 1 + the index of the drop reason.
 *
 * Each check owns its per-flow state (columns indexed by flow id) and comes as a check/commit pair:
 * `check` judges the packet and changes nothing a dropped packet must not change, `commit` runs only
 * once every check has passed, so a dropped packet (a hijack attempt, a replay) cannot move a flow's
 * baseline. Nothing here allocates on the forwarding path, and the only clock is the `now` passed in.
 */
import { EtherType, GeneveHeader, GeneveStatus, parseGeneve } from "../wire/geneve.ts";
import { InnerPacket, InnerStatus, IpProtocol, parseInner } from "../wire/ip.ts";
import { GENEVE_STATUS_REASON, INNER_STATUS_REASON } from "../wire/status.ts";
import { FlowAdmission } from "./checks/admission.ts";
import { AnomalyDetector } from "./checks/anomaly.ts";
import { CustomRules } from "./checks/custom-rules.ts";
import { IpHeaderCheck } from "./checks/ip-header.ts";
import { RateLimiter } from "./checks/rate-limit.ts";
import { RtpStream } from "./checks/rtp-stream.ts";
import { TransportStream } from "./checks/transport-stream.ts";
import type { CompiledPolicy } from "./compiled-policy.ts";
import { Counter, reasonIndex, reasonIndexes } from "./counters.ts";
import { FlowTable, hashKey } from "./flow-table.ts";
import { NO_FLOW, type SecurityEventSink, SecurityEvents } from "./security-events.ts";

export type { SecurityEvent, SecurityEventSink } from "./security-events.ts";

/** Drop reason index of each GeneveStatus / InnerStatus (index = status). */
const GENEVE_REASON = reasonIndexes(GENEVE_STATUS_REASON);
const INNER_REASON = reasonIndexes(INNER_STATUS_REASON);
const NO_POLICY = reasonIndex("no_policy");
const TABLE_FULL = reasonIndex("flow_table_full");
/** Flow ids the idle sweep looks at per call. */
const SWEEP_BUDGET = 65_536;

export class Inspector {
  private policy: CompiledPolicy | null = null;
  private table: FlowTable | null = null;
  private readonly geneve = new GeneveHeader();
  private readonly inner = new InnerPacket();
  private readonly counters: Float64Array;
  private readonly events: SecurityEvents;
  private readonly admission: FlowAdmission;
  private readonly ipHeader: IpHeaderCheck;
  private readonly rules: CustomRules;
  private readonly rate: RateLimiter;
  private readonly rtp: RtpStream;
  private readonly anomaly: AnomalyDetector;
  private readonly ts: TransportStream;
  private sweepCursor = 0;
  private readonly evicted = { count: 0 };

  constructor(counters: Float64Array, onEvent: SecurityEventSink) {
    this.counters = counters;
    this.events = new SecurityEvents(counters, onEvent, this.inner, (id) => this.flowName(id));
    this.admission = new FlowAdmission(this.events);
    this.ipHeader = new IpHeaderCheck(this.events);
    this.rules = new CustomRules(this.events, counters);
    this.rate = new RateLimiter(this.events);
    this.rtp = new RtpStream(this.events);
    this.anomaly = new AnomalyDetector(this.events);
    this.ts = new TransportStream(this.events);
  }

  setPolicy(policy: CompiledPolicy): void {
    if (!this.table || this.table.capacity !== policy.limits.maxFlows) {
      const maxFlows = policy.limits.maxFlows;
      this.table = new FlowTable(maxFlows);
      this.admission.allocate(maxFlows);
      this.rules.allocate(maxFlows);
      this.rate.allocate(maxFlows);
      this.rtp.allocate(maxFlows);
      this.anomaly.allocate(maxFlows);
      this.ts.allocate(maxFlows);
      this.sweepCursor = 0;
    }
    this.policy = policy;
    this.events.setRate(policy.limits.securityEventsPerSecond);
    this.counters[Counter.policyGeneration] = policy.generation;
    this.counters[Counter.activeFlows] = this.table.size;
  }

  get flowCount(): number {
    return this.table?.size ?? 0;
  }

  /** Inspects one GENEVE datagram, `buf[0..length)`; 0 = forward it, otherwise 1 + index of the drop reason. */
  inspect(buf: Buffer, length: number, now: number): number {
    const counters = this.counters;
    counters[Counter.received]++;
    counters[Counter.bytesReceived] += length;
    const events = this.events;
    events.now = now;
    const packet = this.inner;
    packet.length = 0;
    const geneve = this.geneve;
    const geneveStatus = parseGeneve(buf, length, geneve);
    if (geneveStatus !== GeneveStatus.ok) return events.drop(GENEVE_REASON[geneveStatus], NO_FLOW, null);
    const innerStatus = parseInner(
      buf,
      geneve.innerOffset,
      geneve.innerLength,
      geneve.protocolType === EtherType.ipv6,
      packet,
    );
    if (innerStatus !== InnerStatus.ok) return events.drop(INNER_REASON[innerStatus], NO_FLOW, null);
    const policy = this.policy;
    const table = this.table;
    if (policy === null || table === null) return events.drop(NO_POLICY, NO_FLOW, null);
    if (packet.isFragment) return this.admission.fragment(policy, packet);

    const id = this.flowOf(policy, table, now);
    if (id < 0) return -id;
    const profile = policy.profiles[policy.flows[this.admission.entry[id]].profile];
    const verdictIp = this.ipHeader.check(packet, profile, id);
    if (verdictIp !== 0) return verdictIp;
    const verdictRules = this.rules.check(policy, buf, packet, id);
    if (verdictRules !== 0) return verdictRules;
    const gap = table.touch(id, now);
    const verdictRate = this.rate.check(id, profile, gap, packet.length);
    if (verdictRate !== 0) return verdictRate;
    const isRtp = profile.rtp && packet.protocol === IpProtocol.udp;
    if (isRtp) {
      const verdictRtp = this.rtp.check(buf, packet, id, profile, now);
      if (verdictRtp !== 0) return verdictRtp;
    }
    const verdictAnomaly = this.anomaly.check(id, profile, gap, now);
    if (verdictAnomaly !== 0) return verdictAnomaly;
    const isTs = isRtp && profile.mpegts;
    if (isTs) {
      const verdictTs = this.ts.check(buf, this.rtp.header, id, profile, this.rtp.startsOver);
      if (verdictTs !== 0) return verdictTs;
    }

    this.rate.commit(id, profile, packet.length);
    if (isRtp) this.rtp.commit(id, now);
    this.anomaly.commit(id, profile, packet.length);
    if (isTs) this.ts.commit(id);
    return 0;
  }

  /** Removes idle flows, a slice of the table per call; also forgets idle new-flow buckets. */
  sweep(now: number, budget = SWEEP_BUDGET): void {
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
    this.admission.sweep(now);
  }

  /**
   * The id of the packet's flow: found (and re-matched if the policy changed), or opened; -(verdict)
   * when the packet may not have one.
   */
  private flowOf(policy: CompiledPolicy, table: FlowTable, now: number): number {
    const packet = this.inner;
    const hash = hashKey(packet);
    let id = table.find(packet, hash);
    if (id >= 0) {
      const before = this.admission.generation[id];
      const entry = this.admission.current(id, policy, packet);
      if (entry < 0) {
        table.remove(id);
        this.counters[Counter.activeFlows] = table.size;
        return -this.admission.refuseLive();
      }
      if (before !== policy.generation) this.rules.match(id, policy, packet);
      return id;
    }
    const entry = this.admission.check(policy, packet, now);
    if (entry < 0) return entry;
    id = table.insert(packet, hash, now);
    if (id < 0) return -this.events.drop(TABLE_FULL, NO_FLOW, null);
    this.admission.open(id, policy, entry);
    const profile = policy.profiles[policy.flows[entry].profile];
    this.rules.match(id, policy, packet);
    this.rate.open(id, profile);
    this.rtp.open(id);
    this.anomaly.open(id, now);
    this.ts.open(id);
    this.counters[Counter.flowsCreated]++;
    this.counters[Counter.activeFlows] = table.size;
    return id;
  }

  private flowName(id: number): string | undefined {
    const policy = this.policy;
    return policy?.flows[this.admission.entry[id]]?.name;
  }
}
