import type { Lab } from "../lab.ts";
import {
  beginClean,
  endClean,
  expectNoDrops,
  type Progress,
  result,
  runFor,
  type Scenario,
} from "./scenario.ts";

export const drain: Scenario = {
  name: "drain",
  description:
    "a rolling drain: one appliance deregistered and sent SIGTERM; its flows stay until the deregistration delay ends, then move; nothing is lost",
  async run(lab: Lab, progress: Progress) {
    const { started, before, duration, sources } = await beginClean(lab, 15, 7);
    const target = lab.emulator.busiestTarget();
    const onTarget = sources.filter((s) => s.flow.target === target.index);
    let exit: Promise<number | null> = Promise.resolve(null);
    let unhealthySeen = false;
    await runFor(lab, duration, progress, [
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
          const answer = await fetch(lab.fleet.appliances[target.index].healthUrl).catch(() => null);
          unhealthySeen = answer?.status === 503;
        },
      ],
    ]);
    const exitCode = await exit;
    const { totals, drops } = await endClean(lab, sources, before);
    const failures: string[] = [];
    if (onTarget.length === 0) failures.push("no flow was on the drained appliance");
    if (totals.lost !== 0) failures.push(`${totals.lost} packets lost during the drain`);
    if (!unhealthySeen) failures.push("the draining appliance did not answer 503 on /healthz");
    if (exitCode !== 0) failures.push(`the drained appliance exited with ${exitCode}, not 0`);
    if (onTarget.some((s) => s.flow.target === target.index))
      failures.push("flows were not moved after the deregistration delay");
    expectNoDrops(drops, failures);
    progress(1, `replacing appliance ${target.index + 1}`);
    await lab.replace(lab.fleet.appliances[target.index]);
    return result(drain, started, lab, {
      clean: totals,
      drops,
      failures,
      details: {
        drained: `appliance ${target.index + 1}`,
        flowsOnIt: onTarget.length,
        deregistrationDelayMs: lab.options.deregistrationDelayMs,
        drainSeconds: lab.options.drainSeconds,
        exitCode,
      },
    });
  },
};
