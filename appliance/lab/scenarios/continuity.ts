/**
 * What the encoder-restart and source-failover scenarios share: one contributor on its own flow whose
 * stream is switched mid-run (a restart, a failover), the loss each switch costs measured against its
 * bound, and, in the same run, the attacks the continuity rules must still refuse: a second SSRC
 * interleaved with a live stream, the same SSRC spoofed at another sequence position beside a live
 * stream, and replays of the switching stream's own recent packets.
 */
import { streamDestination, streamSource } from "../addressing.ts";
import type { Lab } from "../lab.ts";
import { SyntheticStream, type SyntheticStreamOptions } from "../media/synthetic-stream.ts";
import { attackSource, type Source } from "../sources.ts";
import {
  beginClean,
  diffDrops,
  finishClean,
  type Progress,
  result,
  runFor,
  type Scenario,
} from "./scenario.ts";

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

export function continuityScenario(spec: {
  name: string;
  description: string;
  /** Index of the contributor's flow in the lab's addressing (away from the clean streams). */
  flowIndex: number;
  first: (bitrate: number) => SyntheticStream;
  switches: StreamSwitch[];
}): Scenario {
  const scenario: Scenario = {
    name: spec.name,
    description: spec.description,
    async run(lab: Lab, progress: Progress) {
      const { started, before, duration, sources } = await beginClean(lab, 12, 6);
      const bitrate = lab.options.bitrate;
      const rtpPolicy = lab.options.policy.profiles["rtp-mpegts"]?.rtp;
      const probation = rtpPolicy?.probationPackets ?? 8;
      const destination = streamDestination(spec.flowIndex);
      const flow = await lab.flow({
        src: streamSource(spec.flowIndex),
        dst: destination.address,
        dstPort: destination.port,
        label: spec.name,
        attack: false,
      });
      // Streams that run from the start advance side by side, as a failover's sources do; one is sent.
      const streams: (SyntheticStream | null)[] = [
        spec.first(bitrate),
        ...spec.switches.map((s) => (s.runsFrom === "start" ? s.stream(bitrate) : null)),
      ];
      const intervalMs = streams[0]!.packetIntervalMs;
      let active = 0;
      const segments: Segment[] = [{ kind: "first", what: "start", at: 0, sent: 0, delivered: 0 }];
      const segmentOf = new Map<number, number>();
      const deliveredKeys = new Set<number>();
      const recent: Buffer[] = [];
      const key = (payload: Buffer) => payload.readUInt32BE(8) * 0x10000 + payload.readUInt16BE(2);
      const contributor: Source = {
        flow,
        stats: null,
        ssrc: 0,
        intervalMs,
        nextDue: lab.now(),
        sent: 0,
        next: (now) => {
          let out: Buffer | null = null;
          for (const [i, stream] of streams.entries()) {
            const packet = stream?.next(now) ?? null;
            if (i === active) out = packet;
          }
          if (out) {
            segmentOf.set(key(out), segments.length - 1);
            segments[segments.length - 1].sent++;
            recent.push(out);
            if (recent.length > REPLAY_DEPTH) recent.shift();
          }
          return out;
        },
      };
      lab.addSource(contributor);

      // The attacks, all started with the streams and running throughout.
      const now = lab.now();
      const hijackStream = new SyntheticStream({ bitrate: 4_000_000, ssrc: HIJACK_SSRC });
      const hijack = attackSource(sources[0].flow, ATTACK_RATE, now + 300, () =>
        hijackStream.next(lab.now()),
      );
      const spoofTarget = sources[Math.min(1, sources.length - 1)];
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
      const replay = attackSource(flow, ATTACK_RATE, now + 300, () =>
        Buffer.from(recent[0] ?? Buffer.alloc(0)),
      );
      const attacks = { hijack, spoof, replay };
      const attackDelivered = { hijack: 0, spoof: 0, replay: 0 };
      for (const source of Object.values(attacks)) lab.addSource(source);

      lab.onDeliver = (deliveredFlow, payload) => {
        if (payload.length < 12) return;
        if (deliveredFlow === hijack.flow && payload.readUInt32BE(8) === HIJACK_SSRC)
          attackDelivered.hijack++;
        if (deliveredFlow === spoof.flow && (payload[1] & RTP_MARKER) !== 0) attackDelivered.spoof++;
        if (deliveredFlow !== flow) return;
        const k = key(payload);
        if (deliveredKeys.has(k)) {
          attackDelivered.replay++; // the network never duplicates: a second copy is a replay let through
          return;
        }
        deliveredKeys.add(k);
        const segment = segmentOf.get(k);
        if (segment !== undefined) segments[segment].delivered++;
      };

      await runFor(
        lab,
        duration,
        progress,
        spec.switches.map((s, i) => [
          s.at,
          () => {
            active = i + 1;
            streams[active] ??= s.stream(bitrate);
            segments.push({
              kind: s.kind,
              what: s.what,
              at: (lab.now() - started) / 1000,
              sent: 0,
              delivered: 0,
            });
            lab.event(`${spec.name}: ${s.what}`);
          },
        ]),
      );
      lab.removeSources([contributor, ...Object.values(attacks)]);
      const totals = await finishClean(lab, sources);
      lab.onDeliver = null;
      const drops = diffDrops(before, await lab.dropsByReason());

      const failures: string[] = [];
      if (totals.lost !== 0) failures.push(`${totals.lost} packets lost on the clean streams`);
      if (segments[0].delivered !== segments[0].sent)
        failures.push(`${segments[0].sent - segments[0].delivered} packets lost before the first switch`);
      const handoverBound = Math.ceil(HANDOVER_BOUND_MS / intervalMs);
      const restarts = segments.slice(1).map((segment) => {
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
      for (const [name, source] of Object.entries(attacks)) {
        const delivered = attackDelivered[name as keyof typeof attackDelivered];
        if (source.sent === 0) failures.push(`${name}: no attack packet was sent`);
        if (delivered > 0) failures.push(`${name}: ${delivered} attack packets reached MediaLive`);
      }
      const attackSent = Object.values(attacks).reduce((n, s) => n + s.sent, 0);
      return result(scenario, started, lab, {
        clean: totals,
        attackSent,
        attackDelivered: Object.values(attackDelivered).reduce((n, v) => n + v, 0),
        drops,
        failures,
        details: {
          packetsLostPerRestart: restarts.map((r) => r.lost),
          restarts,
          attacks: Object.fromEntries(
            Object.entries(attacks).map(([name, s]) => [
              name,
              { sent: s.sent, delivered: attackDelivered[name as keyof typeof attackDelivered] },
            ]),
          ),
          probationPackets: probation,
          handoverBoundPackets: handoverBound,
          packetIntervalMs: Math.round(intervalMs * 1000) / 1000,
        },
      });
    },
  };
  return scenario;
}

/** A contributor's stream: a bitrate, an SSRC, where its sequence starts, its PIDs and PSI version. */
export function contributorStream(
  bitrate: number,
  options: Omit<SyntheticStreamOptions, "bitrate">,
): SyntheticStream {
  return new SyntheticStream({ bitrate, ...options });
}
