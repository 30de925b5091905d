import type { Source } from "../sources.ts";
import { defineCleanScenario } from "./scenario.ts";

export interface FailoverDetails {
  killed: string;
  flowsMoved: number;
  lossBound: number;
  detectionWindowMs: number;
  timeToDetectMs: number | null;
  timeToRecoverMs: number | null;
}

export const failover = defineCleanScenario<FailoverDetails>({
  name: "failover",
  description:
    "an appliance killed mid-stream (kill -9): the emulator's health checks notice, its flows move, loss stays within the detection window",
  seconds: { normal: 15, quick: 7 },
  cleanOnly: true,
  async run({ lab, sources, play, gaveUp }) {
    // The victim is the target carrying the most flows, so the test always moves something.
    const victim = lab.emulator.busiestTarget(sources.map((s) => s.flow));
    const onVictim = sources.filter((s) => s.flow.target === victim.index);
    let killedAt = 0;
    let detectedAt = 0;
    let recoveredAt = 0;
    const deliveredAtKill = new Map<Source, number>();
    await play([
      [
        0.3,
        () => {
          for (const s of onVictim) deliveredAtKill.set(s, s.stats!.received);
          killedAt = lab.now();
          lab.fleet.kill(victim.index);
          lab.event(`killed appliance ${victim.index + 1} (SIGKILL) carrying ${onVictim.length} flow(s)`);
          void lab
            .waitFor(() => victim.state === "unhealthy", "unhealthy", 10_000)
            .then(() => {
              detectedAt = lab.now();
              return lab.waitFor(
                () => onVictim.every((s) => s.stats!.received > (deliveredAtKill.get(s) ?? 0)),
                "recovery",
                10_000,
              );
            })
            .then(() => {
              recoveredAt = lab.now();
            })
            .catch(gaveUp("the killed appliance's flows to come back"));
        },
      ],
    ]);
    return {
      verdict: ({ totals, failures }) => {
        const o = lab.options;
        // What GWLB-style detection costs at most: the failed checks, one interval of phase, the check timeout.
        const windowMs = o.healthIntervalMs * (o.unhealthyThreshold + 1) + o.healthIntervalMs + 250;
        const affectedPps = onVictim.length * (o.bitrate / (188 * 7 * 8));
        const bound = Math.ceil((affectedPps * windowMs) / 1000);
        const lostOnSurvivors = totals.perStream
          .filter((p) => !onVictim.some((s) => s.stats!.name === p.name))
          .reduce((n, p) => n + p.lost, 0);
        if (onVictim.length === 0) failures.push("no flow was on the killed appliance");
        if (!detectedAt) failures.push("the emulator never marked the killed appliance unhealthy");
        if (!recoveredAt) failures.push("the moved flows never came back");
        if (totals.lost > bound)
          failures.push(
            `${totals.lost} packets lost, above the bound of ${bound} (${windowMs} ms of ${onVictim.length} flow(s))`,
          );
        if (lostOnSurvivors > 0)
          failures.push(`${lostOnSurvivors} packets lost on flows of the surviving appliances`);
        return {
          details: {
            killed: `appliance ${victim.index + 1}`,
            flowsMoved: onVictim.length,
            lossBound: bound,
            detectionWindowMs: windowMs,
            timeToDetectMs: detectedAt ? Math.round(detectedAt - killedAt) : null,
            timeToRecoverMs: recoveredAt ? Math.round(recoveredAt - killedAt) : null,
          },
          restore: {
            note: `replacing appliance ${victim.index + 1}`,
            action: () => lab.replace(lab.fleet.appliances[victim.index]),
          },
        };
      },
    };
  },
});
