/**
 * The MediaConnect stand-in: one flow with an SRT listener ingest (port 5000) and two sources, each
 * with one whitelist CIDR. Which CIDR each source holds is what the whitelist rotator would apply:
 * the contributor schedule reduced by the contracts' own `effectiveEntries` and `assign` (re-evaluated
 * every second, so time-boxed entries open and close on time). The whitelist gate admits only callers
 * those CIDRs cover; each admitted contributor has its own libsrt listener (srt-live-transmit) behind
 * the gate, and what it receives leaves as RTP/MPEG-TS (payload type 33, 7 TS packets per packet)
 * into the GWLB emulator, from the flow's VPC interface towards the MediaLive input. In the lab every
 * contributor gets its own RTP output, so that each picture can be watched.
 */
import dgram from "node:dgram";
import { cidrContains, parseCidr } from "../../../contracts/cidr.ts";
import {
  assign,
  type ContributorEntry,
  Contributors,
  effectiveEntries,
  ScheduleError,
} from "../../../contracts/contributor-schedule.ts";
import type { Flow } from "../gwlb/emulator.ts";
import type { Lab } from "../lab.ts";
import { RtpPacketizer } from "../media/rtp.ts";
import { StreamStats } from "../sink/sink.ts";
import type { Source } from "../sources.ts";
import type { ContributorState } from "../web/protocol.ts";
import { type ContributorSpec, TS_CHUNK } from "./contributor.ts";
import { startTool, type Tool } from "./processes.ts";
import { WhitelistGate } from "./whitelist-gate.ts";

/** A contributor silent this long has ended its session; the next chunk starts a new one. */
const SESSION_GAP_MS = 1500;
/** A contributor refused within this window shows as refused. */
const REFUSED_RECENTLY_MS = 3000;

export interface FlowSource {
  readonly name: string;
  cidr: string | undefined;
}

/** One uninterrupted contribution: an RTP output of its own (a flow through the GWLB). */
export interface StreamSession {
  readonly contributor: ContributorSpec;
  readonly number: number;
  readonly source: Source;
  readonly startedAt: number;
  endedAt: number | null;
}

interface Ingest {
  readonly spec: ContributorSpec;
  readonly index: number;
  readonly listenPort: number;
  readonly output: dgram.Socket;
  listener: Tool | null;
  session: StreamSession | null;
  pending: Promise<StreamSession | null> | null;
  sessions: number;
  lastChunkAt: number;
}

export interface MediaConnectOptions {
  lab: Lab;
  ingest: { address: string; port: number };
  contributors: readonly ContributorSpec[];
  schedule: ContributorEntry[];
  /** Inner addressing of the RTP outputs: the flow's VPC interface and the MediaLive input. */
  output: { src: string; dst: string; firstPort: number };
  logDir: string;
  onSession?: (session: StreamSession) => void;
  onSessionEnd?: (session: StreamSession) => void;
}

async function freeUdpPort(address: string): Promise<number> {
  const probe = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => probe.bind(0, address, () => resolve()));
  const { port } = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export class MediaConnectStandIn {
  readonly sources: FlowSource[] = [
    { name: "primary", cidr: undefined },
    { name: "backup", cidr: undefined },
  ];
  readonly sessions: StreamSession[] = [];
  private readonly options: MediaConnectOptions;
  private readonly lab: Lab;
  private schedule: ContributorEntry[];
  private readonly ingests: Ingest[] = [];
  private gate: WhitelistGate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastRefusal = "";
  private stopped = false;

  constructor(options: MediaConnectOptions) {
    this.options = options;
    this.lab = options.lab;
    this.schedule = Contributors.parse(options.schedule);
  }

  async start(): Promise<void> {
    for (const [index, spec] of this.options.contributors.entries()) {
      const output = dgram.createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
      await new Promise<void>((resolve) => output.bind(0, "127.0.0.1", () => resolve()));
      const ingest: Ingest = {
        spec,
        index,
        listenPort: await freeUdpPort(this.options.ingest.address),
        output,
        listener: null,
        session: null,
        pending: null,
        sessions: 0,
        lastChunkAt: 0,
      };
      output.on("message", (chunk) => this.onChunk(ingest, chunk));
      this.ingests.push(ingest);
      this.startListener(ingest);
    }
    this.apply(new Date());
    this.gate = new WhitelistGate({
      address: this.options.ingest.address,
      port: this.options.ingest.port,
      route: (address) => {
        const ingest = this.ingests.find((i) => i.spec.address === address);
        return ingest && this.admittedBy(address) ? ingest.listenPort : null;
      },
    });
    await this.gate.start();
    this.timer = setInterval(() => this.tick(), 500);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.gate?.stop();
    for (const ingest of this.ingests) {
      ingest.listener?.stop();
      this.endSession(ingest);
      ingest.output.close();
    }
  }

  /** The flow source whose whitelist CIDR covers `address`, or null when it is refused. */
  admittedBy(address: string): FlowSource | null {
    const host = parseCidr(address);
    return this.sources.find((s) => s.cidr !== undefined && cidrContains(parseCidr(s.cidr), host)) ?? null;
  }

  currentSchedule(): readonly ContributorEntry[] {
    return this.schedule;
  }

  /**
   * Replaces the schedule (what an operator writes to the contributors parameter). A schedule the
   * contracts refuse is reported and the last good one stays; returns the refusal, if any.
   */
  setSchedule(entries: ContributorEntry[], now = new Date()): string | null {
    const parsed = Contributors.safeParse(entries);
    if (!parsed.success) return `contributor schedule is malformed: ${parsed.error.message}`;
    const previous = this.schedule;
    this.schedule = parsed.data;
    const refusal = this.apply(now);
    if (refusal) this.schedule = previous;
    return refusal;
  }

  contributorState(spec: ContributorSpec): ContributorState {
    const ingest = this.ingests.find((i) => i.spec === spec);
    if (ingest?.session) return "live";
    if (this.admittedBy(spec.address)) return "admitted";
    const refusedAt = this.gate?.lastRefusedAt.get(spec.address);
    return refusedAt !== undefined && this.lab.now() - refusedAt < REFUSED_RECENTLY_MS ? "refused" : "idle";
  }

  refusedDatagrams(address: string): number {
    return this.gate?.refused.get(address) ?? 0;
  }

  liveSession(spec: ContributorSpec): StreamSession | null {
    return this.ingests.find((i) => i.spec === spec)?.session ?? null;
  }

  private tick(): void {
    this.apply(new Date());
    const now = this.lab.now();
    for (const ingest of this.ingests) {
      if (ingest.session && now - ingest.lastChunkAt > SESSION_GAP_MS) this.endSession(ingest);
    }
  }

  /** Computes the source CIDRs for `now` and applies them; returns the refusal, if the schedule has one. */
  private apply(now: Date): string | null {
    let plan: Map<string, string>;
    try {
      plan = assign(
        this.sources.map((s) => ({ arn: s.name, name: s.name, cidr: s.cidr })),
        effectiveEntries(this.schedule, now),
      );
    } catch (error) {
      if (!(error instanceof ScheduleError)) throw error;
      if (error.message !== this.lastRefusal)
        this.lab.event(`whitelist: schedule refused (${error.message})`);
      this.lastRefusal = error.message;
      return error.message;
    }
    this.lastRefusal = "";
    if (this.sources.every((s) => plan.get(s.name) === s.cidr)) return null;
    for (const source of this.sources) source.cidr = plan.get(source.name);
    this.lab.event(`whitelist: ${this.sources.map((s) => `${s.name} ${s.cidr}`).join(", ")}`);
    for (const ingest of this.ingests) {
      if (this.admittedBy(ingest.spec.address)) continue;
      this.gate?.revoke(ingest.spec.address);
      if (ingest.session) {
        this.endSession(ingest);
        // A fresh listener, as an updated source restarts: the withdrawn caller's half-open
        // connection must not hold it when the contributor is admitted again.
        ingest.listener?.stop();
      }
    }
    return null;
  }

  private startListener(ingest: Ingest): void {
    const listener = startTool(
      "srt-live-transmit",
      [
        ...["-q", "-a:yes", "-c", String(TS_CHUNK)],
        `srt://${this.options.ingest.address}:${ingest.listenPort}?mode=listener&latency=200`,
        `udp://127.0.0.1:${ingest.output.address().port}`,
      ],
      { dir: this.options.logDir, name: `mediaconnect-listener-${ingest.spec.label}` },
    );
    ingest.listener = listener;
    void listener.exited.then(() => {
      if (ingest.listener === listener) ingest.listener = null;
      if (!this.stopped)
        setTimeout(() => !this.stopped && !ingest.listener && this.startListener(ingest), 200);
    });
  }

  private onChunk(ingest: Ingest, chunk: Buffer): void {
    if (!this.admittedBy(ingest.spec.address)) return; // still in the listener's buffer when withdrawn
    const now = this.lab.now();
    if (ingest.session && now - ingest.lastChunkAt > SESSION_GAP_MS) this.endSession(ingest);
    ingest.lastChunkAt = now;
    if (!ingest.session && !ingest.pending) ingest.pending = this.beginSession(ingest);
    const session = ingest.session;
    if (!session) return; // its flow is being set up: a few milliseconds of the first chunks
    const packet = this.packetizers.get(session)!.packet(chunk, Math.round(now * 90));
    this.lab.emulator.send(session.source.flow, packet);
    session.source.sent++;
  }

  private readonly packetizers = new Map<StreamSession, RtpPacketizer>();

  private async beginSession(ingest: Ingest): Promise<StreamSession | null> {
    const { output } = this.options;
    const flow: Flow = await this.lab.flow({
      src: output.src,
      dst: output.dst,
      dstPort: output.firstPort + ingest.index,
      label: ingest.spec.label,
      attack: false,
    });
    if (this.stopped || !this.admittedBy(ingest.spec.address)) {
      ingest.pending = null;
      return null;
    }
    const ssrc = (0x5c000000 + ((ingest.index << 16) | ++ingest.sessions)) >>> 0;
    const source: Source = {
      flow,
      stats: new StreamStats(ingest.spec.label),
      ssrc,
      intervalMs: 0,
      nextDue: 0,
      sent: 0,
      next: () => null,
    };
    const session: StreamSession = {
      contributor: ingest.spec,
      number: ingest.sessions,
      source,
      startedAt: this.lab.now(),
      endedAt: null,
    };
    this.packetizers.set(session, new RtpPacketizer({ ssrc }));
    this.lab.addSource(source);
    this.sessions.push(session);
    ingest.session = session;
    ingest.pending = null;
    this.lab.event(
      `${ingest.spec.label} (${ingest.spec.address}) on air via ${this.admittedBy(ingest.spec.address)?.name ?? "?"}: RTP to ${output.dst}:${flow.dstPort}, ${flow.target >= 0 ? `appliance ${flow.target + 1}` : "waiting for a healthy appliance"}`,
    );
    this.options.onSession?.(session);
    return session;
  }

  private endSession(ingest: Ingest): void {
    const session = ingest.session;
    if (!session) return;
    ingest.session = null;
    session.endedAt = this.lab.now();
    this.lab.removeSources([session.source]);
    this.packetizers.delete(session);
    this.lab.event(`${ingest.spec.label} off air (session ${session.number})`);
    this.options.onSessionEnd?.(session);
  }
}
