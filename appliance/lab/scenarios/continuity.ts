/**
 * What the encoder-restart and source-failover scenarios share: one contributor on its own flow whose
 * stream is switched mid-run (a restart, a failover), the loss each switch costs measured against its
 * bound, and, in the same run, the attacks the continuity rules must still refuse: a second SSRC
 * interleaved with a live stream, the same SSRC spoofed at another sequence position beside a live
 * stream, and replays of the switching stream's own recent packets.
 */
import { streamDestination, streamSource } from "../addressing.ts";
import type { Flow } from "../gwlb/emulator.ts";
import type { Lab } from "../lab.ts";
import { SyntheticStream, type SyntheticStreamOptions } from "../media/synthetic-stream.ts";
import { attackSource, type Source, wellFormed } from "../sources.ts";
import { type CleanEnd, defineCleanScenario, type Moment, type Scenario } from "./scenario.ts";

/** What a switch does to the RTP stream, and so which bound its loss is held to. */
export type SwitchKind = "same-ssrc" | "new-ssrc";

export interface StreamSwitch {
  /** When, as a fraction of the scenario. */
  at: number;
  kind: SwitchKind;
  /** What happens, for the report. */
  what: string;
  /** Makes the stream that is sent from then on. */
  stream: (bitrate: number) => SyntheticStream;
  /**
   * `switch`: the stream starts at the switch (a restarted encoder); `start`: it has been running
   * since the scenario began, unsent (the other source of a MediaConnect failover).
   */
  runsFrom: "switch" | "start";
}

/** The bound for a new SSRC: at most this much of the new stream's packets. */
export const HANDOVER_BOUND_MS = 100;
const HIJACK_SSRC = 0x0badc0de;
const ATTACK_RATE = 50;
/** The replayer re-sends the packet the contributor sent this many packets earlier (inside the window). */
const REPLAY_DEPTH = 10;
const RTP_MARKER = 0x80;
const SEQUENCE_HALF = 0x8000;

interface Segment {
  kind: SwitchKind | "first";
  what: string;
  at: number;
  sent: number;
  delivered: number;
}

type AttackName = "hijack" | "spoof" | "replay";

export interface RestartOutcome {
  what: string;
  kind: SwitchKind | "first";
  atSeconds: number;
  sent: number;
  lost: number;
  lostMs: number;
  bound: number;
}

export interface ContinuityDetails {
  packetsLostPerRestart: number[];
  restarts: RestartOutcome[];
  attacks: Record<AttackName, { sent: number; delivered: number }>;
  probationPackets: number;
  handoverBoundPackets: number;
  packetIntervalMs: number;
}

/**
 * Identity of a packet: SSRC, sequence number and timestamp. A restart keeping its SSRC sends the
 * sequence numbers of an earlier segment again, as new packets (their timestamps are later); only a
 * byte copy (a replay) has all three of a packet already delivered.
 */
const packetKey = (payload: Buffer) =>
  `${payload.readUInt32BE(8)}:${payload.readUInt16BE(2)}:${payload.readUInt32BE(4)}`;

/**
 * The contributor whose stream switches: the streams that run from the start advance side by side, as
 * a failover's sources do, and only the active one is sent. Every packet sent is filed under the
 * segment (start, or a switch) it belongs to, and the last few are kept for the replayer.
 */
class SwitchingContributor {
  readonly segments: Segment[] = [{ kind: "first", what: "start", at: 0, sent: 0, delivered: 0 }];
  readonly recent: Buffer[] = [];
  readonly source: Source;
  readonly intervalMs: number;
  private readonly streams: (SyntheticStream | null)[];
  private readonly segmentOf = new Map<string, number>();
  private readonly deliveredKeys = new Set<string>();
  private readonly switches: readonly StreamSwitch[];
  private readonly bitrate: number;
  private active = 0;

  constructor(
    flow: Flow,
    first: SyntheticStream,
    switches: readonly StreamSwitch[],
    bitrate: number,
    startMs: number,
  ) {
    this.switches = switches;
    this.bitrate = bitrate;
    this.streams = [first, ...switches.map((s) => (s.runsFrom === "start" ? s.stream(bitrate) : null))];
    this.intervalMs = first.packetIntervalMs;
    this.source = {
      flow,
      stats: null,
      ssrc: 0,
      intervalMs: this.intervalMs,
      nextDue: startMs,
      sent: 0,
      next: (now) => this.next(now),
    };
  }

  private next(now: number): Buffer | null {
    let out: Buffer | null = null;
    for (const [i, stream] of this.streams.entries()) {
      const packet = stream?.next(now) ?? null;
      if (i === this.active) out = packet;
    }
    if (out) {
      this.segmentOf.set(packetKey(out), this.segments.length - 1);
      this.segments[this.segments.length - 1].sent++;
      this.recent.push(out);
      if (this.recent.length > REPLAY_DEPTH) this.recent.shift();
    }
    return out;
  }

  /** Makes switch `i` (0-based) the stream sent from now on; `atSeconds` for the report. */
  switchTo(i: number, atSeconds: number): void {
    const s = this.switches[i];
    this.active = i + 1;
    this.streams[this.active] ??= s.stream(this.bitrate);
    this.segments.push({ kind: s.kind, what: s.what, at: atSeconds, sent: 0, delivered: 0 });
  }

  /** Files a delivered packet under its segment; false when it is a second copy (a replay let through). */
  delivered(payload: Buffer): boolean {
    const k = packetKey(payload);
    if (this.deliveredKeys.has(k)) return false;
    this.deliveredKeys.add(k);
    const segment = this.segmentOf.get(k);
    if (segment !== undefined) this.segments[segment].delivered++;
    return true;
  }
}

/**
 * The attacks the continuity rules must refuse, started with the streams and running throughout: a
 * second SSRC on a clean stream's flow, that stream's own SSRC spoofed half the sequence space away,
 * and replays of the contributor's recent packets.
 */
function stageAttacks(lab: Lab, clean: readonly Source[], contributor: SwitchingContributor) {
  const now = lab.now();
  const hijack = attackSource(
    clean[0].flow,
    ATTACK_RATE,
    now + 300,
    wellFormed(HIJACK_SSRC, () => lab.now()),
  );
  const spoofTarget = clean[Math.min(1, clean.length - 1)];
  // Half the sequence space away from the live stream: a blind spoofer that lands just ahead of it
  // is a step the flow takes (up to maxSeqJump), which no sequence check can refuse; this one must
  // be refused for interleaving, every time, whatever number the live stream started from.
  const spoofStream = new SyntheticStream({
    bitrate: 4_000_000,
    ssrc: spoofTarget.ssrc,
    sequence: ((spoofTarget.nextSequence?.() ?? 0) + SEQUENCE_HALF) & 0xffff,
  });
  const spoof = attackSource(spoofTarget.flow, ATTACK_RATE, now + 300, () => {
    const packet = spoofStream.next(lab.now());
    packet[1] |= RTP_MARKER; // the clean streams never set it: how the report tells these apart
    return packet;
  });
  const replay = attackSource(contributor.source.flow, ATTACK_RATE, now + 300, () =>
    Buffer.from(contributor.recent[0] ?? Buffer.alloc(0)),
  );
  return { hijack, spoof, replay } satisfies Record<AttackName, Source>;
}

/** Each switch's loss against its bound, and the attacks' outcome; failures pushed on the way. */
function judge(
  end: CleanEnd,
  contributor: SwitchingContributor,
  attacks: Record<AttackName, Source>,
  attackDelivered: Record<AttackName, number>,
  probation: number,
) {
  const { totals, failures } = end;
  const segments = contributor.segments;
  const intervalMs = contributor.intervalMs;
  if (totals.lost !== 0) failures.push(`${totals.lost} packets lost on the clean streams`);
  if (segments[0].delivered !== segments[0].sent)
    failures.push(`${segments[0].sent - segments[0].delivered} packets lost before the first switch`);
  const handoverBound = Math.ceil(HANDOVER_BOUND_MS / intervalMs);
  const restarts = segments.slice(1).map((segment): RestartOutcome => {
    const bound = segment.kind === "same-ssrc" ? probation : handoverBound;
    const lost = segment.sent - segment.delivered;
    if (segment.delivered === 0) failures.push(`${segment.what}: the stream never came back`);
    else if (lost > bound)
      failures.push(`${segment.what}: ${lost} packets lost, above the bound of ${bound}`);
    return {
      what: segment.what,
      kind: segment.kind,
      atSeconds: Math.round(segment.at * 10) / 10,
      sent: segment.sent,
      lost,
      lostMs: Math.round(lost * intervalMs),
      bound,
    };
  });
  const names = Object.keys(attacks) as AttackName[];
  for (const name of names) {
    if (attacks[name].sent === 0) failures.push(`${name}: no attack packet was sent`);
    if (attackDelivered[name] > 0)
      failures.push(`${name}: ${attackDelivered[name]} attack packets reached MediaLive`);
  }
  const details: ContinuityDetails = {
    packetsLostPerRestart: restarts.map((r) => r.lost),
    restarts,
    attacks: {
      hijack: { sent: attacks.hijack.sent, delivered: attackDelivered.hijack },
      spoof: { sent: attacks.spoof.sent, delivered: attackDelivered.spoof },
      replay: { sent: attacks.replay.sent, delivered: attackDelivered.replay },
    },
    probationPackets: probation,
    handoverBoundPackets: handoverBound,
    packetIntervalMs: Math.round(intervalMs * 1000) / 1000,
  };
  return {
    attackSent: names.reduce((n, name) => n + attacks[name].sent, 0),
    attackDelivered: names.reduce((n, name) => n + attackDelivered[name], 0),
    details,
  };
}

export function continuityScenario(spec: {
  name: string;
  description: string;
  /** Index of the contributor's flow in the lab's addressing (away from the clean streams). */
  flowIndex: number;
  first: (bitrate: number) => SyntheticStream;
  switches: StreamSwitch[];
}): Scenario<ContinuityDetails> {
  return defineCleanScenario<ContinuityDetails>({
    name: spec.name,
    description: spec.description,
    seconds: { normal: 12, quick: 6 },
    async run({ lab, sources, started, send, play }) {
      const bitrate = lab.options.bitrate;
      const probation = lab.options.policy.profiles["rtp-mpegts"]?.rtp?.probationPackets ?? 8;
      const destination = streamDestination(spec.flowIndex);
      const flow = await lab.flow({
        src: streamSource(spec.flowIndex),
        dst: destination.address,
        dstPort: destination.port,
        label: spec.name,
        attack: false,
      });
      const contributor = new SwitchingContributor(
        flow,
        spec.first(bitrate),
        spec.switches,
        bitrate,
        lab.now(),
      );
      send(contributor.source);
      const attacks = stageAttacks(lab, sources, contributor);
      const attackDelivered: Record<AttackName, number> = { hijack: 0, spoof: 0, replay: 0 };
      for (const source of Object.values(attacks)) send(source);

      lab.onDeliver = (deliveredFlow, payload) => {
        if (payload.length < 12) return;
        if (deliveredFlow === attacks.hijack.flow && payload.readUInt32BE(8) === HIJACK_SSRC)
          attackDelivered.hijack++;
        if (deliveredFlow === attacks.spoof.flow && (payload[1] & RTP_MARKER) !== 0) attackDelivered.spoof++;
        if (deliveredFlow !== flow) return;
        // The network never duplicates: a second copy is a replay let through.
        if (!contributor.delivered(payload)) attackDelivered.replay++;
      };

      await play(
        spec.switches.map(
          (s, i): Moment => [
            s.at,
            () => {
              contributor.switchTo(i, (lab.now() - started) / 1000);
              lab.event(`${spec.name}: ${s.what}`);
            },
          ],
        ),
      );
      return { verdict: (end) => judge(end, contributor, attacks, attackDelivered, probation) };
    },
  });
}

/** A contributor's stream: a bitrate, an SSRC, where its sequence starts, its PIDs and PSI version. */
export function contributorStream(
  bitrate: number,
  options: Omit<SyntheticStreamOptions, "bitrate">,
): SyntheticStream {
  return new SyntheticStream({ bitrate, ...options });
}
