/**
 * The automation layer's wiring. `functionSpecs` is plain data (name, handler path, environment,
 * concurrency, IAM statements scoped to this stack's ARNs) that sst.config.ts hands to
 * `sst.aws.Function`, which needs the SST CLI and so stays out of the testable modules;
 * `createTriggers` then connects the deployed functions to their EventBridge rules, Scheduler windows
 * and alarms, each delivery with a retry policy and the dead-letter queue behind it.
 */

import type { cloudwatch, iam, scheduler } from "@pulumi/aws";
import { healerAlarms, healerNeeds, routeHealer } from "./automation/appliance-healer.ts";
import { asyncFailuresToDeadLetters, createRouter, ruleDeadLetterPolicy } from "./automation/delivery.ts";
import { streamWindows } from "./automation/schedule.ts";
import { routeStreamManager, streamManagerNeeds } from "./automation/stream-manager.ts";
import {
  type AutomationRefs,
  type DeployedFunction,
  type FunctionKey,
  type FunctionSpec,
  functionSpec,
} from "./automation/types.ts";
import { rotatorNeeds, routeRotator } from "./automation/whitelist-rotator.ts";
import type { StageConfig } from "./config.ts";

export { DELIVERY_RETRY } from "./automation/delivery.ts";
export { windowInput } from "./automation/schedule.ts";
export { MEDIA_DETAIL_TYPES } from "./automation/stream-manager.ts";
export { type AutomationRefs, type FunctionSpec, functionName } from "./automation/types.ts";

export function functionSpecs(config: StageConfig, refs: AutomationRefs): FunctionSpec[] {
  return [
    functionSpec(config, refs, "applianceHealer", healerNeeds(config, refs)),
    functionSpec(config, refs, "whitelistRotator", rotatorNeeds(refs)),
    functionSpec(config, refs, "streamManager", streamManagerNeeds(config, refs)),
  ];
}

export interface Triggers {
  rules: cloudwatch.EventRule[];
  targets: cloudwatch.EventTarget[];
  schedules: scheduler.Schedule[];
  /** The role Scheduler assumes to invoke the stream manager and to dead-letter what it could not. */
  schedulerPolicy: iam.RolePolicy;
  alarms: { unhealthyHosts: cloudwatch.MetricAlarm; stalled: cloudwatch.MetricAlarm };
}

export function createTriggers(
  config: StageConfig,
  refs: AutomationRefs,
  fns: Record<FunctionKey, DeployedFunction>,
): Triggers {
  const alarms = healerAlarms(config, refs);
  asyncFailuresToDeadLetters(config, refs, fns);
  const { route, rules, targets } = createRouter(config, refs);
  routeHealer(route, fns.applianceHealer, alarms);
  routeRotator(route, fns.whitelistRotator, refs);
  routeStreamManager(route, fns.streamManager, refs);
  // EventBridge dead-letters with the queue's resource policy, for these rules only.
  ruleDeadLetterPolicy(config, refs, rules);
  const { schedules, schedulerPolicy } = streamWindows(config, refs, fns.streamManager);
  return { rules, targets, schedules, schedulerPolicy, alarms };
}
