import { ATTACKER_SOURCE, streamDestination, streamSource } from "../addressing.ts";
import type { Flow } from "../gwlb/emulator.ts";
import type { Lab } from "../lab.ts";
import { attackSource, type Source, wellFormed } from "../sources.ts";
import { defineCleanScenario } from "./scenario.ts";

const HIJACK_SSRC = 0x0badc0de;

/** Per-flow packet ceiling of the lab policy's profile (see main.ts); the flood runs well above it. */
export const LAB_RATE_CEILING_PPS = 1000;
export const LAB_RATE_BURST_SECONDS = 0.5;

/** A flow of its own for one attack class, towards the first clean stream's MediaLive input. */
export function attackFlow(lab: Lab, label: string, src: string, dstPort: number): Promise<Flow> {
  return lab.flow({ src, dst: streamDestination(0).address, dstPort, label, attack: true });
}

type AttackName = "unlisted-source" | "wrong-port" | "ssrc-hijack" | "malformed-rtp" | "ts-garbage" | "flood";

interface AttackClass {
  name: AttackName;
  /** Drop reasons the appliance must report for this class. */
  reasons: string[];
  source: Source;
  delivered: number;
}

export interface AttackOutcome {
  sent: number;
  delivered: number;
  droppedAs: string[];
  dropped: number;
}

export interface AttacksDetails {
  attacks: Partial<Record<AttackName, AttackOutcome>>;
  floodCap: number;
  note: string;
}

/** Every attack class, each on the flow it attacks, each sent from the moment it is staged. */
async function stageAttacks(lab: Lab, victim: Flow, send: (source: Source) => void): Promise<AttackClass[]> {
  const now = lab.now();
  const valid = (ssrc: number) => wellFormed(ssrc, () => lab.now());
  const classes: AttackClass[] = [];
  const add = (name: AttackName, reasons: string[], source: Source) => {
    classes.push({ name, reasons, source, delivered: 0 });
    send(source);
  };
  const flow = (name: AttackName, src: string, dstPort: number) => attackFlow(lab, name, src, dstPort);
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
  add("ssrc-hijack", ["rtp_ssrc_changed"], attackSource(victim, 50, now + 500, valid(HIJACK_SSRC)));
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
  add(
    "flood",
    ["rate_packets", "rate_bits"],
    attackSource(await flow("flood", streamSource(93), 5003), LAB_RATE_CEILING_PPS * 4, now, valid(0x6a)),
  );
  return classes;
}

export const attacks = defineCleanScenario<AttacksDetails>({
  name: "attacks",
  description:
    "attacks mixed into clean traffic: unlisted source, wrong port, SSRC hijack, malformed RTP, TS garbage, flood; none may reach MediaLive, clean streams untouched",
  seconds: { normal: 15, quick: 6 },
  async run({ lab, sources, duration, send, play }) {
    const classes = await stageAttacks(lab, sources[0].flow, send);
    lab.onDeliver = (deliveredFlow, payload) => {
      for (const c of classes) {
        if (c.source.flow !== deliveredFlow) continue;
        if (c.name === "ssrc-hijack" && payload.readUInt32BE(8) !== HIJACK_SSRC) continue;
        c.delivered++;
      }
    };
    await play();
    return {
      verdict: ({ totals, drops, failures }) => {
        if (totals.lost !== 0) failures.push(`${totals.lost} clean packets lost`);
        const floodSeconds = duration / 1000;
        const floodCap = Math.ceil(LAB_RATE_CEILING_PPS * (floodSeconds + LAB_RATE_BURST_SECONDS) * 1.05);
        const perClass: AttacksDetails["attacks"] = {};
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
        return {
          attackSent: blocked.reduce((n, c) => n + c.source.sent, 0),
          attackDelivered: blocked.reduce((n, c) => n + c.delivered, 0),
          details: {
            attacks: perClass,
            floodCap,
            note: "flood packets under the per-flow ceiling are delivered by design and not counted as attack packets",
          },
        };
      },
    };
  },
});
