import { autoscaling, cloudwatch } from "@pulumi/aws";
import { EMF_NAMESPACE, EmfDimension, EmfMetric } from "../../contracts/appliance-metrics.ts";
import { named, type StageConfig } from "../config.ts";

/**
 * Scale on what saturates an appliance: its single receive loop (pinned to one of two vCPUs, so
 * average CPU stays near 50 % while the loop is full). Target tracking on the packets each appliance
 * receives, and one more appliance whenever the kernel drops datagrams the loops could not read.
 */
export function scaleOnLoad(config: StageConfig, group: autoscaling.Group): void {
  const stage = [{ name: EmfDimension.stage, value: config.stage }];
  new autoscaling.Policy(named(config, "appliances-load"), {
    autoscalingGroupName: group.name,
    policyType: "TargetTrackingScaling",
    targetTrackingConfiguration: {
      customizedMetricSpecification: {
        namespace: EMF_NAMESPACE,
        metricName: EmfMetric.packetsReceived,
        metricDimensions: stage,
        // Each appliance reports its count per 60 s EMF interval; the Stage series' average over the
        // appliances is the per-appliance load target tracking needs.
        statistic: "Average",
      },
      targetValue: config.scaleOutPacketsPerSecond * 60,
    },
  });
  const stepOut = new autoscaling.Policy(named(config, "appliances-drops"), {
    autoscalingGroupName: group.name,
    policyType: "StepScaling",
    adjustmentType: "ChangeInCapacity",
    stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
  });
  new cloudwatch.MetricAlarm(named(config, "appliance-socket-drops"), {
    name: named(config, "appliance-socket-drops"),
    alarmDescription: "The kernel dropped GENEVE datagrams the appliances could not read in time: add one",
    namespace: EMF_NAMESPACE,
    metricName: EmfMetric.socketReceiveDrops,
    dimensions: { [EmfDimension.stage]: config.stage },
    statistic: "Sum",
    period: 60,
    evaluationPeriods: 2,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    alarmActions: [stepOut.arn],
  });
}
