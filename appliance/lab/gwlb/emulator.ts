/**
 * A Gateway Load Balancer on loopback, close enough to the real one for the appliance not to tell:
 * GENEVE (RFC 8926) with the three Amazon options (endpoint ID, attachment ID, per-flow cookie), each
 * flow sent from its own outer source port, a target per flow chosen by 5-tuple hash over healthy
 * targets and kept (stickiness), HTTP health checks with thresholds, flows moved off a failed target
 * (target_failover rebalance), and draining targets that keep their existing flows until the
 * deregistration delay ends. Returned datagrams are accepted from any source port, matched to their
 * flow by the cookie, checked byte for byte against what was sent, and their inner payload delivered;
 * each flow counts how many came back from its own outer source port (what a `--sender raw` appliance
 * does) rather than from 6081.
 */
import dgram from "node:dgram";
import { performance } from "node:perf_hooks";
import { GENEVE_PORT } from "../../../contracts/gwlb.ts";
import {
  amazonOptions,
  GeneveHeader,
  type GeneveOption,
  GeneveStatus,
  parseGeneve,
} from "../../wire/geneve.ts";
import { InnerPacket, InnerStatus, parseInner } from "../../wire/ip.ts";
import { EMULATOR_ADDRESS } from "../addressing.ts";
import { gwlbDatagram } from "../media/packets.ts";

export type TargetState = "initial" | "healthy" | "unhealthy" | "draining" | "deregistered";

export interface Target {
  readonly index: number;
  readonly address: string;
  readonly healthUrl: string;
  state: TargetState;
  okStreak: number;
  failStreak: number;
  drainUntil: number;
  flows: number;
  lastStatus: string;
}

export interface FlowSpec {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** Label for the report (stream name or attack class). */
  label: string;
  attack: boolean;
}

export interface Flow extends FlowSpec {
  readonly id: number;
  readonly cookie: number;
  target: number;
  sent: number;
  returned: number;
  /** Returns whose outer UDP source port was this flow's own (the port it was sent from). */
  returnedFromFlowPort: number;
  /** The outer UDP port this flow is sent from. */
  sourcePort: number;
  corrupted: number;
  moves: number;
  socket: dgram.Socket;
  readonly options: ReturnType<typeof amazonOptions>;
  /** GENEVE header and options exactly as sent; a return must carry these bytes unchanged. */
  header: Buffer | null;
  readonly sentAt: Float64Array;
}

export interface EmulatorOptions {
  targets: { address: string; healthUrl: string }[];
  healthIntervalMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  deregistrationDelayMs: number;
  /** Loopback address the emulator sends from and takes returns on (default EMULATOR_ADDRESS). */
  address?: string;
  onDeliver: (flow: Flow, payload: Buffer, latencyMs: number) => void;
  onEvent?: (message: string) => void;
}

/** The datagram GWLB sends for one inner UDP payload of `flow`: GENEVE, the three options, IPv4/UDP. */
export function encapsulate(
  flow: FlowSpec & { options: GeneveOption[] },
  payload: Buffer,
  ttl = 64,
): { datagram: Buffer; innerLength: number } {
  return gwlbDatagram(
    { src: flow.src, dst: flow.dst, srcPort: flow.srcPort, dstPort: flow.dstPort, ttl },
    payload,
    flow.options,
  );
}

/** FNV-1a over the 5-tuple: the flow hash GWLB's default (5-tuple) stickiness implies. */
function flowHash(spec: FlowSpec): number {
  let h = 0x811c9dc5;
  for (const ch of `${spec.src}|${spec.dst}|${spec.srcPort}|${spec.dstPort}|17`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class GwlbEmulator {
  readonly targets: Target[];
  readonly flows: Flow[] = [];
  private readonly byCookie = new Map<number, Flow>();
  private readonly options: EmulatorOptions;
  private readonly returns = dgram.createSocket({ type: "udp4", recvBufferSize: 16 << 20 });
  private readonly header = new GeneveHeader();
  private readonly inner = new InnerPacket();
  private healthTimer: NodeJS.Timeout | null = null;
  private nextCookie = 0x5100_0001;
  /** Returns that did not match any flow or failed the byte-for-byte check. */
  strayReturns = 0;

  constructor(options: EmulatorOptions) {
    this.options = options;
    this.targets = options.targets.map((t, index) => ({
      index,
      address: t.address,
      healthUrl: t.healthUrl,
      state: "initial",
      okStreak: 0,
      failStreak: 0,
      drainUntil: 0,
      flows: 0,
      lastStatus: "not checked",
    }));
    this.returns.on("message", (msg, rinfo) => this.onReturn(msg, rinfo.port));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.returns.once("error", reject);
      this.returns.bind(GENEVE_PORT, this.options.address ?? EMULATOR_ADDRESS, () => resolve());
    });
    this.healthTimer = setInterval(() => void this.checkHealth(), this.options.healthIntervalMs);
    await this.checkHealth();
  }

  async stop(): Promise<void> {
    if (this.healthTimer) clearInterval(this.healthTimer);
    for (const flow of this.flows) flow.socket.close();
    this.flows.length = 0;
    this.byCookie.clear();
    await new Promise<void>((resolve) => this.returns.close(() => resolve()));
  }

  private event(message: string): void {
    this.options.onEvent?.(message);
  }

  private async checkHealth(): Promise<void> {
    const now = performance.now();
    await Promise.all(
      this.targets.map(async (target) => {
        if (target.state === "deregistered") return;
        let ok = false;
        try {
          const response = await fetch(target.healthUrl, {
            signal: AbortSignal.timeout(this.options.healthIntervalMs),
          });
          ok = response.status === 200;
          target.lastStatus = ok
            ? "200"
            : `${response.status} ${((await response.json()) as { status?: string }).status ?? ""}`;
        } catch {
          target.lastStatus = "no answer";
        }
        if (ok) {
          target.okStreak++;
          target.failStreak = 0;
        } else {
          target.failStreak++;
          target.okStreak = 0;
        }
        if (target.state === "draining") {
          if (now >= target.drainUntil) this.deregistered(target);
          return;
        }
        if (target.state !== "healthy" && target.okStreak >= this.options.healthyThreshold) {
          target.state = "healthy";
          this.event(`target ${target.index + 1} (${target.address}) healthy`);
        } else if (target.state === "healthy" && target.failStreak >= this.options.unhealthyThreshold) {
          target.state = "unhealthy";
          this.event(`target ${target.index + 1} (${target.address}) unhealthy: ${target.lastStatus}`);
          this.rebalance(target);
        }
      }),
    );
  }

  private deregistered(target: Target): void {
    target.state = "deregistered";
    this.event(`target ${target.index + 1} deregistration delay over: moving its flows`);
    this.rebalance(target);
  }

  /** Moves every flow off `from` to a healthy target chosen by the flow hash (target_failover: rebalance). */
  private rebalance(from: Target): void {
    let moved = 0;
    for (const flow of this.flows) {
      if (flow.target !== from.index) continue;
      const next = this.pick(flow);
      if (next < 0 || next === from.index) continue;
      this.assign(flow, next);
      flow.moves++;
      moved++;
    }
    if (moved > 0) this.event(`${moved} flow(s) moved off target ${from.index + 1}`);
  }

  /** Puts `flow` on target `index`, keeping every target's flow count true. */
  private assign(flow: Flow, index: number): void {
    if (flow.target >= 0) this.targets[flow.target].flows--;
    flow.target = index;
    this.targets[index].flows++;
  }

  /**
   * Sends `flow` to target `index` from now on, whatever its hash says, as a scenario that needs load
   * on one appliance arranges it (GWLB itself keeps a flow where it landed).
   */
  pin(flow: Flow, index: number): void {
    if (flow.target !== index) this.assign(flow, index);
  }

  /**
   * The target carrying the most of `flows` (the first of them on a tie). A scenario names its own
   * streams: the flows of earlier scenarios stay in the table (and in each target's count).
   */
  busiestTarget(flows: readonly Flow[]): Target {
    const load = (t: Target) => flows.filter((f) => f.target === t.index).length;
    return this.targets.reduce((a, b) => (load(b) > load(a) ? b : a));
  }

  private pick(spec: FlowSpec): number {
    const healthy = this.targets.filter((t) => t.state === "healthy");
    if (healthy.length === 0) return -1;
    return healthy[flowHash(spec) % healthy.length].index;
  }

  /** Starts deregistration: no new flows; existing ones stay until the delay ends. */
  deregister(index: number): void {
    const target = this.targets[index];
    target.state = "draining";
    target.drainUntil = performance.now() + this.options.deregistrationDelayMs;
    this.event(`target ${index + 1} deregistering (delay ${this.options.deregistrationDelayMs} ms)`);
  }

  /** Registers a (re)started target: it takes new flows once it passes the healthy threshold. */
  register(index: number): void {
    const target = this.targets[index];
    target.state = "initial";
    target.okStreak = 0;
    target.failStreak = 0;
    this.event(`target ${index + 1} registered`);
  }

  healthyCount(): number {
    return this.targets.filter((t) => t.state === "healthy").length;
  }

  async addFlow(spec: FlowSpec): Promise<Flow> {
    const socket = dgram.createSocket({ type: "udp4", sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve) =>
      socket.bind(0, this.options.address ?? EMULATOR_ADDRESS, () => resolve()),
    );
    const cookie = this.nextCookie++ >>> 0;
    const flow: Flow = {
      ...spec,
      id: this.flows.length,
      cookie,
      target: this.pick(spec),
      sent: 0,
      returned: 0,
      returnedFromFlowPort: 0,
      sourcePort: socket.address().port,
      corrupted: 0,
      moves: 0,
      socket,
      options: amazonOptions({
        endpointId: 0x0e1a2b3c4d5e6f70n,
        attachmentId: 0x0a77ac4e00000001n,
        flowCookie: cookie,
      }),
      header: null,
      sentAt: new Float64Array(65536),
    };
    if (flow.target >= 0) this.targets[flow.target].flows++;
    this.flows.push(flow);
    this.byCookie.set(cookie, flow);
    return flow;
  }

  /** Encapsulates one inner UDP payload (an RTP packet) and sends it to the flow's target. */
  send(flow: Flow, payload: Buffer, ttl = 64): void {
    if (flow.target < 0 || this.targets[flow.target].state === "deregistered") {
      const next = this.pick(flow);
      if (next >= 0) this.assign(flow, next);
    }
    const { datagram, innerLength } = encapsulate(flow, payload, ttl);
    if (!flow.header) flow.header = Buffer.from(datagram.subarray(0, datagram.length - innerLength));
    flow.sent++;
    if (payload.length >= 4) flow.sentAt[(payload[2] << 8) | payload[3]] = performance.now();
    if (flow.target < 0) return; // no healthy target: GWLB would drop it too
    flow.socket.send(datagram, GENEVE_PORT, this.targets[flow.target].address);
  }

  private onReturn(msg: Buffer, sourcePort: number): void {
    const now = performance.now();
    const header = this.header;
    if (parseGeneve(msg, msg.length, header) !== GeneveStatus.ok || !header.hasFlowCookie) {
      this.strayReturns++;
      return;
    }
    const flow = this.byCookie.get(header.flowCookie);
    if (!flow?.header) {
      this.strayReturns++;
      return;
    }
    if (
      header.innerOffset !== flow.header.length ||
      msg.compare(flow.header, 0, flow.header.length, 0, header.innerOffset) !== 0
    ) {
      flow.corrupted++;
      return;
    }
    const inner = this.inner;
    if (parseInner(msg, header.innerOffset, header.innerLength, false, inner) !== InnerStatus.ok) {
      flow.corrupted++;
      return;
    }
    flow.returned++;
    if (sourcePort === flow.sourcePort) flow.returnedFromFlowPort++;
    const payload = msg.subarray(inner.payloadOffset, inner.payloadOffset + inner.payloadLength);
    const sentAt = payload.length >= 4 ? flow.sentAt[(payload[2] << 8) | payload[3]] : now;
    this.options.onDeliver(flow, payload, now - sentAt);
  }
}
