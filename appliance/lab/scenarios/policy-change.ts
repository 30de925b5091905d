import type { PolicyInput } from "../../../contracts/policy.ts";
import { ROTATED_IN_SOURCE, ROTATED_OUT_SOURCE, streamDestination } from "../addressing.ts";
import type { Lab } from "../lab.ts";
import { SyntheticStream } from "../media/synthetic-stream.ts";
import { attackSource, type Source } from "../sources.ts";
import { defineCleanScenario } from "./scenario.ts";

/** Grace after every appliance reports the new generation, for packets already in flight. */
const GRACE_MS = 100;

export interface ContributorOutcome {
  source: string;
  sent: number;
  deliveredBefore: number;
  deliveredAfter: number;
}

export interface PolicyChangeDetails {
  timeToApplyMs: number | null;
  removedContributor: ContributorOutcome;
  addedContributor: ContributorOutcome;
}

/** A contributor outside the clean streams, at the lab's bitrate, on a flow of its own. */
async function contributor(lab: Lab, label: string, src: string, ssrc: number, now: number): Promise<Source> {
  const flow = await lab.flow({
    src,
    dst: streamDestination(0).address,
    dstPort: 5050,
    label,
    attack: false,
  });
  const stream = new SyntheticStream({ bitrate: lab.options.bitrate, ssrc });
  return attackSource(flow, 1000 / stream.packetIntervalMs, now, () => stream.next(lab.now()));
}

/** When the rotation was written and in force everywhere, and the two contributors' packets either side. */
interface Rotation {
  rotatedAt: number;
  appliedAt: number;
  count: { leavingBefore: number; leavingAfter: number; joiningBefore: number; joiningAfter: number };
}

function rotationFailures({ appliedAt, count }: Rotation, lost: number): string[] {
  const failures: string[] = [];
  if (!Number.isFinite(appliedAt)) failures.push("the rotated policy never took effect on every appliance");
  if (lost !== 0) failures.push(`${lost} packets lost on streams the rotation kept`);
  if (count.leavingBefore === 0)
    failures.push("the leaving contributor was not delivered before the rotation");
  if (count.leavingAfter !== 0)
    failures.push(`${count.leavingAfter} packets of the removed contributor delivered after the rotation`);
  if (count.joiningBefore !== 0)
    failures.push(`${count.joiningBefore} packets of the new contributor delivered before the rotation`);
  if (count.joiningAfter === 0) failures.push("the new contributor was not delivered after the rotation");
  return failures;
}

export const policyChange = defineCleanScenario<PolicyChangeDetails>({
  name: "policy-change",
  description:
    "a whitelist rotation mid-run: one contributor removed, another added, without a restart; streams that stay allowed lose nothing",
  seconds: { normal: 12, quick: 6 },
  async run({ lab, send, play, gaveUp }) {
    const original = structuredClone(lab.options.policy);
    const rotated: PolicyInput = structuredClone(original);
    rotated.sets = { ...rotated.sets, mediaconnect: ["10.0.1.0/25", "10.0.2.0/24"] };
    const now = lab.now();
    const leaving = await contributor(lab, "rotated-out", ROTATED_OUT_SOURCE, 0x0a0a, now);
    const joining = await contributor(lab, "rotated-in", ROTATED_IN_SOURCE, 0x0b0b, now);
    send(leaving);
    send(joining);
    const rotation: Rotation = {
      rotatedAt: 0,
      appliedAt: Number.POSITIVE_INFINITY,
      count: { leavingBefore: 0, leavingAfter: 0, joiningBefore: 0, joiningAfter: 0 },
    };
    const { count } = rotation;
    // The removed contributor must be gone once every appliance runs the new policy; the added one must
    // not get through before the new policy was even written (appliances pick it up one by one).
    lab.onDeliver = (flow) => {
      const now = lab.now();
      if (flow === leaving.flow)
        count[now > rotation.appliedAt + GRACE_MS ? "leavingAfter" : "leavingBefore"]++;
      if (flow === joining.flow) count[rotation.rotatedAt > 0 ? "joiningAfter" : "joiningBefore"]++;
    };
    const generationsBefore = await lab.policyGenerations();
    await play([
      [
        0.35,
        () => {
          rotation.rotatedAt = lab.now();
          lab.writePolicy(rotated);
          lab.event("whitelist rotated: mediaconnect = 10.0.1.0/25, 10.0.2.0/24");
          void lab
            .waitFor(
              async () => (await lab.policyGenerations()).every((g, i) => g > generationsBefore[i]),
              "new policy generation everywhere",
              10_000,
            )
            .then(() => {
              rotation.appliedAt = lab.now();
              const ms = Math.round(rotation.appliedAt - rotation.rotatedAt);
              lab.event(`rotation in force on every appliance after ${ms} ms`);
            })
            .catch(gaveUp("the rotated policy on every appliance"));
        },
      ],
    ]);
    const outcome = (source: Source, before: number, after: number): ContributorOutcome => ({
      source: source === leaving ? ROTATED_OUT_SOURCE : ROTATED_IN_SOURCE,
      sent: source.sent,
      deliveredBefore: before,
      deliveredAfter: after,
    });
    return {
      settle: async () => {
        lab.writePolicy(original);
        await lab.waitFor(
          async () => (await lab.policyGenerations()).every((g, i) => g >= generationsBefore[i] + 2),
          "original policy back",
          10_000,
        );
      },
      verdict: ({ totals, failures }) => {
        failures.push(...rotationFailures(rotation, totals.lost));
        const { appliedAt, rotatedAt } = rotation;
        return {
          attackSent: 0,
          details: {
            timeToApplyMs: Number.isFinite(appliedAt) ? Math.round(appliedAt - rotatedAt) : null,
            removedContributor: outcome(leaving, count.leavingBefore, count.leavingAfter),
            addedContributor: outcome(joining, count.joiningBefore, count.joiningAfter),
          },
        };
      },
    };
  },
});
