/**
 * How events reach the functions and where the ones that fail every retry go: each rule's target with
 * a retry policy and the dead-letter queue behind it, Lambda's own retries of an asynchronous
 * invocation, and the queue policy that lets these rules, and only them, dead-letter.
 */
import { cloudwatch, lambda, sqs } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ServiceName } from "../../contracts/automation-metrics.ts";
import { named, type StageConfig } from "../config.ts";
import type { AutomationRefs, DeployedFunction, FunctionKey, Route } from "./types.ts";

/** Delivery retries before an event goes to the dead-letter queue (EventBridge targets, Scheduler). */
export const DELIVERY_RETRY = { maximumRetryAttempts: 8, maximumEventAgeInSeconds: 3600 } as const;
/** Lambda's own retries of an asynchronous invocation that failed, then the dead-letter queue. */
export const FUNCTION_RETRY = { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 } as const;

export function asyncFailuresToDeadLetters(
  config: StageConfig,
  refs: AutomationRefs,
  fns: Record<FunctionKey, DeployedFunction>,
): void {
  // After every retry of its own, Lambda hands a failed asynchronous event to the dead-letter queue.
  for (const key of Object.keys(fns) as FunctionKey[]) {
    new lambda.FunctionEventInvokeConfig(named(config, `${ServiceName[key]}-async`), {
      functionName: fns[key].name,
      ...FUNCTION_RETRY,
      destinationConfig: { onFailure: { destination: refs.deadLetterQueueArn } },
    });
  }
}

/** A `route` that records the rules and targets it creates. */
export function createRouter(config: StageConfig, refs: AutomationRefs) {
  const rules: cloudwatch.EventRule[] = [];
  const targets: cloudwatch.EventTarget[] = [];
  const route: Route = (id, fn, spec) => {
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
  return { route, rules, targets };
}

export function ruleDeadLetterPolicy(
  config: StageConfig,
  refs: AutomationRefs,
  rules: cloudwatch.EventRule[],
): void {
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
}

/** SQS queue URL from its ARN (arn:aws:sqs:region:account:name). */
function queueUrl(arn: string): string {
  const [, , , region, account, name] = arn.split(":");
  return `https://sqs.${region}.amazonaws.com/${account}/${name}`;
}
