import { readFileSync } from "node:fs";
import { PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { DescribeFlowCommand, UpdateFlowSourceCommand } from "@aws-sdk/client-mediaconnect";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { validatePolicy } from "../../contracts/policy.ts";
import { assign, CLOSED_CIDR, effectiveEntries, handler } from "../../functions/whitelist-rotator.ts";
import { FLOW_ARN as FLOW, mockFunctionClients } from "../support/aws-mocks.ts";
import { capture, idempotencyTable, sampleEvent } from "./support.ts";

const { ssm, mediaConnect, events } = mockFunctionClients();
const table = idempotencyTable();
const SOURCE_A = "arn:aws:mediaconnect:eu-west-1:111122223333:source:1-AbCdEfGhIjKlMnOp-abcdef123455:primary";
const SOURCE_B = "arn:aws:mediaconnect:eu-west-1:111122223333:source:1-AbCdEfGhIjKlMnOp-abcdef123455:backup";
const policyText = readFileSync(new URL("../../appliance/policy.default.json", import.meta.url), "utf8");

function world(contributors: unknown, sources: [string, string][], policy = policyText) {
  ssm
    .on(GetParameterCommand, { Name: "/stream-intel/dev/contributors" })
    .resolves({ Parameter: { Value: JSON.stringify(contributors), Version: 3 } });
  ssm
    .on(GetParameterCommand, { Name: "/stream-intel/dev/policy" })
    .resolves({ Parameter: { Value: policy, Version: 7 } });
  mediaConnect.on(DescribeFlowCommand as never).resolves({
    Flow: {
      FlowArn: FLOW,
      Status: "ACTIVE",
      Sources: sources.map(([arn, cidr]) => ({
        SourceArn: arn,
        Name: arn.split(":").pop(),
        WhitelistCidr: cidr,
      })),
    },
  } as never);
  mediaConnect.on(UpdateFlowSourceCommand as never).resolves({} as never);
  ssm.on(PutParameterCommand).resolves({ Version: 8 });
  events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: "1" }] });
}

const HOUR = 3600_000;
const iso = (offset: number) => new Date(Date.now() + offset).toISOString();

describe("whitelist rotator", () => {
  beforeEach(() => {
    ssm.reset();
    mediaConnect.reset();
    events.reset();
    table.reset();
    process.env.CONTRIBUTORS_PARAMETER = "/stream-intel/dev/contributors";
    process.env.POLICY_PARAMETER = "/stream-intel/dev/policy";
    process.env.POLICY_SET_NAME = "contributors";
    process.env.FLOW_ARN = FLOW;
    process.env.EVENT_BUS_NAME = "default";
  });

  it("opens a time-boxed contributor, closes an expired one, updates the policy set and announces the diff", async () => {
    world(
      [
        { cidr: "203.0.113.0/28", label: "stadium-truck", notBefore: iso(-HOUR), expiresAt: iso(HOUR) },
        { cidr: "198.51.100.7/32", label: "studio", expiresAt: iso(-60_000) },
      ],
      [
        [SOURCE_A, "198.51.100.7/32"],
        [SOURCE_B, CLOSED_CIDR],
      ],
    );
    const { result, metrics } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(mediaConnect.commandCalls(UpdateFlowSourceCommand as never).map((c) => c.args[0].input)).toEqual([
      { FlowArn: FLOW, SourceArn: SOURCE_A, WhitelistCidr: "203.0.113.0/28" },
    ]);
    const put = ssm.commandCalls(PutParameterCommand)[0].args[0].input;
    expect(put).toMatchObject({ Name: "/stream-intel/dev/policy", Type: "String", Overwrite: true });
    const written = validatePolicy(JSON.parse(put.Value!));
    expect(written.sets.contributors).toEqual(["203.0.113.0/28"]);
    expect(written.sets.mediaconnect).toEqual(["10.0.1.0/24", "10.0.2.0/24"]); // the rest untouched
    const announced = JSON.parse(events.commandCalls(PutEventsCommand)[0].args[0].input.Entries![0].Detail!);
    expect(announced).toMatchObject({ trigger: "schedule", added: ["203.0.113.0/28"], removed: [] });
    expect(result).toMatchObject({ changed: true });
    expect(metrics).toMatchObject({
      WhitelistRotations: 1,
      FlowSourcesUpdated: 1,
      AppliancePolicyUpdated: 1,
    });
  });

  it("does nothing when nothing changed (a replayed event is a no-op)", async () => {
    const policy = JSON.parse(policyText);
    policy.sets.contributors = ["203.0.113.0/28"];
    world(
      [{ cidr: "203.0.113.0/28", label: "truck" }],
      [
        [SOURCE_A, "203.0.113.0/28"],
        [SOURCE_B, CLOSED_CIDR],
      ],
      JSON.stringify(policy),
    );
    const { result, metrics } = await capture(() => handler(sampleEvent("whitelist-rotation-requested")));
    expect(result).toMatchObject({ changed: false });
    expect(mediaConnect.commandCalls(UpdateFlowSourceCommand as never)).toHaveLength(0);
    expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
    expect(events.commandCalls(PutEventsCommand)).toHaveLength(0);
    expect(metrics).toMatchObject({ WhitelistUnchanged: 1 });
  });

  it("refuses world-open and malformed CIDRs, changing nothing", async () => {
    for (const bad of [
      [{ cidr: "0.0.0.0/0", label: "everyone" }],
      [{ cidr: "::/0", label: "everyone6" }],
      [{ cidr: "203.0.113.5/24", label: "typo" }],
      [{ cidr: "203.0.113.0/24", label: "x", extra: true }],
      { not: "a list" },
    ]) {
      ssm.reset();
      world(bad, [[SOURCE_A, CLOSED_CIDR]]);
      const { error, metrics } = await capture(() => handler(sampleEvent("ssm-contributors-changed")));
      expect(error?.name, JSON.stringify(bad)).toBe("InvalidInputError");
      expect(mediaConnect.commandCalls(UpdateFlowSourceCommand as never)).toHaveLength(0);
      expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
      expect(metrics.InvalidEvents).toBe(1);
    }
  });

  it("refuses more active contributors than the flow has sources instead of widening", async () => {
    world(
      [
        { cidr: "203.0.113.0/28", label: "a" },
        { cidr: "198.51.100.0/28", label: "b" },
        { cidr: "192.0.2.128/28", label: "c" },
      ],
      [
        [SOURCE_A, CLOSED_CIDR],
        [SOURCE_B, CLOSED_CIDR],
      ],
    );
    const { error } = await capture(() => handler(sampleEvent("whitelist-rotation-requested")));
    expect(error?.message).toMatch(
      /3 contributor entries are active .* 2 source\(s\).*refusing rather than widening/,
    );
    expect(error?.name).toBe("InvalidInputError");
    expect((error?.cause as Error | undefined)?.name).toBe("ScheduleError"); // the schedule's own error, kept
    expect(mediaConnect.commandCalls(UpdateFlowSourceCommand as never)).toHaveLength(0);
  });

  it("ignores a Parameter Store Change that reports a failed operation (exception): nothing was written", async () => {
    world([{ cidr: "203.0.113.0/28", label: "truck" }], [[SOURCE_A, CLOSED_CIDR]]);
    const { result, error } = await capture(() => handler(sampleEvent("ssm-contributors-create-failed")));
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ changed: false });
    expect(ssm.calls()).toHaveLength(0);
    expect(mediaConnect.calls()).toHaveLength(0);
  });

  it("ignores changes to other parameters", async () => {
    const event = sampleEvent("ssm-contributors-changed");
    event.detail.name = "/someone/else";
    world([], [[SOURCE_A, CLOSED_CIDR]]);
    const { result } = await capture(() => handler(event));
    expect(result).toMatchObject({ changed: false });
    expect(ssm.calls()).toHaveLength(0);
  });

  it("counts a partial failure and fails for a retry when the policy write fails after the flow was updated", async () => {
    world([{ cidr: "203.0.113.0/28", label: "truck" }], [[SOURCE_A, CLOSED_CIDR]]);
    ssm
      .on(PutParameterCommand)
      .rejects(Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" }));
    const { error, metrics } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(error?.name).toBe("ThrottlingException");
    expect(metrics).toMatchObject({ RotationPartialFailures: 1 });
    // the retry: the flow already matches, so only the policy is written
    ssm.on(PutParameterCommand).resolves({ Version: 9 });
    mediaConnect.on(DescribeFlowCommand as never).resolves({
      Flow: {
        FlowArn: FLOW,
        Status: "ACTIVE",
        Sources: [{ SourceArn: SOURCE_A, Name: "primary", WhitelistCidr: "203.0.113.0/28" }],
      },
    } as never);
    mediaConnect.resetHistory();
    const retry = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(retry.result).toMatchObject({ changed: true, sources: [] });
    expect(mediaConnect.commandCalls(UpdateFlowSourceCommand as never)).toHaveLength(0);
  });

  it("fails loudly when MediaConnect refuses, leaving the policy alone", async () => {
    world([{ cidr: "203.0.113.0/28", label: "truck" }], [[SOURCE_A, CLOSED_CIDR]]);
    mediaConnect
      .on(UpdateFlowSourceCommand as never)
      .rejects(Object.assign(new Error("flow not found"), { name: "NotFoundException" }));
    const { error } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(error?.name).toBe("NotFoundException");
    expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
  });

  it("assignment keeps sources whose CIDR stays and closes the rest (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 200 }), { maxLength: 2 }),
        fc.boolean(),
        (hosts, keepFirst) => {
          const active = hosts.map((h) => ({ cidr: `203.0.113.${h}/32`, label: `c${h}` }));
          const sources = [
            { arn: "a", name: "a", cidr: keepFirst && active[0] ? active[0].cidr : "198.51.100.1/32" },
            { arn: "b", name: "b", cidr: undefined },
          ];
          const plan = assign(sources, active);
          const values = [...plan.values()];
          for (const a of active) expect(values).toContain(a.cidr);
          expect(values.filter((v) => v === CLOSED_CIDR)).toHaveLength(2 - active.length);
          if (keepFirst && active[0]) expect(plan.get("a")).toBe(active[0].cidr);
        },
      ),
    );
    expect(
      effectiveEntries([{ cidr: "203.0.113.0/28", label: "later", notBefore: iso(HOUR) }], new Date()),
    ).toEqual([]);
  });
});
