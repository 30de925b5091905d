import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { DescribeFlowCommand, StartFlowCommand, StopFlowCommand } from "@aws-sdk/client-mediaconnect";
import { DescribeChannelCommand, StartChannelCommand, StopChannelCommand } from "@aws-sdk/client-medialive";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { beforeEach, describe, expect, it } from "vitest";
import { handler } from "../../functions/stream-manager.ts";
import { windowInput } from "../../stacks/automation.ts";
import { stageConfig } from "../../stacks/config.ts";
import { FLOW_ARN as FLOW, mockFunctionClients, TARGET_GROUP_ARN as TG } from "../support/aws-mocks.ts";
import { capture, idempotencyTable, sampleEvent } from "./support.ts";

const { elb, mediaConnect, mediaLive, ssm, events } = mockFunctionClients();
const table = idempotencyTable();
/** The sample event `name` as if sent at `time` (an ISO timestamp). */
const sentAt = (name: string, time: string) => ({ ...sampleEvent(name), time });

function world(o: { healthy: number; flow: string; channel: string; state?: object }) {
  elb.on(DescribeTargetHealthCommand).resolves({
    TargetHealthDescriptions: Array.from({ length: 3 }, (_, i) => ({
      Target: { Id: `i-${i}` },
      TargetHealth: { State: i < o.healthy ? "healthy" : "unhealthy" },
    })),
  });
  mediaConnect
    .on(DescribeFlowCommand as never)
    .resolves({ Flow: { FlowArn: FLOW, Status: o.flow } } as never);
  mediaConnect.on(StartFlowCommand as never).resolves({ Status: "STARTING" } as never);
  mediaConnect.on(StopFlowCommand as never).resolves({ Status: "STOPPING" } as never);
  mediaLive.on(DescribeChannelCommand).resolves({ State: o.channel as "IDLE" });
  mediaLive.on(StartChannelCommand).resolves({ State: "STARTING" });
  mediaLive.on(StopChannelCommand).resolves({ State: "STOPPING" });
  if (o.state) ssm.on(GetParameterCommand).resolves({ Parameter: { Value: JSON.stringify(o.state) } });
  else
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error("not found"), { name: "ParameterNotFound" }));
  ssm.on(PutParameterCommand).resolves({ Version: 2 });
  events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
}

/** What a stack-built Scheduler window delivers (see test/stacks/deployability.test.ts, the Scheduler windows). */
function windowEvent(action: "start" | "stop") {
  const input = windowInput(stageConfig("dev"), "111122223333", action, "match-day")
    .replace("<aws.scheduler.execution-id>", "d32c5kddcf5bb8c3")
    .replace("<aws.scheduler.scheduled-time>", "2026-11-25T10:00:00Z")
    .replace(
      "<aws.scheduler.schedule-arn>",
      `arn:aws:scheduler:eu-west-1:111122223333:schedule/default/stream-intel-dev-window-match-day-${action}`,
    );
  return JSON.parse(input) as ReturnType<typeof sampleEvent>;
}

describe("stream manager", () => {
  beforeEach(() => {
    for (const m of [elb, mediaConnect, mediaLive, ssm, events]) m.reset();
    table.reset();
    process.env.FLOW_ARN = FLOW;
    process.env.CHANNEL_ID = "1234567";
    process.env.TARGET_GROUP_ARN = TG;
    process.env.MIN_HEALTHY_TARGETS = "2";
    process.env.IDLE_TIMEOUT_MINUTES = "15";
    process.env.STATE_PARAMETER = "/stream-intel/dev/stream-state";
  });

  it("starts the flow, then the channel, once the inspection tier is healthy", async () => {
    world({ healthy: 2, flow: "STANDBY", channel: "IDLE" });
    const { result, metrics } = await capture(() => handler(sampleEvent("start-stream")));
    expect(result).toEqual({ action: "start", steps: ["flow started", "channel started"] });
    expect(mediaConnect.commandCalls(StartFlowCommand as never)[0].args[0].input).toEqual({ FlowArn: FLOW });
    expect(mediaLive.commandCalls(StartChannelCommand)[0].args[0].input).toEqual({ ChannelId: "1234567" });
    // the flow is started before the channel
    const startFlow = mediaConnect.commandCalls(StartFlowCommand as never)[0];
    expect(startFlow.calledBefore(mediaLive.commandCalls(StartChannelCommand)[0] as never)).toBe(true);
    expect(metrics).toMatchObject({ StreamStarts: 1 });
  });

  it("refuses to start and raises an alert when too few appliances are healthy", async () => {
    world({ healthy: 1, flow: "STANDBY", channel: "IDLE" });
    const { result, metrics } = await capture(() => handler(windowEvent("start")));
    expect(result).toMatchObject({ action: "refused" });
    expect(mediaConnect.commandCalls(StartFlowCommand as never)).toHaveLength(0);
    expect(mediaLive.commandCalls(StartChannelCommand)).toHaveLength(0);
    const entry = events.commandCalls(PutEventsCommand)[0].args[0].input.Entries![0];
    expect(entry).toMatchObject({ Source: "stream-intel", DetailType: "Stream Start Refused" });
    expect(JSON.parse(entry.Detail!)).toEqual({
      reason: "inspection tier not healthy",
      healthyAppliances: 1,
      required: 2,
    });
    expect(metrics).toMatchObject({ StreamStartRefused: 1 });
  });

  it("stops the channel first, then the flow", async () => {
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING" });
    const { result } = await capture(() => handler(sampleEvent("stop-stream")));
    expect(result).toEqual({ action: "stop", steps: ["channel stopped", "flow stopped"] });
    const stopChannel = mediaLive.commandCalls(StopChannelCommand)[0];
    expect(stopChannel.calledBefore(mediaConnect.commandCalls(StopFlowCommand as never)[0] as never)).toBe(
      true,
    );
  });

  it("treats transitional states and ConflictException as expected, and a replayed start as a no-op", async () => {
    world({ healthy: 3, flow: "STARTING", channel: "IDLE" });
    mediaLive
      .on(StartChannelCommand)
      .rejects(Object.assign(new Error("Channel is busy"), { name: "ConflictException" }));
    const { result, metrics, error } = await capture(() => handler(sampleEvent("start-stream")));
    expect(error).toBeUndefined();
    expect(result).toEqual({
      action: "start",
      steps: ["flow already STARTING", "channel started: conflict (already changing state), left to finish"],
    });
    expect(metrics.TransitionalStatesSeen).toBe(2);
    world({ healthy: 3, flow: "ACTIVE", channel: "RUNNING" });
    mediaConnect.resetHistory();
    mediaLive.resetHistory();
    const again = sampleEvent("start-stream");
    again.id = "a-second-start-request";
    const replay = await capture(() => handler(again));
    expect(replay.result).toEqual({
      action: "start",
      steps: ["flow already ACTIVE", "channel already RUNNING"],
    });
    expect(mediaConnect.commandCalls(StartFlowCommand as never)).toHaveLength(0);
    expect(mediaLive.commandCalls(StartChannelCommand)).toHaveLength(0);
  });

  it("records a disconnected source, stops the channel after the idle timeout, and counts the minutes saved", async () => {
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING" });
    const health = sampleEvent("mediaconnect-source-health");
    (health.detail.current as { state: string }).state = "DISCONNECTED";
    health.time = "2026-11-25T10:00:00Z";
    const disconnected = await capture(() => handler(health));
    expect(disconnected.result).toMatchObject({ action: "none" });
    expect(JSON.parse(ssm.commandCalls(PutParameterCommand)[0].args[0].input.Value!)).toEqual({
      idleSince: "2026-11-25T10:00:00.000Z",
    });

    ssm.reset();
    const quietSince = "2026-11-25T10:00:00.000Z";
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING", state: { idleSince: quietSince } });
    const sweep = sentAt("schedule-sweep", "2026-11-25T10:20:00Z");
    const idle = await capture(() => handler(sweep));
    expect(idle.result).toEqual({ action: "idle-stop", steps: ["channel stopped", "flow stopped"] });
    expect(JSON.parse(ssm.commandCalls(PutParameterCommand)[0].args[0].input.Value!)).toEqual({
      idleSince: "2026-11-25T10:00:00.000Z",
      lastIdleStopAt: "2026-11-25T10:20:00.000Z",
    });
    expect(idle.metrics).toMatchObject({ IdleStops: 1, StreamStops: 1 });

    ssm.reset();
    const stoppedAt = "2026-11-25T10:20:00.000Z";
    world({ healthy: 2, flow: "STANDBY", channel: "IDLE", state: { lastIdleStopAt: stoppedAt } });
    const restart = sentAt("start-stream", "2026-11-25T12:20:00Z");
    const started = await capture(() => handler(restart));
    expect(started.metrics).toMatchObject({ IdleMinutesSaved: 120, StreamStarts: 1 });
  });

  it("reads the source state AWS publishes today (current.state) and the older current.source_state, in any case", async () => {
    for (const [field, value] of [
      ["state", "DISCONNECTED"],
      ["state", "idle"],
      ["source_state", "DISCONNECTED"],
    ]) {
      ssm.reset();
      world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING" });
      const health = sampleEvent("mediaconnect-source-health");
      health.id = `${field}-${value}`;
      health.detail.current = { [field]: value };
      const { result, error } = await capture(() => handler(health));
      expect(error, `${field}=${value}`).toBeUndefined();
      expect(result).toMatchObject({ action: "none" });
      expect(JSON.parse(ssm.commandCalls(PutParameterCommand)[0].args[0].input.Value!)).toHaveProperty(
        "idleSince",
      );
    }
    ssm.reset();
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING", state: { idleSince: "2026-11-25T09:00:00Z" } });
    await capture(() => handler(sampleEvent("mediaconnect-source-health"))); // AWS's example: CONNECTED
    expect(JSON.parse(ssm.commandCalls(PutParameterCommand)[0].args[0].input.Value!)).toEqual({});
  });

  it("a late duplicate of a start already handled does not undo the stop that followed", async () => {
    world({ healthy: 2, flow: "STANDBY", channel: "IDLE" });
    await capture(() => handler(sampleEvent("start-stream")));
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING" });
    await capture(() => handler(sampleEvent("stop-stream")));
    world({ healthy: 2, flow: "STANDBY", channel: "IDLE" });
    mediaConnect.resetHistory();
    mediaLive.resetHistory();
    const duplicate = await capture(() => handler(sampleEvent("start-stream")));
    expect(duplicate.result).toEqual({ action: "start", steps: ["flow started", "channel started"] });
    expect(mediaConnect.commandCalls(StartFlowCommand as never)).toHaveLength(0);
    expect(mediaLive.commandCalls(StartChannelCommand)).toHaveLength(0);
    expect(mediaLive.commandCalls(DescribeChannelCommand)).toHaveLength(0);
  });

  it("starts and stops on the stack's Scheduler windows, from the input exactly as Scheduler hands it over", async () => {
    world({ healthy: 2, flow: "STANDBY", channel: "IDLE" });
    expect((await capture(() => handler(windowEvent("start")))).result).toMatchObject({ action: "start" });
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING" });
    const stop = windowEvent("stop");
    stop.id = "another-execution";
    expect((await capture(() => handler(stop))).result).toEqual({
      action: "stop",
      steps: ["channel stopped", "flow stopped"],
    });
  });

  it("does not stop before the idle timeout", async () => {
    world({
      healthy: 2,
      flow: "ACTIVE",
      channel: "RUNNING",
      state: { idleSince: "2026-11-25T09:55:00.000Z" },
    });
    const sweep = sentAt("schedule-sweep", "2026-11-25T10:00:00Z");
    const { result } = await capture(() => handler(sweep));
    expect(result).toMatchObject({ action: "none" });
    expect(mediaLive.commandCalls(StopChannelCommand)).toHaveLength(0);
  });

  it("rejects malformed events and bad schedule inputs with the reason, changing nothing", async () => {
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING" });
    const bad = windowEvent("start");
    bad.detail = { action: "reboot" };
    const { error } = await capture(() => handler(bad));
    expect(error?.message).toMatch(/schedule action must be "start" or "stop"/);
    const { error: envelope } = await capture(() => handler({ "detail-type": "Start Stream" }));
    expect(envelope?.message).toMatch(/event is malformed: id/);
    const health = sampleEvent("mediaconnect-source-health");
    health.detail = { current: {} };
    const { error: detail } = await capture(() => handler(health));
    expect(detail?.message).toMatch(/source health detail is malformed: current.state/);
    expect(mediaLive.calls()).toHaveLength(0);
    expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
  });

  it("notes MediaLive state and alert events without acting, and fails loudly on a channel in error", async () => {
    world({ healthy: 2, flow: "ACTIVE", channel: "RUNNING" });
    expect((await capture(() => handler(sampleEvent("medialive-channel-state-change")))).result).toEqual({
      action: "none",
      steps: ["channel DELETED"],
    });
    expect((await capture(() => handler(sampleEvent("mediaconnect-flow-status-change")))).result).toEqual({
      action: "none",
      steps: ["noted"],
    });
    expect((await capture(() => handler(sampleEvent("medialive-channel-alert")))).result).toMatchObject({
      action: "none",
    });
    world({ healthy: 2, flow: "ERROR", channel: "IDLE" });
    const { error } = await capture(() => handler(sampleEvent("start-stream")));
    expect(error?.message).toMatch(/flow is ERROR/);
    mediaLive
      .on(DescribeChannelCommand)
      .rejects(Object.assign(new Error("no such channel"), { name: "NotFoundException" }));
    const { error: missing } = await capture(() => handler(sampleEvent("stop-stream")));
    expect(missing?.name).toBe("NotFoundException");
  });
});
