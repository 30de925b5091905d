import * as pulumi from "@pulumi/pulumi";
import { DetailType, EVENT_SOURCE } from "../../contracts/events.ts";
import { RotatorEnv } from "../../contracts/function-env.ts";
import type { AutomationRefs, DeployedFunction, FunctionNeeds, Route } from "./types.ts";

export function rotatorNeeds(refs: AutomationRefs): FunctionNeeds {
  return {
    environment: {
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
