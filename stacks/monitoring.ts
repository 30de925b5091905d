/**
 * What an operator watches and is paged for: one CloudWatch dashboard (appliances, GWLB, MediaConnect,
 * MediaLive, automation) and alarms beyond the two that feed the healer: inspection capacity below the
 * minimum, appliances dropping far more than usual, MediaLive alerts, MediaConnect source loss, and the
 * automation's failures (events in the dead-letter queue, function errors, refused events). They notify
 * an SNS topic (with an e-mail subscription when the stage names one).
 */

import { cloudwatch, sns } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { EMF_NAMESPACE, EmfDimension, EmfMetric } from "../contracts/appliance-metrics.ts";
import {
  AUTOMATION_NAMESPACE,
  COMMON_METRIC,
  HealerMetric,
  RotatorMetric,
  ServiceName,
  StreamManagerMetric,
} from "../contracts/automation-metrics.ts";
import { named, type StageConfig } from "./config.ts";

export interface MonitoringRefs {
  targetGroupDimension: pulumi.Input<string>;
  loadBalancerDimension: pulumi.Input<string>;
  flowArn: pulumi.Input<string>;
  channelId: pulumi.Input<string>;
  deadLetterQueueName: pulumi.Input<string>;
  /** Lambda function names by ServiceName key. */
  functionNames: Record<keyof typeof ServiceName, string>;
}

export interface Monitoring {
  dashboard: cloudwatch.Dashboard;
  topic: sns.Topic;
  alarms: cloudwatch.MetricAlarm[];
}

export function createMonitoring(config: StageConfig, refs: MonitoringRefs): Monitoring {
  const topic = new sns.Topic(named(config, "operators"), { name: named(config, "operators") });
  if (config.alarmEmail) {
    new sns.TopicSubscription(named(config, "operators-email"), {
      topic: topic.arn,
      protocol: "email",
      endpoint: config.alarmEmail,
    });
  }
  const stage = { [EmfDimension.stage]: config.stage };
  const services = Object.keys(ServiceName) as (keyof typeof ServiceName)[];
  const alarm = (id: string, args: Omit<cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions" | "name">) =>
    new cloudwatch.MetricAlarm(named(config, id), {
      name: named(config, id),
      alarmActions: [topic.arn],
      okActions: [topic.arn],
      ...args,
    });
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
  const alarms = [
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
  const body = pulumi.jsonStringify({
    widgets: [
      widget(
        0,
        "Appliances: packets",
        [
          [EMF_NAMESPACE, EmfMetric.packetsReceived, EmfDimension.stage, config.stage],
          [".", EmfMetric.packetsForwarded, ".", "."],
          [".", EmfMetric.packetsDropped, ".", "."],
          [".", EmfMetric.socketReceiveDrops, ".", "."],
        ],
        config.region,
      ),
      widget(
        1,
        "Appliances: flows, stalls, latency",
        [
          [EMF_NAMESPACE, EmfMetric.activeFlows, EmfDimension.stage, config.stage],
          [".", EmfMetric.forwardingStalled, ".", "."],
          [".", EmfMetric.processingP99Micros, ".", "."],
        ],
        config.region,
      ),
      widget(
        2,
        "GWLB: target health and bytes",
        [
          [
            "AWS/GatewayELB",
            "HealthyHostCount",
            "TargetGroup",
            refs.targetGroupDimension,
            "LoadBalancer",
            refs.loadBalancerDimension,
          ],
          [".", "UnHealthyHostCount", ".", ".", ".", "."],
          ["AWS/GatewayELB", "ProcessedBytes", "LoadBalancer", refs.loadBalancerDimension],
        ],
        config.region,
      ),
      widget(
        3,
        "MediaConnect source",
        [
          ["AWS/MediaConnect", "SourceBitRate", "FlowARN", refs.flowArn],
          [".", "SourceNotRecoveredPackets", ".", "."],
        ],
        config.region,
      ),
      widget(
        4,
        "MediaLive",
        [
          ["AWS/MediaLive", "ActiveAlerts", "ChannelId", refs.channelId, "Pipeline", "0"],
          [".", "InputVideoFrameRate", ".", ".", ".", "0"],
        ],
        config.region,
      ),
      widget(
        5,
        "Automation: actions",
        [
          [AUTOMATION_NAMESPACE, HealerMetric.replacementsRequested, "service", ServiceName.applianceHealer],
          [".", RotatorMetric.rotations, ".", ServiceName.whitelistRotator],
          [".", StreamManagerMetric.idleStops, ".", ServiceName.streamManager],
        ],
        config.region,
      ),
      widget(
        6,
        "Automation: failures (alarmed)",
        [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", refs.deadLetterQueueName],
          ...services.map((key) => ["AWS/Lambda", "Errors", "FunctionName", refs.functionNames[key]]),
          ...services.map((key) => [
            AUTOMATION_NAMESPACE,
            COMMON_METRIC.invalidEvents,
            "service",
            ServiceName[key],
          ]),
        ],
        config.region,
      ),
      {
        type: "alarm",
        x: 12,
        y: 18,
        width: 12,
        height: 6,
        properties: { title: "Alarms", alarms: alarms.map((a) => a.arn) },
      },
    ],
  });
  const dashboard = new cloudwatch.Dashboard(named(config, "dashboard"), {
    dashboardName: named(config, "dashboard"),
    dashboardBody: body,
  });
  return { dashboard, topic, alarms };
}

function widget(index: number, title: string, metrics: unknown[][], region: string) {
  return {
    type: "metric",
    x: (index % 2) * 12,
    y: Math.floor(index / 2) * 6,
    width: 12,
    height: 6,
    properties: { title, metrics, region, period: 60, stat: "Sum" },
  };
}
