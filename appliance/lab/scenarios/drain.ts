import { defineCleanScenario } from "./scenario.ts";

export interface DrainDetails {
  drained: string;
  flowsOnIt: number;
  deregistrationDelayMs: number;
  drainSeconds: number;
  exitCode: number | null;
}

export const drain = defineCleanScenario<DrainDetails>({
  name: "drain",
  description:
    "a rolling drain: one appliance deregistered and sent SIGTERM; its flows stay until the deregistration delay ends, then move; nothing is lost",
  seconds: { normal: 15, quick: 7 },
  cleanOnly: true,
  async run({ lab, sources, play }) {
    const target = lab.emulator.busiestTarget(sources.map((s) => s.flow));
    const appliance = lab.fleet.appliances[target.index];
    const onTarget = sources.filter((s) => s.flow.target === target.index);
    let exit: Promise<number | null> = Promise.resolve(null);
    let unhealthySeen = false;
    await play([
      [
        0.2,
        () => {
          lab.emulator.deregister(target.index);
          exit = lab.fleet.terminate(target.index);
          lab.event(
            `appliance ${target.index + 1}: deregistered and sent SIGTERM (${onTarget.length} flow(s) on it)`,
          );
        },
      ],
      [
        0.3,
        async () => {
          // No answer at all is as much a failure as a 200: both leave unhealthySeen false.
          const answer = await fetch(appliance.healthUrl).catch(() => null);
          unhealthySeen = answer?.status === 503;
        },
      ],
    ]);
    const exitCode = await exit;
    return {
      verdict: ({ totals, failures }) => {
        if (onTarget.length === 0) failures.push("no flow was on the drained appliance");
        if (totals.lost !== 0) failures.push(`${totals.lost} packets lost during the drain`);
        if (!unhealthySeen) failures.push("the draining appliance did not answer 503 on /healthz");
        if (exitCode !== 0) failures.push(`the drained appliance exited with ${exitCode}, not 0`);
        if (onTarget.some((s) => s.flow.target === target.index))
          failures.push("flows were not moved after the deregistration delay");
        return {
          details: {
            drained: `appliance ${target.index + 1}`,
            flowsOnIt: onTarget.length,
            deregistrationDelayMs: lab.options.deregistrationDelayMs,
            drainSeconds: lab.options.drainSeconds,
            exitCode,
          },
          restore: { note: `replacing appliance ${target.index + 1}`, action: () => lab.replace(appliance) },
        };
      },
    };
  },
});
