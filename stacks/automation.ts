/**
 * The automation layer's wiring. `functionSpecs` is plain data (name, handler path, environment,
 * concurrency, IAM statements scoped to this stack's ARNs) that sst.config.ts hands to
 * `sst.aws.Function`, which needs the SST CLI and so stays out of the testable modules;
 * `createTriggers` then connects the deployed functions to their EventBridge rules, Scheduler windows
 * and alarms, each delivery with a retry policy and the dead-letter queue behind it.
 */

import { cloudwatch, iam, lambda, scheduler, sqs } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { EMF_NAMESPACE, EmfDimension, EmfMetric, STALL_ALARM } from "../contracts/appliance-metrics.ts";
import { ServiceName } from "../contracts/automation-metrics.ts";
import { DetailType, EVENT_SOURCE } from "../contracts/events.ts";
import {
  CommonEnv,
  FunctionHandler,
  HealerEnv,
  RotatorEnv,
  StreamManagerEnv,
} from "../contracts/function-env.ts";
import { named, type StageConfig } from "./config.ts";

export interface Statement {
  actions: string[];
  resources: pulumi.Input<string>[];
}

export type FunctionKey = "applianceHealer" | "whitelistRotator" | "streamManager";

export interface FunctionSpec {
  name: FunctionKey;
  /** The Lambda function's name: fixed, so alarms and the dashboard can name it before it exists. */
  functionName: string;
  handler: string;
  environment: Record<string, pulumi.Input<string>>;
  permissions: Statement[];
  /**
   * One invocation at a time: two healer runs cannot replace two appliances at once, two rotations
   * cannot interleave their writes, a start cannot race a stop. Asynchronous invocations beyond it
   * wait in Lambda's queue and are retried, not dropped.
   */
  reservedConcurrency: number;
}

export interface AutomationRefs {
  targetGroupArn: pulumi.Input<string>;
  /** `targetgroup/<name>/<id>` and `gwy/<name>/<id>`, the GWLB metric dimensions. */
  targetGroupDimension: pulumi.Input<string>;
  loadBalancerDimension: pulumi.Input<string>;
  autoScalingGroupName: pulumi.Input<string>;
  autoScalingGroupArn: pulumi.Input<string>;
  flowArn: pulumi.Input<string>;
  /** The flow's sources: UpdateFlowSource is authorized on the flow and on the source. */
  flowSourceArns: pulumi.Input<string>[];
  channelId: pulumi.Input<string>;
  channelArn: pulumi.Input<string>;
  policyParameter: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  contributorsParameter: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  stateParameter: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  eventBusArn: pulumi.Input<string>;
  idempotencyTable: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  deadLetterQueueArn: pulumi.Input<string>;
  accountId: pulumi.Input<string>;
}

/**
 * Describe* calls of ELBv2, Auto Scaling and EC2 and CloudWatch's GetMetricData cannot be scoped to a
 * resource in IAM (the Service Authorization Reference requires no resource type for them): they are the
 * functions' only statements with a "*" resource, and no statement anywhere has a wildcard action.
 */
export const UNSCOPABLE_READS = [
  "elasticloadbalancing:DescribeTargetHealth",
  "autoscaling:DescribeAutoScalingGroups",
  "ec2:DescribeInstances",
  "cloudwatch:GetMetricData",
] as const;

/** What Powertools Idempotency's DynamoDB persistence layer calls. */
const IDEMPOTENCY_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
];

export function functionName(config: StageConfig, key: FunctionKey): string {
  return named(config, ServiceName[key]);
}

export function functionSpecs(config: StageConfig, refs: AutomationRefs): FunctionSpec[] {
  const common = {
    [CommonEnv.stage]: config.stage,
    [CommonEnv.idempotencyTable]: refs.idempotencyTable.name,
  };
  const shared: Statement[] = [
    { actions: IDEMPOTENCY_ACTIONS, resources: [refs.idempotencyTable.arn] },
    // Lambda's on-failure destination for events that failed every retry.
    { actions: ["sqs:SendMessage"], resources: [refs.deadLetterQueueArn] },
  ];
  return [
    {
      name: "applianceHealer",
      functionName: functionName(config, "applianceHealer"),
      handler: FunctionHandler.applianceHealer,
      reservedConcurrency: 1,
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
        ...shared,
      ],
    },
    {
      name: "whitelistRotator",
      functionName: functionName(config, "whitelistRotator"),
      handler: FunctionHandler.whitelistRotator,
      reservedConcurrency: 1,
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
        { actions: ["mediaconnect:DescribeFlow"], resources: [refs.flowArn] },
        { actions: ["mediaconnect:UpdateFlowSource"], resources: [refs.flowArn, ...refs.flowSourceArns] },
        { actions: ["events:PutEvents"], resources: [refs.eventBusArn] },
        ...shared,
      ],
    },
    {
      name: "streamManager",
      functionName: functionName(config, "streamManager"),
      handler: FunctionHandler.streamManager,
      reservedConcurrency: 1,
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
        ...shared,
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
  schedules: scheduler.Schedule[];
  /** The role Scheduler assumes to invoke the stream manager and to dead-letter what it could not. */
  schedulerPolicy: iam.RolePolicy;
  alarms: { unhealthyHosts: cloudwatch.MetricAlarm; stalled: cloudwatch.MetricAlarm };
}

/** Delivery retries before an event goes to the dead-letter queue (EventBridge targets, Scheduler). */
export const DELIVERY_RETRY = { maximumRetryAttempts: 8, maximumEventAgeInSeconds: 3600 } as const;
/** Lambda's own retries of an asynchronous invocation that failed, then the dead-letter queue. */
export const FUNCTION_RETRY = { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 } as const;

/**
 * What a Scheduler window hands the stream manager. Scheduler passes a target's Input as it is (no
 * EventBridge envelope), so the window's input is an envelope itself, filled in per invocation from
 * Scheduler's context attributes: the execution id is the event id (one per attempt, the same for a
 * duplicate delivery), the scheduled time is the event time.
 */
export function windowInput(config: StageConfig, account: string, action: "start" | "stop", window: string) {
  return JSON.stringify({
    version: "0",
    id: "<aws.scheduler.execution-id>",
    "detail-type": "Scheduled Event",
    source: "aws.scheduler",
    account,
    time: "<aws.scheduler.scheduled-time>",
    region: config.region,
    resources: ["<aws.scheduler.schedule-arn>"],
    detail: { action, window },
  });
}

export function createTriggers(
  config: StageConfig,
  refs: AutomationRefs,
  fns: Record<FunctionKey, DeployedFunction>,
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

  // After every retry of its own, Lambda hands a failed asynchronous event to the dead-letter queue.
  for (const key of Object.keys(fns) as FunctionKey[]) {
    new lambda.FunctionEventInvokeConfig(named(config, `${ServiceName[key]}-async`), {
      functionName: fns[key].name,
      ...FUNCTION_RETRY,
      destinationConfig: { onFailure: { destination: refs.deadLetterQueueArn } },
    });
  }

  const rules: cloudwatch.EventRule[] = [];
  const targets: cloudwatch.EventTarget[] = [];
  const route = (
    id: string,
    fn: DeployedFunction,
    spec: { eventPattern?: pulumi.Input<string>; scheduleExpression?: string },
  ) => {
    const rule = new cloudwatch.EventRule(named(config, id), { name: named(config, id), ...spec });
    const target = new cloudwatch.EventTarget(named(config, `${id}-target`), {
      rule: rule.name,
      arn: fn.arn,
      retryPolicy: { ...DELIVERY_RETRY },
      deadLetterConfig: { arn: refs.deadLetterQueueArn },
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
      "detail-type": [...MEDIA_DETAIL_TYPES],
      resources: [refs.flowArn, refs.channelArn],
    }),
  });
  route("stream-idle-sweep", fns.streamManager, { scheduleExpression: "rate(1 minute)" });

  // EventBridge dead-letters with the queue's resource policy, for these rules only.
  new sqs.QueuePolicy(named(config, "automation-dead-letters-policy"), {
    queueUrl: pulumi.output(refs.deadLetterQueueArn).apply(queueUrl),
    policy: pulumi
      .all([refs.deadLetterQueueArn, pulumi.all(rules.map((r) => r.arn))])
      .apply(([queueArn, ruleArns]) =>
        JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Service: "events.amazonaws.com" },
              Action: "sqs:SendMessage",
              Resource: queueArn,
              Condition: { ArnEquals: { "aws:SourceArn": ruleArns } },
            },
          ],
        }),
      ),
  });

  const { schedules, schedulerPolicy } = streamWindows(config, refs, fns.streamManager);
  return { rules, targets, schedules, schedulerPolicy, alarms: { unhealthyHosts, stalled } };
}

/** The detail types of MediaConnect and MediaLive the stream manager subscribes to. */
export const MEDIA_DETAIL_TYPES = [
  "MediaConnect Source Health",
  "MediaConnect Flow Status Change",
  "MediaLive Channel State Change",
  "MediaLive Channel Alert",
] as const;

/** SQS queue URL from its ARN (arn:aws:sqs:region:account:name). */
function queueUrl(arn: string): string {
  const [, , , region, account, name] = arn.split(":");
  return `https://sqs.${region}.amazonaws.com/${account}/${name}`;
}

function streamWindows(config: StageConfig, refs: AutomationRefs, manager: DeployedFunction) {
  const role = new iam.Role(named(config, "scheduler-role"), {
    assumeRolePolicy: pulumi.output(refs.accountId).apply((account) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "scheduler.amazonaws.com" },
            Action: "sts:AssumeRole",
            Condition: { StringEquals: { "aws:SourceAccount": account } },
          },
        ],
      }),
    ),
  });
  const schedulerPolicy = new iam.RolePolicy(named(config, "scheduler-invoke"), {
    role: role.id,
    policy: pulumi.all([manager.arn, refs.deadLetterQueueArn]).apply(([functionArn, queueArn]) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: ["lambda:InvokeFunction"], Resource: [functionArn] },
          { Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [queueArn] },
        ],
      }),
    ),
  });
  const schedules: scheduler.Schedule[] = [];
  for (const window of config.streamWindows) {
    for (const action of ["start", "stop"] as const) {
      schedules.push(
        new scheduler.Schedule(
          named(config, `window-${window.name}-${action}`),
          {
            name: named(config, `window-${window.name}-${action}`),
            scheduleExpression: window[action],
            scheduleExpressionTimezone: window.timezone,
            flexibleTimeWindow: { mode: "OFF" },
            target: {
              arn: manager.arn,
              roleArn: role.arn,
              input: pulumi
                .output(refs.accountId)
                .apply((account) => windowInput(config, account, action, window.name)),
              retryPolicy: {
                maximumRetryAttempts: DELIVERY_RETRY.maximumRetryAttempts,
                maximumEventAgeInSeconds: DELIVERY_RETRY.maximumEventAgeInSeconds,
              },
              deadLetterConfig: { arn: refs.deadLetterQueueArn },
            },
          },
          { dependsOn: [schedulerPolicy] },
        ),
      );
    }
  }
  return { schedules, schedulerPolicy };
}
