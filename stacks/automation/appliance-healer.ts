import { cloudwatch } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { EMF_NAMESPACE, EmfDimension, EmfMetric, STALL_ALARM } from "../../contracts/appliance-metrics.ts";
import { HealerEnv } from "../../contracts/function-env.ts";
import { named, type StageConfig } from "../config.ts";
import {
  type AutomationRefs,
  type DeployedFunction,
  type FunctionNeeds,
  type Route,
  UNSCOPABLE_READS,
} from "./types.ts";

export function healerNeeds(config: StageConfig, refs: AutomationRefs): FunctionNeeds {
  return {
    environment: {
      [HealerEnv.targetGroupArn]: refs.targetGroupArn,
      [HealerEnv.autoScalingGroupName]: refs.autoScalingGroupName,
      [HealerEnv.minHealthy]: String(config.minAppliances),
    },
    permissions: [
      { actions: [...UNSCOPABLE_READS], resources: ["*"] },
      {
        actions: ["autoscaling:SetInstanceHealth", "autoscaling:SetDesiredCapacity"],
        resources: [refs.autoScalingGroupArn],
      },
    ],
  };
}

/** The two alarms the healer acts on: an unhealthy GWLB target, and an appliance that stalls. */
export function healerAlarms(config: StageConfig, refs: AutomationRefs) {
  const unhealthyHosts = new cloudwatch.MetricAlarm(named(config, "unhealthy-appliances"), {
    name: named(config, "unhealthy-appliances"),
    alarmDescription: "GWLB target group reports an unhealthy appliance (the healer replaces it)",
    namespace: "AWS/GatewayELB",
    metricName: "UnHealthyHostCount",
    dimensions: { TargetGroup: refs.targetGroupDimension, LoadBalancer: refs.loadBalancerDimension },
    statistic: "Maximum",
    period: 60,
    evaluationPeriods: 1,
    threshold: 1,
    comparisonOperator: "GreaterThanOrEqualToThreshold",
    treatMissingData: "notBreaching",
  });
  const stalled = new cloudwatch.MetricAlarm(named(config, "appliance-stalled"), {
    name: named(config, "appliance-stalled"),
    alarmDescription: "An appliance answers health checks but loses or holds back packets (the healer acts)",
    namespace: EMF_NAMESPACE,
    metricName: EmfMetric.forwardingStalled,
    dimensions: { [EmfDimension.stage]: config.stage },
    statistic: "Maximum",
    period: STALL_ALARM.periodSeconds,
    evaluationPeriods: STALL_ALARM.evaluationPeriods,
    threshold: 1,
    comparisonOperator: "GreaterThanOrEqualToThreshold",
    treatMissingData: "notBreaching",
  });

  return { unhealthyHosts, stalled };
}

export function routeHealer(
  route: Route,
  healer: DeployedFunction,
  alarms: ReturnType<typeof healerAlarms>,
): void {
  route("healer-alarms", healer, {
    eventPattern: pulumi.jsonStringify({
      source: ["aws.cloudwatch"],
      "detail-type": ["CloudWatch Alarm State Change"],
      resources: [alarms.unhealthyHosts.arn, alarms.stalled.arn],
    }),
  });
  route("healer-sweep", healer, { scheduleExpression: "rate(5 minutes)" });
}
