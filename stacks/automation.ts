/**
 * The automation layer's wiring. `functionSpecs` is plain data (handler path, environment, IAM
 * statements scoped to this stack's ARNs) that sst.config.ts hands to `sst.aws.Function`, which needs
 * the SST CLI and so stays out of the testable modules; `createTriggers` then connects the deployed
 * functions to their EventBridge rules, schedules and alarms.
 */

import { cloudwatch, lambda } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { EMF_NAMESPACE, EmfDimension, EmfMetric, STALL_ALARM } from "../contracts/appliance-metrics.ts";
import { DetailType, EVENT_SOURCE } from "../contracts/events.ts";
import { FunctionHandler, HealerEnv, RotatorEnv, StreamManagerEnv } from "../contracts/function-env.ts";
import { named, type StageConfig } from "./config.ts";

export interface Statement {
  actions: string[];
  resources: pulumi.Input<string>[];
}

export interface FunctionSpec {
  name: "applianceHealer" | "whitelistRotator" | "streamManager";
  handler: string;
  environment: Record<string, pulumi.Input<string>>;
  permissions: Statement[];
}

export interface AutomationRefs {
  targetGroupArn: pulumi.Input<string>;
  /** `targetgroup/<name>/<id>` and `gwy/<name>/<id>`, the GWLB metric dimensions. */
  targetGroupDimension: pulumi.Input<string>;
  loadBalancerDimension: pulumi.Input<string>;
  autoScalingGroupName: pulumi.Input<string>;
  autoScalingGroupArn: pulumi.Input<string>;
  flowArn: pulumi.Input<string>;
  channelId: pulumi.Input<string>;
  channelArn: pulumi.Input<string>;
  policyParameter: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  contributorsParameter: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  stateParameter: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  eventBusArn: pulumi.Input<string>;
}

/**
 * Describe* calls of ELBv2, Auto Scaling and EC2 and CloudWatch's GetMetricData cannot be scoped to a
 * resource in IAM: they are the only statements with a "*" resource, and no statement anywhere has a
 * wildcard action.
 */
export const UNSCOPABLE_READS = [
  "elasticloadbalancing:DescribeTargetHealth",
  "autoscaling:DescribeAutoScalingGroups",
  "ec2:DescribeInstances",
  "cloudwatch:GetMetricData",
] as const;

export function functionSpecs(config: StageConfig, refs: AutomationRefs): FunctionSpec[] {
  const common = { STAGE: config.stage };
  return [
    {
      name: "applianceHealer",
      handler: FunctionHandler.applianceHealer,
      environment: {
        ...common,
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
    },
    {
      name: "whitelistRotator",
      handler: FunctionHandler.whitelistRotator,
      environment: {
        ...common,
        [RotatorEnv.contributorsParameter]: refs.contributorsParameter.name,
        [RotatorEnv.policyParameter]: refs.policyParameter.name,
        [RotatorEnv.policySetName]: "contributors",
        [RotatorEnv.flowArn]: refs.flowArn,
        [RotatorEnv.eventBusName]: "default",
      },
      permissions: [
        {
          actions: ["ssm:GetParameter"],
          resources: [refs.contributorsParameter.arn, refs.policyParameter.arn],
        },
        { actions: ["ssm:PutParameter"], resources: [refs.policyParameter.arn] },
        {
          actions: ["mediaconnect:DescribeFlow", "mediaconnect:UpdateFlowSource"],
          resources: [refs.flowArn],
        },
        { actions: ["events:PutEvents"], resources: [refs.eventBusArn] },
      ],
    },
    {
      name: "streamManager",
      handler: FunctionHandler.streamManager,
      environment: {
        ...common,
        [StreamManagerEnv.flowArn]: refs.flowArn,
        [StreamManagerEnv.channelId]: refs.channelId,
        [StreamManagerEnv.targetGroupArn]: refs.targetGroupArn,
        [StreamManagerEnv.minHealthyTargets]: String(config.minAppliances),
        [StreamManagerEnv.idleTimeoutMinutes]: String(config.idleTimeoutMinutes),
        [StreamManagerEnv.eventBusName]: "default",
        [StreamManagerEnv.stateParameter]: refs.stateParameter.name,
      },
      permissions: [
        { actions: ["elasticloadbalancing:DescribeTargetHealth"], resources: ["*"] },
        {
          actions: ["mediaconnect:DescribeFlow", "mediaconnect:StartFlow", "mediaconnect:StopFlow"],
          resources: [refs.flowArn],
        },
        {
          actions: ["medialive:DescribeChannel", "medialive:StartChannel", "medialive:StopChannel"],
          resources: [refs.channelArn],
        },
        { actions: ["ssm:GetParameter", "ssm:PutParameter"], resources: [refs.stateParameter.arn] },
        { actions: ["events:PutEvents"], resources: [refs.eventBusArn] },
      ],
    },
  ];
}

export interface DeployedFunction {
  arn: pulumi.Input<string>;
  name: pulumi.Input<string>;
}

export interface Triggers {
  rules: cloudwatch.EventRule[];
  targets: cloudwatch.EventTarget[];
  alarms: { unhealthyHosts: cloudwatch.MetricAlarm; stalled: cloudwatch.MetricAlarm };
}

export function createTriggers(
  config: StageConfig,
  refs: AutomationRefs,
  fns: Record<FunctionSpec["name"], DeployedFunction>,
): Triggers {
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

  const rules: cloudwatch.EventRule[] = [];
  const targets: cloudwatch.EventTarget[] = [];
  const route = (
    id: string,
    fn: DeployedFunction,
    spec: { eventPattern?: pulumi.Input<string>; scheduleExpression?: string; input?: string },
  ) => {
    const rule = new cloudwatch.EventRule(named(config, id), { name: named(config, id), ...spec });
    const target = new cloudwatch.EventTarget(named(config, `${id}-target`), {
      rule: rule.name,
      arn: fn.arn,
      input: spec.input,
    });
    new lambda.Permission(named(config, `${id}-invoke`), {
      action: "lambda:InvokeFunction",
      function: fn.name,
      principal: "events.amazonaws.com",
      sourceArn: rule.arn,
    });
    rules.push(rule);
    targets.push(target);
  };
  const pattern = (value: object) => pulumi.jsonStringify(value);

  route("healer-alarms", fns.applianceHealer, {
    eventPattern: pattern({
      source: ["aws.cloudwatch"],
      "detail-type": ["CloudWatch Alarm State Change"],
      resources: [unhealthyHosts.arn, stalled.arn],
    }),
  });
  route("healer-sweep", fns.applianceHealer, { scheduleExpression: "rate(5 minutes)" });
  route("rotator-schedule", fns.whitelistRotator, { scheduleExpression: "rate(1 minute)" });
  route("rotator-parameter", fns.whitelistRotator, {
    eventPattern: pattern({
      source: ["aws.ssm"],
      "detail-type": ["Parameter Store Change"],
      detail: { name: [refs.contributorsParameter.name] },
    }),
  });
  route("rotator-requested", fns.whitelistRotator, {
    eventPattern: pattern({ source: [EVENT_SOURCE], "detail-type": [DetailType.whitelistRotationRequested] }),
  });
  route("stream-commands", fns.streamManager, {
    eventPattern: pattern({
      source: [EVENT_SOURCE],
      "detail-type": [DetailType.startStream, DetailType.stopStream],
    }),
  });
  route("stream-media-events", fns.streamManager, {
    eventPattern: pattern({
      source: ["aws.mediaconnect", "aws.medialive"],
      "detail-type": [
        "MediaConnect Source Health",
        "MediaConnect Flow Status Change",
        "MediaLive Channel State Change",
        "MediaLive Channel Alert",
      ],
      resources: [refs.flowArn, refs.channelArn],
    }),
  });
  route("stream-idle-sweep", fns.streamManager, { scheduleExpression: "rate(1 minute)" });
  return { rules, targets, alarms: { unhealthyHosts, stalled } };
}
