/** What the automation's modules share: the function specs' shape and the stack's references. */
import type * as pulumi from "@pulumi/pulumi";
import { ServiceName } from "../../contracts/automation-metrics.ts";
import { CommonEnv, FunctionHandler } from "../../contracts/function-env.ts";
import { named, type StageConfig } from "../config.ts";

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

export interface DeployedFunction {
  arn: pulumi.Input<string>;
  name: pulumi.Input<string>;
}

/** What a function needs beyond what every function gets. */
export interface FunctionNeeds {
  environment: Record<string, pulumi.Input<string>>;
  permissions: Statement[];
}

/** A function's spec: its needs plus the stage, the idempotency table and the dead-letter queue. */
export function functionSpec(
  config: StageConfig,
  refs: AutomationRefs,
  name: FunctionKey,
  needs: FunctionNeeds,
): FunctionSpec {
  return {
    name,
    functionName: functionName(config, name),
    handler: FunctionHandler[name],
    reservedConcurrency: 1,
    environment: {
      [CommonEnv.stage]: config.stage,
      [CommonEnv.idempotencyTable]: refs.idempotencyTable.name,
      ...needs.environment,
    },
    permissions: [
      ...needs.permissions,
      { actions: IDEMPOTENCY_ACTIONS, resources: [refs.idempotencyTable.arn] },
      // Lambda's on-failure destination for events that failed every retry.
      { actions: ["sqs:SendMessage"], resources: [refs.deadLetterQueueArn] },
    ],
  };
}

/** Connects a rule (a pattern or a schedule) to a function: see delivery.ts. */
export type Route = (
  id: string,
  fn: DeployedFunction,
  spec: { eventPattern?: pulumi.Input<string>; scheduleExpression?: string },
) => void;
