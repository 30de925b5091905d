/**
 * Appliance healer. Triggers: "CloudWatch Alarm State Change" for the target group's UnHealthyHostCount
 * alarm and for the appliances' stall alarm (ForwardingStalled), and a scheduled sweep. Finds
 * unhealthy appliances (DescribeTargetHealth; for the stall alarm, the InstanceId the alarm names or,
 * for the Stage-wide alarm the stack deploys, the instances whose own ForwardingStalled series
 * breached over the alarm's window, from GetMetricData) and asks the Auto Scaling group to replace one
 * (SetInstanceHealth Unhealthy), with guardrails: one replacement in flight at most, never fewer in-service appliances than the minimum (scale out first,
 * within the group's max), instances in their grace period or already leaving are left alone, an
 * alarm back to OK changes nothing. Every decision is logged and counted.
 *
 * It is the one owner of target-health replacement (the group's own health checks are EC2's only), and
 * runs one invocation at a time (reserved concurrency 1) and once per event id (Powertools
 * Idempotency), so two deliveries or two alarms never replace two appliances at once.
 */
import type { AutoScalingGroup, Instance } from "@aws-sdk/client-auto-scaling";
import type { TargetHealthDescription } from "@aws-sdk/client-elastic-load-balancing-v2";
import type { Context } from "aws-lambda";
import { z } from "zod";
import { EMF_NAMESPACE, EmfDimension, EmfMetric, STALL_ALARM } from "../contracts/appliance-metrics.ts";
import { HealerMetric, ServiceName } from "../contracts/automation-metrics.ts";
import { HealerEnv } from "../contracts/function-env.ts";
import {
  autoScalingClient,
  describeGroup,
  markUnhealthy,
  setDesiredCapacity,
} from "./lib/aws/autoscaling.ts";
import { cloudWatchClient, metricData } from "./lib/aws/cloudwatch.ts";
import { ec2Client, launchTimes } from "./lib/aws/ec2.ts";
import { elbClient, targetHealth } from "./lib/aws/elb.ts";
import { AlarmDetail } from "./lib/events.ts";
import { arn, defineFunction, Envelope, InvalidInputError, isSchedule, parse } from "./lib/function.ts";
import { oncePerEvent } from "./lib/idempotency.ts";

const Settings = z.object({
  [HealerEnv.targetGroupArn]: arn("elasticloadbalancing"),
  [HealerEnv.autoScalingGroupName]: z.string().min(1),
  [HealerEnv.minHealthy]: z.coerce.number().int().min(1).default(2),
});

const { logger, count, readSettings, handle } = defineFunction(ServiceName.applianceHealer, Settings);

type Settings = z.output<typeof Settings>;

export const clients = {
  elb: elbClient,
  autoScaling: autoScalingClient,
  ec2: ec2Client,
  cloudWatch: cloudWatchClient,
};

/** What a stall alarm says: the instance it names, or the series it watched (to look per instance). */
interface StallAlarm {
  instanceId?: string;
  namespace: string;
  dimensions: Record<string, string>;
  periodSeconds: number;
}

/**
 * The instance a stall alarm names or, for a Stage-wide alarm, the in-service instances whose own
 * ForwardingStalled series was at 1 in each of the alarm's evaluation periods (the most recent
 * datapoints), so the healer acts on the appliance that tripped it and not on a neighbour. An instance
 * with fewer datapoints (no EMF lines yet, or a gap) is not counted as stalled.
 */
async function stalledInstances(alarm: StallAlarm, instanceIds: string[], now: Date): Promise<string[]> {
  if (alarm.instanceId) return [alarm.instanceId];
  if (instanceIds.length === 0) return [];
  const windowSeconds = alarm.periodSeconds * (STALL_ALARM.evaluationPeriods + 1);
  const results = await metricData({
    StartTime: new Date(now.getTime() - windowSeconds * 1000),
    EndTime: now,
    ScanBy: "TimestampDescending",
    MetricDataQueries: instanceIds.map((instanceId, i) => ({
      Id: `i${i}`,
      Label: instanceId,
      ReturnData: true,
      MetricStat: {
        Metric: {
          Namespace: alarm.namespace,
          MetricName: EmfMetric.forwardingStalled,
          Dimensions: Object.entries({ ...alarm.dimensions, [EmfDimension.instanceId]: instanceId }).map(
            ([Name, Value]) => ({ Name, Value }),
          ),
        },
        Period: alarm.periodSeconds,
        Stat: "Maximum",
      },
    })),
  });
  const stalled: string[] = [];
  for (const series of results) {
    const index = Number(series.Id?.slice(1));
    const recent = (series.Values ?? []).slice(0, STALL_ALARM.evaluationPeriods);
    if (recent.length === STALL_ALARM.evaluationPeriods && recent.every((v) => v >= 1))
      stalled.push(instanceIds[index]);
  }
  logger.info("stall alarm: per-instance series read", { instances: instanceIds, stalled });
  return stalled;
}

export type Decision =
  | { action: "none"; reason: string }
  | { action: "replace"; instanceId: string; reason: string }
  | { action: "scale-out"; desiredCapacity: number; reason: string }
  | { action: "skip"; instanceId?: string; reason: string };

/** An instance launching, terminating, or already marked for replacement: a replacement in flight. */
const IN_FLIGHT = /^(Pending|Terminating)/;

type GroupView = { instances: Instance[]; desired: number; max: number; graceSeconds: number };

function decide(
  reason: string,
  candidates: string[],
  group: GroupView,
  launchTimes: Map<string, Date>,
  minHealthy: number,
  now: Date,
): Decision {
  const inFlight = group.instances.find(
    (i) => IN_FLIGHT.test(i.LifecycleState ?? "") || i.HealthStatus === "Unhealthy",
  );
  if (inFlight)
    return {
      action: "skip",
      instanceId: inFlight.InstanceId,
      reason: `a replacement is already in flight (${inFlight.InstanceId}: ${inFlight.LifecycleState}, ${inFlight.HealthStatus})`,
    };
  for (const instanceId of candidates) {
    if (!replaceable(instanceId, group, launchTimes.get(instanceId), now)) continue;
    const inService = group.instances.filter((i) => i.LifecycleState === "InService").length;
    if (inService - 1 >= minHealthy) return { action: "replace", instanceId, reason };
    if (group.desired < group.max) {
      return {
        action: "scale-out",
        desiredCapacity: group.desired + 1,
        reason: `replacing ${instanceId} would leave ${inService - 1} < ${minHealthy} in service: adding one first`,
      };
    }
    return {
      action: "skip",
      instanceId,
      reason: `replacing ${instanceId} would leave ${inService - 1} < ${minHealthy} in service and the group is at its max (${group.max})`,
    };
  }
  return {
    action: "none",
    reason: candidates.length ? "no candidate can be replaced now" : "no unhealthy appliance",
  };
}

/** An instance of the group, in service and past its grace period; otherwise logged as skipped. */
function replaceable(instanceId: string, group: GroupView, launched: Date | undefined, now: Date): boolean {
  const instance = group.instances.find((i) => i.InstanceId === instanceId);
  if (!instance) {
    logger.info("skipped: target is not an instance of the group", { instanceId });
    return false;
  }
  if (instance.LifecycleState !== "InService") {
    logger.info("skipped: instance is not in service", {
      instanceId,
      lifecycleState: instance.LifecycleState,
    });
    return false;
  }
  if (launched && now.getTime() - launched.getTime() < group.graceSeconds * 1000) {
    logger.info("skipped: instance is inside its health-check grace period", {
      instanceId,
      launched: launched.toISOString(),
    });
    return false;
  }
  return true;
}

/** Looks up the candidates (stalled first, then unhealthy targets), decides, and acts on the decision. */
async function sweep(reason: string, stall: StallAlarm | undefined, settings: Settings): Promise<Decision> {
  const unhealthy = unhealthyTargets(await targetHealth(settings[HealerEnv.targetGroupArn]));
  count(HealerMetric.unhealthyTargets, unhealthy.length);
  const group = await describeGroup(settings[HealerEnv.autoScalingGroupName]);
  if (!group) throw new Error(`Auto Scaling group ${settings[HealerEnv.autoScalingGroupName]} not found`);
  const now = new Date();
  const inService = (group.Instances ?? [])
    .filter((i) => i.LifecycleState === "InService" && i.InstanceId)
    .map((i) => i.InstanceId!);
  const stalled = stall ? await stalledInstances(stall, inService, now) : [];
  const candidates = [...stalled, ...unhealthy.filter((id) => !stalled.includes(id))];
  const launched = candidates.length > 0 ? await launchTimes(candidates) : new Map<string, Date>();
  const decision = decide(
    reason,
    candidates,
    groupView(group),
    launched,
    settings[HealerEnv.minHealthy],
    now,
  );
  await apply(decision, group);
  logger.info(`decision: ${decision.action}`, { decision, unhealthyTargets: unhealthy });
  return decision;
}

function unhealthyTargets(targets: TargetHealthDescription[]): string[] {
  return targets
    .filter((t) => t.TargetHealth?.State === "unhealthy" || t.TargetHealth?.State === "unavailable")
    .map((t) => t.Target?.Id)
    .filter((id): id is string => Boolean(id));
}

function groupView(group: AutoScalingGroup): GroupView {
  return {
    instances: group.Instances ?? [],
    desired: group.DesiredCapacity ?? 0,
    max: group.MaxSize ?? 0,
    graceSeconds: group.HealthCheckGracePeriod ?? 0,
  };
}

async function apply(decision: Decision, group: AutoScalingGroup): Promise<void> {
  if (decision.action === "replace") {
    await markUnhealthy(decision.instanceId);
    count(HealerMetric.replacementsRequested);
  } else if (decision.action === "scale-out") {
    await setDesiredCapacity(group.AutoScalingGroupName, decision.desiredCapacity);
    count(HealerMetric.scaleOuts);
  } else if (decision.action === "skip") {
    count(HealerMetric.skipped);
  }
}

/** What an event asks of the healer, read and validated before anything is looked up or changed. */
type Trigger =
  | { id: string; kind: "sweep"; reason: string }
  | { id: string; kind: "alarm"; reason: string; stall?: StallAlarm }
  | { id: string; kind: "ok"; reason: string };

export function readTrigger(raw: unknown): Trigger {
  const event = parse(Envelope, raw, "event");
  if (isSchedule(event)) return { id: event.id, kind: "sweep", reason: "scheduled sweep" };
  if (event["detail-type"] !== "CloudWatch Alarm State Change" || event.source !== "aws.cloudwatch") {
    throw new InvalidInputError(`unexpected event ${event.source} / ${event["detail-type"]}`);
  }
  const alarm = parse(AlarmDetail, event.detail, "alarm detail");
  if (alarm.state.value !== "ALARM")
    return { id: event.id, kind: "ok", reason: `alarm ${alarm.alarmName} is ${alarm.state.value}` };
  // In a metric-math alarm the ForwardingStalled series can be any entry, and not the first.
  const stat = alarm.configuration?.metrics?.find(
    (m) => m.metricStat?.metric?.name === EmfMetric.forwardingStalled,
  )?.metricStat;
  const metric = stat?.metric;
  const stall: StallAlarm | undefined = metric
    ? {
        instanceId: metric.dimensions?.[EmfDimension.instanceId],
        namespace: metric.namespace ?? EMF_NAMESPACE,
        dimensions: metric.dimensions ?? {},
        periodSeconds: stat?.period ?? STALL_ALARM.periodSeconds,
      }
    : undefined;
  return { id: event.id, kind: "alarm", reason: `alarm ${alarm.alarmName}`, stall };
}

const actOnce = oncePerEvent(
  async (job: { id: string; trigger: Trigger; settings: Settings }): Promise<Decision> =>
    sweep(job.trigger.reason, job.trigger.kind === "alarm" ? job.trigger.stall : undefined, job.settings),
);

export const handler = handle(async (raw: unknown, context?: Context): Promise<Decision> => {
  const trigger = readTrigger(raw);
  const settings = readSettings();
  if (trigger.kind === "ok") {
    const decision: Decision = { action: "none", reason: trigger.reason };
    logger.info("decision: none", { decision });
    return decision;
  }
  return actOnce({ id: trigger.id, trigger, settings }, context);
});
