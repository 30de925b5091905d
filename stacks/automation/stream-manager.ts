import * as pulumi from "@pulumi/pulumi";
import { DetailType, EVENT_SOURCE } from "../../contracts/events.ts";
import { StreamManagerEnv } from "../../contracts/function-env.ts";
import type { StageConfig } from "../config.ts";
import type { AutomationRefs, DeployedFunction, FunctionNeeds, Route } from "./types.ts";

export function streamManagerNeeds(config: StageConfig, refs: AutomationRefs): FunctionNeeds {
  return {
    environment: {
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
  };
}

/** The detail types of MediaConnect and MediaLive the stream manager subscribes to. */
export const MEDIA_DETAIL_TYPES = [
  "MediaConnect Source Health",
  "MediaConnect Flow Status Change",
  "MediaLive Channel State Change",
  "MediaLive Channel Alert",
] as const;

export function routeStreamManager(route: Route, manager: DeployedFunction, refs: AutomationRefs): void {
  route("stream-commands", manager, {
    eventPattern: pulumi.jsonStringify({
      source: [EVENT_SOURCE],
      "detail-type": [DetailType.startStream, DetailType.stopStream],
    }),
  });
  route("stream-media-events", manager, {
    eventPattern: pulumi.jsonStringify({
      source: ["aws.mediaconnect", "aws.medialive"],
      "detail-type": [...MEDIA_DETAIL_TYPES],
      resources: [refs.flowArn, refs.channelArn],
    }),
  });
  route("stream-idle-sweep", manager, { scheduleExpression: "rate(1 minute)" });
}
