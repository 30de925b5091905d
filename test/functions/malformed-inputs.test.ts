/**
 * Properties over generated bad input, for all three functions: whatever is wrong with an event (or
 * with the contributor schedule the rotator reads), the invocation fails with InvalidInputError naming
 * the problem, counts it under InvalidEvents, and changes nothing. A malformed event is refused before
 * any AWS call at all; a malformed schedule after the reads, before any write.
 */
import { PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { DescribeFlowCommand } from "@aws-sdk/client-mediaconnect";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { CidrError, parseCidr } from "../../contracts/cidr.ts";
import { handler as healer } from "../../functions/appliance-healer.ts";
import { handler as streamManager } from "../../functions/stream-manager.ts";
import { handler as rotator } from "../../functions/whitelist-rotator.ts";
import { FLOW_ARN as FLOW, mockFunctionClients, TARGET_GROUP_ARN } from "../support/aws-mocks.ts";
import { capture, idempotencyTable, sampleEvent } from "./support.ts";

const stubs = mockFunctionClients();
const { mediaConnect } = stubs;
const table = idempotencyTable();
const RUNS = 150;

type Handler = (event: unknown) => Promise<unknown>;
type Event = ReturnType<typeof sampleEvent>;

/** Every AWS call made, by client: must stay empty for a refused event. */
const callsMade = () =>
  Object.entries(stubs)
    .map(([name, stub]) => [name, stub.calls().length] as const)
    .filter(([, count]) => count > 0);

async function expectRefused(handler: Handler, event: unknown, reason: RegExp): Promise<void> {
  for (const stub of Object.values(stubs)) stub.resetHistory();
  const { error, metrics } = await capture(() => handler(event));
  const shown = JSON.stringify(event);
  expect(error?.name, shown).toBe("InvalidInputError");
  expect(error?.message, shown).toMatch(reason);
  expect(metrics.InvalidEvents, shown).toBe(1);
  expect(callsMade(), shown).toEqual([]);
}

// Values of the wrong type for a field that must be a string, an object, or a list.
const notAString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
);
const notAnObject = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.string(),
  fc.array(fc.integer()),
);

/** A sample event with one envelope field removed or of the wrong type. */
function brokenEnvelope(samples: string[]) {
  const required = ["id", "detail-type", "source", "detail"] as const;
  return fc.oneof(
    fc.record({
      sample: fc.constantFrom(...samples),
      key: fc.constantFrom(...required),
      value: fc.constant(undefined),
    }),
    fc.record({
      sample: fc.constantFrom(...samples),
      key: fc.constantFrom("id", "detail-type", "source", "time"),
      value: fc.oneof(notAString, fc.constant("")).filter((v) => v !== ""),
    }),
    fc.record({
      sample: fc.constantFrom(...samples),
      key: fc.constantFrom("id", "detail-type", "source"),
      value: fc.constant(""),
    }),
    fc.record({
      sample: fc.constantFrom(...samples),
      key: fc.constant("detail"),
      // A string detail is parsed as JSON (EventBridge Scheduler's "{}"): these do not give an object.
      value: fc.oneof(
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(fc.integer()),
        fc.constantFrom("", "{", "not json", "42", "[1]", "null"),
      ),
    }),
    fc.record({
      sample: fc.constantFrom(...samples),
      key: fc.constant("resources"),
      value: fc.oneof(fc.string(), fc.integer(), fc.array(fc.integer(), { minLength: 1 })),
    }),
  );
}

function withField(sample: string, path: string[], value: unknown): Event {
  const event = sampleEvent(sample);
  let target: Record<string, unknown> = event;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
  const last = path[path.length - 1];
  if (value === undefined) delete target[last];
  else target[last] = value;
  return event;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("malformed input, any function", () => {
  beforeEach(() => {
    for (const stub of Object.values(stubs)) stub.reset();
    table.reset();
    Object.assign(process.env, {
      TARGET_GROUP_ARN,
      ASG_NAME: "stream-intel-dev-appliances",
      MIN_HEALTHY_APPLIANCES: "2",
      MIN_HEALTHY_TARGETS: "2",
      FLOW_ARN: FLOW,
      CHANNEL_ID: "1234567",
      IDLE_TIMEOUT_MINUTES: "15",
      STATE_PARAMETER: "/stream-intel/dev/stream-state",
      CONTRIBUTORS_PARAMETER: "/stream-intel/dev/contributors",
      POLICY_PARAMETER: "/stream-intel/dev/policy",
      POLICY_SET_NAME: "contributors",
      EVENT_BUS_NAME: "default",
    });
  });

  const handlers: [string, Handler, string[]][] = [
    [
      "appliance healer",
      healer,
      ["alarm-unhealthy-hosts", "alarm-forwarding-stalled-math", "schedule-sweep"],
    ],
    [
      "stream manager",
      streamManager,
      ["start-stream", "stop-stream", "schedule-sweep", "mediaconnect-source-health"],
    ],
    [
      "whitelist rotator",
      rotator,
      ["ssm-contributors-changed", "whitelist-rotation-requested", "schedule-sweep"],
    ],
  ];
  for (const [name, handler, samples] of handlers) {
    it(`${name}: an envelope with a field missing or mistyped is refused by name, before any AWS call`, async () => {
      await fc.assert(
        fc.asyncProperty(brokenEnvelope(samples), async ({ sample, key, value }) => {
          await expectRefused(
            handler,
            withField(sample, [key], value),
            new RegExp(`event is malformed: .*${escapeRegExp(key)}`),
          );
        }),
        { numRuns: RUNS },
      );
    });
  }

  it("appliance healer: an alarm detail without a readable state or name is refused, before any AWS call", async () => {
    const broken = fc.oneof(
      fc.record({ path: fc.constantFrom(["state"], ["alarmName"]), value: fc.constant(undefined) }),
      fc.record({ path: fc.constant(["state"]), value: notAnObject }),
      fc.record({
        path: fc.constant(["state", "value"]),
        value: fc.oneof(
          notAString,
          fc.string().filter((s) => !["OK", "ALARM", "INSUFFICIENT_DATA"].includes(s)),
        ),
      }),
      fc.record({ path: fc.constant(["alarmName"]), value: notAString }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("alarm-unhealthy-hosts", "alarm-forwarding-stalled", "alarm-forwarding-stalled-math"),
        broken,
        async (sample, { path, value }) => {
          await expectRefused(
            healer,
            withField(sample, ["detail", ...path], value),
            new RegExp(`alarm detail is malformed: ${escapeRegExp(path[0])}`),
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("stream manager: a bad source health, channel state or schedule action is refused, before any AWS call", async () => {
    const cases = fc.oneof(
      fc.record({
        sample: fc.constant("mediaconnect-source-health"),
        path: fc.constantFrom(["current"], ["current", "state"]),
        value: fc.oneof(fc.constant(undefined), notAString),
        reason: fc.constant(/source health detail is malformed: current/),
      }),
      fc.record({
        sample: fc.constant("medialive-channel-state-change"),
        path: fc.constant(["state"]),
        value: fc.oneof(fc.constant(undefined), notAString),
        reason: fc.constant(/channel state detail is malformed: state/),
      }),
      fc.record({
        sample: fc.constant("schedule-sweep"),
        path: fc.constant(["action"]),
        value: fc.jsonValue().filter((v) => v !== "start" && v !== "stop"),
        reason: fc.constant(/schedule action must be "start" or "stop"/),
      }),
    );
    await fc.assert(
      fc.asyncProperty(cases, async ({ sample, path, value, reason }) => {
        await expectRefused(streamManager, withField(sample, ["detail", ...path], value), reason);
      }),
      { numRuns: RUNS },
    );
  });

  it("whitelist rotator: a malformed contributor schedule is refused after the reads, with no write", async () => {
    const notACidr = fc.string().filter((text) => {
      try {
        parseCidr(text);
        return false;
      } catch (error) {
        return error instanceof CidrError;
      }
    });
    const entry = { cidr: "203.0.113.0/24", label: "paris" };
    const schedules = fc.oneof(
      fc.jsonValue().filter((v) => !Array.isArray(v)),
      fc.array(fc.constant(entry), { minLength: 101, maxLength: 110 }),
      fc
        .oneof(
          notACidr.map((cidr) => ({ ...entry, cidr })),
          fc.constantFrom("0.0.0.0/0", "::/0", "203.0.113.5/24").map((cidr) => ({ ...entry, cidr })),
          fc.constantFrom("", "x".repeat(129)).map((label) => ({ ...entry, label })),
          fc
            .string()
            .filter((s) => Number.isNaN(Date.parse(s)))
            .map((notBefore) => ({ ...entry, notBefore })),
          fc
            .string({ minLength: 1 })
            .filter((k) => !["cidr", "label", "notBefore", "expiresAt", "__proto__"].includes(k))
            .map((key) => ({ ...entry, [key]: true })),
          fc.constant({ label: "no cidr" }),
        )
        .map((bad) => [bad]),
    );
    stubs.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: "[]", Version: 1 } });
    mediaConnect.on(DescribeFlowCommand as never).resolves({
      Flow: { FlowArn: FLOW, Status: "ACTIVE", Sources: [] },
    } as never);
    await fc.assert(
      fc.asyncProperty(schedules, async (schedule) => {
        stubs.ssm.resetHistory();
        mediaConnect.resetHistory();
        stubs.events.resetHistory();
        stubs.ssm
          .on(GetParameterCommand, { Name: "/stream-intel/dev/contributors" })
          .resolves({ Parameter: { Value: JSON.stringify(schedule), Version: 3 } });
        const { error, metrics } = await capture(() => rotator(sampleEvent("ssm-contributors-changed")));
        const shown = JSON.stringify(schedule);
        expect(error?.name, shown).toBe("InvalidInputError");
        expect(error?.message, shown).toMatch(/^contributor (parameter is malformed|entries refused): ./);
        expect(metrics.InvalidEvents, shown).toBe(1);
        const writes = [
          ...stubs.ssm.commandCalls(PutParameterCommand),
          ...stubs.events.commandCalls(PutEventsCommand),
          ...mediaConnect.calls().filter((call) => !(call.args[0] instanceof DescribeFlowCommand)),
        ];
        expect(writes, shown).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });
});
