/**
 * Stream manager. Starts and stops the channel of this stack, in the order the inspected path needs:
 * start = check the inspection tier has healthy appliances (there is no uninspected path, so refuse
 * and raise `Stream Start Refused` otherwise), start the MediaConnect flow, then the MediaLive channel;
 * stop = channel first, then flow. Transitional states and ConflictException are expected on the way,
 * not failures. It also stops a running channel whose source has been disconnected for longer than
 * the idle timeout, and counts the minutes that saved.
 *
 * Triggers: custom `Start Stream` / `Stop Stream` events, the stack's Scheduler windows (an envelope
 * with `detail.action` "start" / "stop", see stacks/automation.ts), a scheduled sweep, MediaConnect
 * source health and MediaLive channel state/alert events. One invocation at a time (reserved
 * concurrency 1) and once per event id (Powertools Idempotency): a start cannot race a stop, and a
 * duplicate delivery of an old start cannot undo a later stop.
 */

import {
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import {
  DescribeFlowCommand,
  MediaConnectClient,
  StartFlowCommand,
  StopFlowCommand,
} from "@aws-sdk/client-mediaconnect";
import {
  DescribeChannelCommand,
  MediaLiveClient,
  StartChannelCommand,
  StopChannelCommand,
} from "@aws-sdk/client-medialive";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { z } from "zod";
import { ServiceName, StreamManagerMetric } from "../contracts/automation-metrics.ts";
import { DetailType, EVENT_SOURCE } from "../contracts/events.ts";
import { StreamManagerEnv } from "../contracts/function-env.ts";
import { arn, readEnv } from "./lib/env.ts";
import { InvalidInputError } from "./lib/errors.ts";
import { Envelope, errorName, isSchedule, parse } from "./lib/events.ts";
import { oncePerEvent } from "./lib/idempotency.ts";
import { createTools, instrument, MetricUnit } from "./lib/powertools.ts";

const tools = createTools(ServiceName.streamManager);
const { logger, metrics } = tools;

const Settings = z.object({
  [StreamManagerEnv.flowArn]: arn("mediaconnect"),
  [StreamManagerEnv.channelId]: z.string().regex(/^\d+$/, "expected a MediaLive channel ID"),
  [StreamManagerEnv.targetGroupArn]: arn("elasticloadbalancing"),
  [StreamManagerEnv.minHealthyTargets]: z.coerce.number().int().min(1).default(1),
  [StreamManagerEnv.idleTimeoutMinutes]: z.coerce.number().positive().default(15),
  [StreamManagerEnv.eventBusName]: z.string().min(1).default("default"),
  [StreamManagerEnv.stateParameter]: z.string().min(1),
});
type Settings = z.output<typeof Settings>;

const State = z.object({ idleSince: z.string().optional(), lastIdleStopAt: z.string().optional() });
type State = z.infer<typeof State>;

/**
 * "MediaConnect Source Health": AWS's current example reports the source state as `current.state`;
 * older (translated) pages show `current.source_state`. Either is accepted, in any letter case.
 */
const SourceHealth = z
  .object({
    current: z
      .object({ state: z.string().optional(), source_state: z.string().optional() })
      .passthrough()
      .refine((c) => c.state !== undefined || c.source_state !== undefined, {
        message: "expected current.state (or current.source_state)",
        path: ["state"],
      }),
  })
  .passthrough();
const ChannelState = z.object({ state: z.string(), channel_arn: z.string().optional() }).passthrough();

export const clients = {
  elb: new ElasticLoadBalancingV2Client({}),
  mediaConnect: new MediaConnectClient({}),
  mediaLive: new MediaLiveClient({}),
  ssm: new SSMClient({}),
  events: new EventBridgeClient({}),
};

export interface Outcome {
  action: "start" | "stop" | "idle-stop" | "refused" | "none";
  steps: string[];
}

/** Calls `send`, treating ConflictException (another operation on the resource) as "already moving". */
async function tolerant(step: string, steps: string[], send: () => Promise<unknown>): Promise<void> {
  try {
    await send();
    steps.push(step);
  } catch (error) {
    if (errorName(error) !== "ConflictException") throw error;
    metrics.addMetric(StreamManagerMetric.transitional, MetricUnit.Count, 1);
    steps.push(`${step}: conflict (already changing state), left to finish`);
  }
}

async function readState(settings: Settings): Promise<State> {
  try {
    const result = await clients.ssm.send(
      new GetParameterCommand({ Name: settings[StreamManagerEnv.stateParameter] }),
    );
    return State.parse(JSON.parse(result.Parameter?.Value ?? "{}"));
  } catch (error) {
    if (errorName(error) === "ParameterNotFound") return {};
    throw error;
  }
}

async function writeState(settings: Settings, state: State): Promise<void> {
  await clients.ssm.send(
    new PutParameterCommand({
      Name: settings[StreamManagerEnv.stateParameter],
      Value: JSON.stringify(state),
      Type: "String",
      Overwrite: true,
    }),
  );
}

async function start(settings: Settings, state: State, now: Date): Promise<Outcome> {
  const steps: string[] = [];
  const targets = await clients.elb.send(
    new DescribeTargetHealthCommand({ TargetGroupArn: settings[StreamManagerEnv.targetGroupArn] }),
  );
  const healthy = (targets.TargetHealthDescriptions ?? []).filter(
    (t) => t.TargetHealth?.State === "healthy",
  ).length;
  const needed = settings[StreamManagerEnv.minHealthyTargets];
  if (healthy < needed) {
    metrics.addMetric(StreamManagerMetric.startRefused, MetricUnit.Count, 1);
    await clients.events.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: EVENT_SOURCE,
            DetailType: DetailType.streamStartRefused,
            EventBusName: settings[StreamManagerEnv.eventBusName],
            Detail: JSON.stringify({
              reason: "inspection tier not healthy",
              healthyAppliances: healthy,
              required: needed,
            }),
          },
        ],
      }),
    );
    logger.error("start refused: the inspection tier is not healthy and there is no uninspected path", {
      healthy,
      needed,
    });
    return { action: "refused", steps: [`refused: ${healthy} healthy appliance(s), ${needed} required`] };
  }
  const flow = (
    await clients.mediaConnect.send(new DescribeFlowCommand({ FlowArn: settings[StreamManagerEnv.flowArn] }))
  ).Flow;
  const flowStatus = flow?.Status ?? "UNKNOWN";
  if (flowStatus === "STANDBY") {
    await tolerant("flow started", steps, () =>
      clients.mediaConnect.send(new StartFlowCommand({ FlowArn: settings[StreamManagerEnv.flowArn] })),
    );
  } else if (flowStatus === "ACTIVE" || flowStatus === "STARTING" || flowStatus === "UPDATING") {
    if (flowStatus !== "ACTIVE") metrics.addMetric(StreamManagerMetric.transitional, MetricUnit.Count, 1);
    steps.push(`flow already ${flowStatus}`);
  } else {
    throw new Error(`flow is ${flowStatus}: cannot start the stream`);
  }
  const channel = await clients.mediaLive.send(
    new DescribeChannelCommand({ ChannelId: settings[StreamManagerEnv.channelId] }),
  );
  const channelState = channel.State ?? "UNKNOWN";
  if (channelState === "IDLE") {
    await tolerant("channel started", steps, () =>
      clients.mediaLive.send(new StartChannelCommand({ ChannelId: settings[StreamManagerEnv.channelId] })),
    );
  } else if (channelState === "RUNNING" || channelState === "STARTING" || channelState === "RECOVERING") {
    steps.push(`channel already ${channelState}`);
  } else if (channelState === "STOPPING") {
    metrics.addMetric(StreamManagerMetric.transitional, MetricUnit.Count, 1);
    steps.push("channel is STOPPING: start it again once it is IDLE (the next trigger will)");
  } else {
    throw new Error(`channel is ${channelState}: cannot start the stream`);
  }
  if (state.lastIdleStopAt) {
    const minutes = (now.getTime() - Date.parse(state.lastIdleStopAt)) / 60_000;
    metrics.addMetric(StreamManagerMetric.minutesSaved, MetricUnit.Count, Math.max(0, Math.round(minutes)));
    await writeState(settings, { idleSince: state.idleSince });
  }
  metrics.addMetric(StreamManagerMetric.starts, MetricUnit.Count, 1);
  return { action: "start", steps };
}

async function stop(settings: Settings): Promise<Outcome> {
  const steps: string[] = [];
  const channel = await clients.mediaLive.send(
    new DescribeChannelCommand({ ChannelId: settings[StreamManagerEnv.channelId] }),
  );
  const channelState = channel.State ?? "UNKNOWN";
  if (channelState === "RUNNING" || channelState === "STARTING" || channelState === "RECOVERING") {
    await tolerant("channel stopped", steps, () =>
      clients.mediaLive.send(new StopChannelCommand({ ChannelId: settings[StreamManagerEnv.channelId] })),
    );
  } else {
    steps.push(`channel already ${channelState}`);
  }
  const flow = (
    await clients.mediaConnect.send(new DescribeFlowCommand({ FlowArn: settings[StreamManagerEnv.flowArn] }))
  ).Flow;
  const flowStatus = flow?.Status ?? "UNKNOWN";
  if (flowStatus === "ACTIVE" || flowStatus === "STARTING") {
    await tolerant("flow stopped", steps, () =>
      clients.mediaConnect.send(new StopFlowCommand({ FlowArn: settings[StreamManagerEnv.flowArn] })),
    );
  } else {
    steps.push(`flow already ${flowStatus}`);
  }
  metrics.addMetric(StreamManagerMetric.stops, MetricUnit.Count, 1);
  return { action: "stop", steps };
}

async function idleCheck(settings: Settings, state: State, now: Date): Promise<Outcome> {
  if (!state.idleSince) return { action: "none", steps: ["source connected"] };
  const idleMinutes = (now.getTime() - Date.parse(state.idleSince)) / 60_000;
  if (idleMinutes < settings[StreamManagerEnv.idleTimeoutMinutes]) {
    return {
      action: "none",
      steps: [
        `source idle for ${idleMinutes.toFixed(1)} min, timeout ${settings[StreamManagerEnv.idleTimeoutMinutes]} min`,
      ],
    };
  }
  const channel = await clients.mediaLive.send(
    new DescribeChannelCommand({ ChannelId: settings[StreamManagerEnv.channelId] }),
  );
  if (channel.State !== "RUNNING")
    return { action: "none", steps: [`source idle but channel is ${channel.State}`] };
  const outcome = await stop(settings);
  await writeState(settings, { idleSince: state.idleSince, lastIdleStopAt: now.toISOString() });
  metrics.addMetric(StreamManagerMetric.idleStops, MetricUnit.Count, 1);
  logger.info("stopped an idle channel", { idleMinutes, steps: outcome.steps });
  return { action: "idle-stop", steps: outcome.steps };
}

/** What an event asks of the manager, read and validated before any AWS call. */
type Command =
  | { id: string; now: string; kind: "start" | "stop" | "sweep" }
  | { id: string; now: string; kind: "source-health"; disconnected: boolean }
  | { kind: "noted"; step: string };

export function readCommand(raw: unknown): Command {
  const event = parse(Envelope, raw, "event");
  const now = (
    event.time && !Number.isNaN(Date.parse(event.time)) ? new Date(event.time) : new Date()
  ).toISOString();
  const { id } = event;
  if (event.source === EVENT_SOURCE && event["detail-type"] === DetailType.startStream)
    return { id, now, kind: "start" };
  if (event.source === EVENT_SOURCE && event["detail-type"] === DetailType.stopStream)
    return { id, now, kind: "stop" };
  if (isSchedule(event)) {
    const action = (event.detail as { action?: unknown }).action;
    if (action !== undefined && action !== "start" && action !== "stop") {
      throw new InvalidInputError(`schedule action must be "start" or "stop", got ${JSON.stringify(action)}`);
    }
    return { id, now, kind: action ?? "sweep" };
  }
  if (event.source === "aws.mediaconnect" && event["detail-type"] === "MediaConnect Source Health") {
    const { current } = parse(SourceHealth, event.detail, "source health detail");
    const state = current.state ?? current.source_state ?? "";
    return { id, now, kind: "source-health", disconnected: /^(DISCONNECTED|IDLE)$/i.test(state) };
  }
  if (event.source === "aws.medialive" && event["detail-type"] === "MediaLive Channel State Change") {
    const detail = parse(ChannelState, event.detail, "channel state detail");
    return { kind: "noted", step: `channel ${detail.state}` };
  }
  if (
    event.source === "aws.mediaconnect" ||
    (event.source === "aws.medialive" && event["detail-type"] === "MediaLive Channel Alert")
  ) {
    return { kind: "noted", step: "noted" };
  }
  throw new InvalidInputError(`unexpected event ${event.source} / ${event["detail-type"]}`);
}

async function act(command: Exclude<Command, { kind: "noted" }>, settings: Settings): Promise<Outcome> {
  const now = new Date(command.now);
  switch (command.kind) {
    case "start":
      return start(settings, await readState(settings), now);
    case "stop":
      return stop(settings);
    case "sweep":
      return idleCheck(settings, await readState(settings), now);
    case "source-health": {
      const state = await readState(settings);
      if (command.disconnected && !state.idleSince)
        await writeState(settings, { ...state, idleSince: now.toISOString() });
      if (!command.disconnected && state.idleSince)
        await writeState(settings, { lastIdleStopAt: state.lastIdleStopAt });
      return command.disconnected
        ? idleCheck(settings, { ...state, idleSince: state.idleSince ?? now.toISOString() }, now)
        : { action: "none", steps: ["source connected"] };
    }
  }
}

const actOnce = oncePerEvent(
  async (job: { id: string; command: Exclude<Command, { kind: "noted" }>; settings: Settings }) =>
    act(job.command, job.settings),
);

export const handler = instrument(tools, async (raw: unknown, context?: Context): Promise<Outcome> => {
  const command = readCommand(raw);
  const settings = readEnv(Settings);
  const outcome: Outcome =
    command.kind === "noted"
      ? { action: "none", steps: [command.step] }
      : await actOnce({ id: command.id, command, settings }, context);
  logger.info(`${outcome.action}`, { command: command.kind, steps: outcome.steps });
  return outcome;
});
