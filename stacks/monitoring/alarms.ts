/**
 * The operators' alarms, each notifying the topic when it fires and when it clears: inspection
 * capacity and drops, the media chain, and the automation's failures.
 */
import { cloudwatch, type sns } from "@pulumi/aws";
import { EMF_NAMESPACE, EmfDimension, EmfMetric } from "../../contracts/appliance-metrics.ts";
import { AUTOMATION_NAMESPACE, COMMON_METRIC, ServiceName } from "../../contracts/automation-metrics.ts";
import { named, type StageConfig } from "../config.ts";
import type { MonitoringRefs } from "../monitoring.ts";

type AlarmArgs = Omit<cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions" | "name">;
type Alarm = (id: string, args: AlarmArgs) => cloudwatch.MetricAlarm;

export const services = Object.keys(ServiceName) as (keyof typeof ServiceName)[];

export function createAlarms(
  config: StageConfig,
  refs: MonitoringRefs,
  topic: sns.Topic,
): cloudwatch.MetricAlarm[] {
  const alarm: Alarm = (id, args) =>
    new cloudwatch.MetricAlarm(named(config, id), {
      name: named(config, id),
      alarmActions: [topic.arn],
      okActions: [topic.arn],
      ...args,
    });
  return [
    ...inspectionAlarms(config, refs, alarm),
    ...mediaAlarms(refs, alarm),
    ...automationAlarms(refs, alarm),
  ];
}

function inspectionAlarms(config: StageConfig, refs: MonitoringRefs, alarm: Alarm) {
  const stage = { [EmfDimension.stage]: config.stage };
  return [
    alarm("inspection-capacity", {
      alarmDescription: `Fewer than ${config.minAppliances} healthy appliances: streams cannot start, and a further failure is an outage`,
      namespace: "AWS/GatewayELB",
      metricName: "HealthyHostCount",
      dimensions: { TargetGroup: refs.targetGroupDimension, LoadBalancer: refs.loadBalancerDimension },
      statistic: "Minimum",
      period: 60,
      evaluationPeriods: 2,
      threshold: config.minAppliances,
      comparisonOperator: "LessThanThreshold",
      treatMissingData: "breaching",
    }),
    alarm("appliance-drops", {
      alarmDescription:
        "Appliances dropped more than 1% of what they received for 5 minutes (attack, or a policy that no longer fits)",
      metricQueries: [
        {
          id: "dropped",
          metric: {
            namespace: EMF_NAMESPACE,
            metricName: EmfMetric.packetsDropped,
            dimensions: stage,
            period: 60,
            stat: "Sum",
          },
        },
        {
          id: "received",
          metric: {
            namespace: EMF_NAMESPACE,
            metricName: EmfMetric.packetsReceived,
            dimensions: stage,
            period: 60,
            stat: "Sum",
          },
        },
        // IF keeps a quiet minute (nothing received) at 0 % instead of dividing by zero.
        {
          id: "ratio",
          expression: "IF(received > 0, 100 * dropped / received, 0)",
          label: "drop %",
          returnData: true,
        },
      ],
      evaluationPeriods: 5,
      threshold: 1,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
    }),
  ];
}

function mediaAlarms(refs: MonitoringRefs, alarm: Alarm) {
  return [
    alarm("medialive-alerts", {
      alarmDescription: "MediaLive channel has active alerts",
      namespace: "AWS/MediaLive",
      metricName: "ActiveAlerts",
      dimensions: { ChannelId: refs.channelId, Pipeline: "0" },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 2,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      treatMissingData: "notBreaching",
    }),
    alarm("mediaconnect-source-loss", {
      alarmDescription: "MediaConnect source packets not recovered (contribution link trouble)",
      namespace: "AWS/MediaConnect",
      metricName: "SourceNotRecoveredPackets",
      dimensions: { FlowARN: refs.flowArn },
      statistic: "Sum",
      period: 60,
      evaluationPeriods: 3,
      threshold: 100,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
    }),
  ];
}

function automationAlarms(refs: MonitoringRefs, alarm: Alarm) {
  /** A failure that must never go unnoticed: any count at all in five minutes. */
  const anyInFiveMinutes = (
    id: string,
    args: Pick<cloudwatch.MetricAlarmArgs, "alarmDescription" | "namespace" | "metricName" | "dimensions">,
  ) =>
    alarm(id, {
      ...args,
      statistic: "Sum",
      period: 300,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
    });
  return [
    alarm("automation-dead-letters", {
      alarmDescription:
        "An automation event failed every retry and waits in the dead-letter queue: read it, fix the cause, redrive it",
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: refs.deadLetterQueueName },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
    }),
    ...services.flatMap((key) => [
      anyInFiveMinutes(`${ServiceName[key]}-errors`, {
        alarmDescription: `${ServiceName[key]} failed an invocation (Lambda retries it, then dead-letters it)`,
        namespace: "AWS/Lambda",
        metricName: "Errors",
        dimensions: { FunctionName: refs.functionNames[key] },
      }),
      anyInFiveMinutes(`${ServiceName[key]}-invalid-events`, {
        alarmDescription: `${ServiceName[key]} refused a malformed event or setting (nothing was changed)`,
        namespace: AUTOMATION_NAMESPACE,
        metricName: COMMON_METRIC.invalidEvents,
        dimensions: { service: ServiceName[key] },
      }),
    ]),
  ];
}
