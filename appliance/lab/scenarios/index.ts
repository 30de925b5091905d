import { attacks } from "./attacks.ts";
import { clean } from "./clean.ts";
import { drain } from "./drain.ts";
import { DRILLS } from "./drills.ts";
import { encoderRestart } from "./encoder-restart.ts";
import { failover } from "./failover.ts";
import { policyChange } from "./policy-change.ts";
import type { Scenario } from "./scenario.ts";
import { sourceFailover } from "./source-failover.ts";

/** Every preset, in the order the default run plays them. */
export const SCENARIOS: readonly Scenario[] = [
  clean,
  attacks,
  failover,
  drain,
  policyChange,
  encoderRestart,
  sourceFailover,
];

/** The fault drills (`--scenario drills`): kill -9 at peak, CPU starvation, policy source outage, burst. */
export { DRILLS };

export function scenarioNamed(name: string): Scenario | undefined {
  return [...SCENARIOS, ...DRILLS].find((s) => s.name === name);
}
