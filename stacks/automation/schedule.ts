/** The stream manager's Scheduler windows: a start and a stop schedule per window, all under one Scheduler role. */
import { iam, scheduler } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { named, type StageConfig } from "../config.ts";
import { DELIVERY_RETRY } from "./delivery.ts";
import type { AutomationRefs, DeployedFunction } from "./types.ts";

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

export function streamWindows(config: StageConfig, refs: AutomationRefs, manager: DeployedFunction) {
  const { role, schedulerPolicy } = schedulerRole(config, refs, manager);
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

/** The role Scheduler assumes, from this account only: invoke the manager, dead-letter what fails. */
function schedulerRole(config: StageConfig, refs: AutomationRefs, manager: DeployedFunction) {
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
  return { role, schedulerPolicy };
}
