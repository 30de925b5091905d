/**
 * What an operator watches and is paged for: one CloudWatch dashboard (appliances, GWLB, MediaConnect,
 * MediaLive, automation) and alarms beyond the two that feed the healer: inspection capacity below the
 * minimum, appliances dropping far more than usual, MediaLive alerts, MediaConnect source loss, and the
 * automation's failures (events in the dead-letter queue, function errors, refused events). They notify
 * an SNS topic (with an e-mail subscription when the stage names one).
 */

import { type cloudwatch, sns } from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import type { ServiceName } from "../contracts/automation-metrics.ts";
import type { AutomationRefs } from "./automation.ts";
import { named, type StageConfig } from "./config.ts";
import { createAlarms } from "./monitoring/alarms.ts";
import { createDashboard } from "./monitoring/dashboard.ts";

export type MonitoringRefs = Pick<
  AutomationRefs,
  "targetGroupDimension" | "loadBalancerDimension" | "flowArn" | "channelId"
> & {
  deadLetterQueueName: pulumi.Input<string>;
  /** Lambda function names by ServiceName key. */
  functionNames: Record<keyof typeof ServiceName, string>;
};

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
  const alarms = createAlarms(config, refs, topic);
  const dashboard = createDashboard(config, refs, alarms);
  return { dashboard, topic, alarms };
}
