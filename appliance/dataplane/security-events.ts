/**
 * Drops and alerts: every one counted by reason in the shared counters, and a sample of them emitted
 * as security events (at most `securityEventsPerSecond` per reason and second), so a flood costs a
 * counter increment, not a log line. Time is the inspector's clock (`now`, the time of the packet being
 * inspected); nothing here reads a clock of its own.
 */
import { DROP_REASONS, type DropReason } from "../../contracts/appliance-metrics.ts";
import { formatAddress } from "../../contracts/cidr.ts";
import { type InnerPacket, IpProtocol } from "../wire/ip.ts";
import { ALERT_BASE, Counter, DROP_BASE } from "./counters.ts";

export interface SecurityEvent {
  kind: "drop" | "alert";
  reason: DropReason;
  flow: string;
  detail?: string;
}

export type SecurityEventSink = (event: SecurityEvent) => void;

/** The flow id of a packet refused before it had a flow. */
export const NO_FLOW = -1;

const SAMPLE_PERIOD_MS = 1000;

export class SecurityEvents {
  /** Time of the packet being inspected (ms on the inspector's clock). */
  now = 0;
  private perSecond = 10;
  private readonly tokens = new Float64Array(DROP_REASONS.length);
  private refilledAt = Number.NEGATIVE_INFINITY;
  private readonly counters: Float64Array;
  private readonly sink: SecurityEventSink;
  private readonly packet: InnerPacket;
  private readonly flowName: (id: number) => string | undefined;

  /**
   * `packet` is the inspector's parsed inner packet (events name its 5-tuple); `flowName` names the
   * policy flow entry a flow id runs under.
   */
  constructor(
    counters: Float64Array,
    sink: SecurityEventSink,
    packet: InnerPacket,
    flowName: (id: number) => string | undefined,
  ) {
    this.counters = counters;
    this.sink = sink;
    this.packet = packet;
    this.flowName = flowName;
  }

  setRate(perSecond: number): void {
    this.perSecond = perSecond;
  }

  /** Counts a drop of `reason` and returns the inspector's verdict for it (1 + reason). */
  drop(reason: number, id: number, detail: string | null): number {
    this.counters[DROP_BASE + reason]++;
    this.emit("drop", reason, id, detail);
    return 1 + reason;
  }

  /** Counts an alert of `reason`; the packet goes on. */
  alert(reason: number, id: number, detail: string | null): void {
    this.counters[ALERT_BASE + reason]++;
    this.emit("alert", reason, id, detail);
  }

  private emit(kind: "drop" | "alert", reason: number, id: number, detail: string | null): void {
    if (this.now - this.refilledAt >= SAMPLE_PERIOD_MS) {
      this.tokens.fill(this.perSecond);
      this.refilledAt = this.now;
    }
    if (this.tokens[reason] < 1) {
      this.counters[Counter.eventsSuppressed]++;
      return;
    }
    this.tokens[reason]--;
    const event: SecurityEvent = { kind, reason: DROP_REASONS[reason], flow: this.describeFlow() };
    const about = detail ?? (id === NO_FLOW ? undefined : this.flowName(id));
    if (about) event.detail = about;
    this.sink(event);
  }

  private describeFlow(): string {
    const packet = this.packet;
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
