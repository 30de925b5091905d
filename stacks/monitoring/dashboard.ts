/** The operators' dashboard: appliances, GWLB, MediaConnect, MediaLive, the automation, the alarms. */
import { cloudwatch } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { EMF_NAMESPACE, EmfDimension, EmfMetric } from "../../contracts/appliance-metrics.ts";
import {
  AUTOMATION_NAMESPACE,
  COMMON_METRIC,
  HealerMetric,
  RotatorMetric,
  ServiceName,
  StreamManagerMetric,
} from "../../contracts/automation-metrics.ts";
import { named, type StageConfig } from "../config.ts";
import type { MonitoringRefs } from "../monitoring.ts";
import { services } from "./alarms.ts";

export function createDashboard(
  config: StageConfig,
  refs: MonitoringRefs,
  alarms: cloudwatch.MetricAlarm[],
): cloudwatch.Dashboard {
  const body = pulumi.jsonStringify({
    widgets: [
      ...applianceWidgets(config),
      ...serviceWidgets(config, refs),
      ...automationWidgets(config, refs),
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
  return new cloudwatch.Dashboard(named(config, "dashboard"), {
    dashboardName: named(config, "dashboard"),
    dashboardBody: body,
  });
}

function applianceWidgets(config: StageConfig) {
  return [
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
  ];
}

function serviceWidgets(config: StageConfig, refs: MonitoringRefs) {
  return [
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
  ];
}

function automationWidgets(config: StageConfig, refs: MonitoringRefs) {
  return [
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
  ];
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
