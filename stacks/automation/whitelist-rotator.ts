import * as pulumi from "@pulumi/pulumi";
import { DetailType, EVENT_SOURCE } from "../../contracts/events.ts";
import { FunctionHandler, RotatorEnv } from "../../contracts/function-env.ts";
import type { StageConfig } from "../config.ts";
import {
  type AutomationRefs,
  type BaseSpec,
  type DeployedFunction,
  type FunctionSpec,
  functionName,
  type Route,
} from "./types.ts";

export function rotatorSpec(
  config: StageConfig,
  refs: AutomationRefs,
  { common, shared }: BaseSpec,
): FunctionSpec {
  return {
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
  };
}

export function routeRotator(route: Route, rotator: DeployedFunction, refs: AutomationRefs): void {
  route("rotator-schedule", rotator, { scheduleExpression: "rate(1 minute)" });
  route("rotator-parameter", rotator, {
    eventPattern: pulumi.jsonStringify({
      source: ["aws.ssm"],
      "detail-type": ["Parameter Store Change"],
      detail: { name: [refs.contributorsParameter.name] },
    }),
  });
  route("rotator-requested", rotator, {
    eventPattern: pulumi.jsonStringify({
      source: [EVENT_SOURCE],
      "detail-type": [DetailType.whitelistRotationRequested],
    }),
  });
}
