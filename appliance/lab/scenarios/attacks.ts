import { ATTACKER_SOURCE, streamDestination, streamSource } from "../addressing.ts";
import type { Lab } from "../lab.ts";
import { SyntheticStream } from "../media/synthetic-stream.ts";
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

const HIJACK_SSRC = 0x0badc0de;

interface AttackClass {
  name: string;
  /** Drop reasons the appliance must report for this class. */
  reasons: string[];
  source: Source;
  delivered: number;
}

/** Per-flow packet ceiling of the lab policy's profile (see main.ts); the flood runs well above it. */
export const LAB_RATE_CEILING_PPS = 1000;
export const LAB_RATE_BURST_SECONDS = 0.5;

export const attacks: Scenario = {
  name: "attacks",
  description:
    "attacks mixed into clean traffic: unlisted source, wrong port, SSRC hijack, malformed RTP, TS garbage, flood; none may reach MediaLive, clean streams untouched",
  async run(lab: Lab, progress: Progress) {
    const { started, before, duration, sources } = await beginClean(lab, 15, 6);
    const now = lab.now();
    const valid = (ssrc: number) => {
      const stream = new SyntheticStream({ bitrate: 4_000_000, ssrc });
      return () => stream.next(lab.now());
    };
    const flow = (label: string, src: string, dstPort: number) =>
      lab.flow({ src, dst: streamDestination(0).address, dstPort, label, attack: true });

    const classes: AttackClass[] = [];
    const add = (name: string, reasons: string[], source: Source) => {
      classes.push({ name, reasons, source, delivered: 0 });
      lab.addSource(source);
    };
    add(
      "unlisted-source",
      ["flow_not_allowed"],
      attackSource(await flow("unlisted-source", ATTACKER_SOURCE, 5000), 100, now, valid(0x66)),
    );
    add(
      "wrong-port",
      ["flow_not_allowed"],
      attackSource(await flow("wrong-port", streamSource(90), 6000), 100, now, valid(0x67)),
    );
    // The hijacker rides the first clean stream's own flow (same 5-tuple, so the same GWLB flow and
    // the same appliance) with a well-formed stream of its own SSRC.
    const hijack = valid(HIJACK_SSRC);
    add("ssrc-hijack", ["rtp_ssrc_changed"], attackSource(sources[0].flow, 50, now + 500, hijack));
    const malformedValid = valid(0x68);
    add(
      "malformed-rtp",
      ["rtp_version", "rtp_malformed"],
      attackSource(await flow("malformed-rtp", streamSource(91), 5001), 100, now, (n) => {
        const packet = malformedValid();
        if (n % 2 === 0) {
          packet[0] = 0x40; // version 1
          return packet;
        }
        return packet.subarray(0, 7); // shorter than an RTP header
      }),
    );
    const garbageValid = valid(0x69);
    add(
      "ts-garbage",
      ["ts_sync_lost"],
      attackSource(await flow("ts-garbage", streamSource(92), 5002), 100, now, (n) => {
        const packet = garbageValid();
        for (let i = 12; i < packet.length; i++) packet[i] = (i * 31 + n) & 0xff; // sync bytes gone
        return packet;
      }),
    );
    const floodRate = LAB_RATE_CEILING_PPS * 4;
    add(
      "flood",
      ["rate_packets", "rate_bits"],
      attackSource(await flow("flood", streamSource(93), 5003), floodRate, now, valid(0x6a)),
    );

    lab.onDeliver = (deliveredFlow, payload) => {
      for (const c of classes) {
        if (c.source.flow !== deliveredFlow) continue;
        if (c.name === "ssrc-hijack" && payload.readUInt32BE(8) !== HIJACK_SSRC) continue;
        c.delivered++;
      }
    };
    await runFor(lab, duration, progress);
    lab.removeSources(classes.map((c) => c.source));
    const totals = await finishClean(lab, sources);
    lab.onDeliver = null;
    const drops = diffDrops(before, await lab.dropsByReason());

    const failures: string[] = [];
    if (totals.lost !== 0) failures.push(`${totals.lost} clean packets lost`);
    const floodSeconds = duration / 1000;
    const floodCap = Math.ceil(LAB_RATE_CEILING_PPS * (floodSeconds + LAB_RATE_BURST_SECONDS) * 1.05);
    const perClass: Record<string, unknown> = {};
    for (const c of classes) {
      const dropped = c.reasons.reduce((n, r) => n + (drops[r] ?? 0), 0);
      perClass[c.name] = { sent: c.source.sent, delivered: c.delivered, droppedAs: c.reasons, dropped };
      if (c.name === "flood") {
        if (c.delivered > floodCap)
          failures.push(`flood: ${c.delivered} delivered, above the rate cap of ${floodCap}`);
        if (dropped === 0) failures.push("flood: nothing dropped for rate");
      } else {
        if (c.delivered > 0) failures.push(`${c.name}: ${c.delivered} attack packets reached MediaLive`);
        if (dropped < c.source.sent)
          failures.push(
            `${c.name}: ${c.source.sent} sent but only ${dropped} counted as ${c.reasons.join("/")}`,
          );
      }
    }
    // The flood is a well-formed flow above its ceiling: what fits under the ceiling is delivered by
    // design, so it is reported apart from the attack packets that must never get through.
    const blocked = classes.filter((c) => c.name !== "flood");
    const attackSent = blocked.reduce((n, c) => n + c.source.sent, 0);
    const attackDelivered = blocked.reduce((n, c) => n + c.delivered, 0);
    return result(attacks, started, lab, {
      clean: totals,
      attackSent,
      attackDelivered,
      drops,
      failures,
      details: {
        attacks: perClass,
        floodCap,
        note: "flood packets under the per-flow ceiling are delivered by design and not counted as attack packets",
      },
    });
  },
};
