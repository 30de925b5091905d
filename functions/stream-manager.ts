/**
 * Stream manager. Starts and stops the channel of this stack, in the order the inspected path needs:
 * start = check the inspection tier has healthy appliances (there is no uninspected path, so refuse
 * and raise `Stream Start Refused` otherwise), start the MediaConnect flow, then the MediaLive channel;
 * stop = channel first, then flow. Transitional states and ConflictException are expected on the way,
 * not failures. It also stops a running channel whose source has been disconnected for longer than
 * the idle timeout, and counts the minutes that saved.
 *
 * Triggers: custom `Start Stream` / `Stop Stream` events, the stack's Scheduler windows (an envelope
 * with `detail.action` "start" / "stop", see stacks/automation/schedule.ts), a scheduled sweep,
 * MediaConnect source health and MediaLive channel state/alert events. One invocation at a time
 * (reserved concurrency 1) and once per event id (Powertools Idempotency): a start cannot race a stop,
 * and a duplicate delivery of an old start cannot undo a later stop.
 */

import type { Context } from "aws-lambda";
import { z } from "zod";
import { ServiceName, StreamManagerMetric } from "../contracts/automation-metrics.ts";
import { DetailType, EVENT_SOURCE } from "../contracts/events.ts";
import { StreamManagerEnv } from "../contracts/function-env.ts";
import { elbClient, targetHealth } from "./lib/aws/elb.ts";
import { eventsClient, putCustomEvent } from "./lib/aws/eventbridge.ts";
import { describeFlow, mediaConnectClient, startFlow, stopFlow } from "./lib/aws/mediaconnect.ts";
import { channelState, mediaLiveClient, startChannel, stopChannel } from "./lib/aws/medialive.ts";
import { getParameter, putParameter, ssmClient } from "./lib/aws/ssm.ts";
import { errorName } from "./lib/events.ts";
import { arn, defineFunction, Envelope, InvalidInputError, isSchedule, parse } from "./lib/function.ts";
import { oncePerEvent } from "./lib/idempotency.ts";

const Settings = z.object({
  [StreamManagerEnv.flowArn]: arn("mediaconnect"),
  [StreamManagerEnv.channelId]: z.string().regex(/^\d+$/, "expected a MediaLive channel ID"),
  [StreamManagerEnv.targetGroupArn]: arn("elasticloadbalancing"),
  [StreamManagerEnv.minHealthyTargets]: z.coerce.number().int().min(1).default(1),
  [StreamManagerEnv.idleTimeoutMinutes]: z.coerce.number().positive().default(15),
  [StreamManagerEnv.eventBusName]: z.string().min(1).default("default"),
  [StreamManagerEnv.stateParameter]: z.string().min(1),
});

const { logger, count, readSettings, handle } = defineFunction(ServiceName.streamManager, Settings);
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
  elb: elbClient,
  mediaConnect: mediaConnectClient,
  mediaLive: mediaLiveClient,
  ssm: ssmClient,
  events: eventsClient,
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
    count(StreamManagerMetric.transitional);
    steps.push(`${step}: conflict (already changing state), left to finish`);
  }
}

async function readState(settings: Settings): Promise<State> {
  try {
    const value = await getParameter(settings[StreamManagerEnv.stateParameter]);
    return State.parse(JSON.parse(value ?? "{}"));
  } catch (error) {
    if (errorName(error) === "ParameterNotFound") return {};
    throw error;
  }
}

async function writeState(settings: Settings, state: State): Promise<void> {
  await putParameter(settings[StreamManagerEnv.stateParameter], JSON.stringify(state));
}

/** Flow, then channel, once the inspection tier is healthy; the idle minutes saved are counted. */
async function start(settings: Settings, state: State, now: Date): Promise<Outcome> {
  const refused = await refusedStart(settings);
  if (refused) return refused;
  const steps: string[] = [];
  await startFlowStep(settings[StreamManagerEnv.flowArn], steps);
  await startChannelStep(settings[StreamManagerEnv.channelId], steps);
  if (state.lastIdleStopAt) {
    const minutes = (now.getTime() - Date.parse(state.lastIdleStopAt)) / 60_000;
    count(StreamManagerMetric.minutesSaved, Math.max(0, Math.round(minutes)));
    await writeState(settings, { idleSince: state.idleSince });
  }
  count(StreamManagerMetric.starts);
  return { action: "start", steps };
}

/** A refusal (raised as `Stream Start Refused`) when too few appliances are healthy; else undefined. */
async function refusedStart(settings: Settings): Promise<Outcome | undefined> {
  const targets = await targetHealth(settings[StreamManagerEnv.targetGroupArn]);
  const healthy = targets.filter((t) => t.TargetHealth?.State === "healthy").length;
  const needed = settings[StreamManagerEnv.minHealthyTargets];
  if (healthy >= needed) return undefined;
  count(StreamManagerMetric.startRefused);
  await putCustomEvent(settings[StreamManagerEnv.eventBusName], DetailType.streamStartRefused, {
    reason: "inspection tier not healthy",
    healthyAppliances: healthy,
    required: needed,
  });
  logger.error("start refused: the inspection tier is not healthy and there is no uninspected path", {
    healthy,
    needed,
  });
  return { action: "refused", steps: [`refused: ${healthy} healthy appliance(s), ${needed} required`] };
}

async function startFlowStep(flowArn: string, steps: string[]): Promise<void> {
  const flowStatus = (await describeFlow(flowArn))?.Status ?? "UNKNOWN";
  if (flowStatus === "STANDBY") {
    await tolerant("flow started", steps, () => startFlow(flowArn));
  } else if (flowStatus === "ACTIVE" || flowStatus === "STARTING" || flowStatus === "UPDATING") {
    if (flowStatus !== "ACTIVE") count(StreamManagerMetric.transitional);
    steps.push(`flow already ${flowStatus}`);
  } else {
    throw new Error(`flow is ${flowStatus}: cannot start the stream`);
  }
}

async function startChannelStep(channelId: string, steps: string[]): Promise<void> {
  const state = (await channelState(channelId)) ?? "UNKNOWN";
  if (state === "IDLE") {
    await tolerant("channel started", steps, () => startChannel(channelId));
  } else if (state === "RUNNING" || state === "STARTING" || state === "RECOVERING") {
    steps.push(`channel already ${state}`);
  } else if (state === "STOPPING") {
    count(StreamManagerMetric.transitional);
    steps.push("channel is STOPPING: start it again once it is IDLE (the next trigger will)");
  } else {
    throw new Error(`channel is ${state}: cannot start the stream`);
  }
}

/** Channel first, then flow: the reverse of start. */
async function stop(settings: Settings): Promise<Outcome> {
  const steps: string[] = [];
  const channelId = settings[StreamManagerEnv.channelId];
  const state = (await channelState(channelId)) ?? "UNKNOWN";
  if (state === "RUNNING" || state === "STARTING" || state === "RECOVERING") {
    await tolerant("channel stopped", steps, () => stopChannel(channelId));
  } else {
    steps.push(`channel already ${state}`);
  }
  const flowArn = settings[StreamManagerEnv.flowArn];
  const flowStatus = (await describeFlow(flowArn))?.Status ?? "UNKNOWN";
  if (flowStatus === "ACTIVE" || flowStatus === "STARTING") {
    await tolerant("flow stopped", steps, () => stopFlow(flowArn));
  } else {
    steps.push(`flow already ${flowStatus}`);
  }
  count(StreamManagerMetric.stops);
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
  const channel = await channelState(settings[StreamManagerEnv.channelId]);
  if (channel !== "RUNNING") return { action: "none", steps: [`source idle but channel is ${channel}`] };
  const outcome = await stop(settings);
  await writeState(settings, { idleSince: state.idleSince, lastIdleStopAt: now.toISOString() });
  count(StreamManagerMetric.idleStops);
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

export const handler = handle(async (raw: unknown, context?: Context): Promise<Outcome> => {
  const command = readCommand(raw);
  const settings = readSettings();
  const outcome: Outcome =
    command.kind === "noted"
      ? { action: "none", steps: [command.step] }
      : await actOnce({ id: command.id, command, settings }, context);
  logger.info(`${outcome.action}`, { command: command.kind, steps: outcome.steps });
  return outcome;
});
