/**
 * Whitelist rotator. The source of truth is one SSM parameter: contributor entries (CIDR, label,
 * optional notBefore / expiresAt). On a schedule (so time-boxed entries open and close on time), on
 * the parameter's change event and on a `Whitelist Rotation Requested` event it computes the
 * effective set, refuses anything world-open or malformed, and applies it: each MediaConnect flow
 * source's single WhitelistCidr (UpdateFlowSource), then the `sets.<name>` entry of the appliance
 * policy parameter. Nothing changed = nothing written. Emits `Whitelist Rotated` with the diff.
 *
 * A source takes one CIDR and a flow has at most two sources, so at most that many entries may be
 * active at once; more is refused, never widened into a covering CIDR. A source with no active entry
 * is closed by whitelisting 192.0.2.1/32 (TEST-NET-1, never routed on the internet).
 */
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import {
  DescribeFlowCommand,
  MediaConnectClient,
  UpdateFlowSourceCommand,
} from "@aws-sdk/client-mediaconnect";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { z } from "zod";
import { RotatorMetric, ServiceName } from "../contracts/automation-metrics.ts";
import {
  assign,
  type ContributorEntry,
  Contributors,
  effectiveEntries,
  ScheduleError,
} from "../contracts/contributor-schedule.ts";
import { DetailType, EVENT_SOURCE } from "../contracts/events.ts";
import { RotatorEnv } from "../contracts/function-env.ts";
import { PolicyError, validatePolicy } from "../contracts/policy.ts";
import { arn, readEnv } from "./lib/env.ts";
import { InvalidInputError } from "./lib/errors.ts";
import { Envelope, isSchedule, parse } from "./lib/events.ts";
import { oncePerEvent } from "./lib/idempotency.ts";
import { createTools, instrument, MetricUnit } from "./lib/powertools.ts";

const tools = createTools(ServiceName.whitelistRotator);
const { logger, metrics } = tools;

export { assign, CLOSED_CIDR, effectiveEntries } from "../contracts/contributor-schedule.ts";

const Settings = z.object({
  [RotatorEnv.contributorsParameter]: z.string().min(1),
  [RotatorEnv.policyParameter]: z.string().min(1),
  [RotatorEnv.policySetName]: z.string().min(1).default("contributors"),
  [RotatorEnv.flowArn]: arn("mediaconnect"),
  [RotatorEnv.eventBusName]: z.string().min(1).default("default"),
});

export const clients = {
  ssm: new SSMClient({}),
  mediaConnect: new MediaConnectClient({}),
  events: new EventBridgeClient({}),
};

export interface RotationResult {
  changed: boolean;
  sources: { sourceArn: string; from: string | undefined; to: string }[];
  policy: { from: string[]; to: string[]; updated: boolean };
}

type Trigger = "schedule" | "parameter change" | "requested";

const UNCHANGED: RotationResult = {
  changed: false,
  sources: [],
  policy: { from: [], to: [], updated: false },
};

/** Which trigger this is, or why it needs nothing: read and validated before any AWS call. */
export function readTrigger(
  raw: unknown,
  settings: z.output<typeof Settings>,
): { id: string; trigger: Trigger } | { ignored: string } {
  const event = parse(Envelope, raw, "event");
  const trigger = isSchedule(event)
    ? "schedule"
    : event.source === "aws.ssm" && event["detail-type"] === "Parameter Store Change"
      ? "parameter change"
      : event.source === EVENT_SOURCE && event["detail-type"] === DetailType.whitelistRotationRequested
        ? "requested"
        : null;
  if (!trigger) throw new InvalidInputError(`unexpected event ${event.source} / ${event["detail-type"]}`);
  if (trigger === "parameter change") {
    const detail = event.detail as { name?: unknown; exception?: unknown; operation?: unknown };
    if (detail.name !== settings[RotatorEnv.contributorsParameter])
      return { ignored: "another parameter changed" };
    // Parameter Store also reports operations that failed (with `exception`): nothing was written.
    if (detail.exception !== undefined)
      return {
        ignored: `the ${String(detail.operation)} failed (${String(detail.exception)}): nothing changed`,
      };
  }
  return { id: event.id, trigger };
}

export const handler = instrument(tools, async (raw: unknown, context?: Context): Promise<RotationResult> => {
  const settings = readEnv(Settings);
  const read = readTrigger(raw, settings);
  if ("ignored" in read) {
    logger.info(`ignored: ${read.ignored}`);
    return UNCHANGED;
  }
  return rotateOnce({ id: read.id, trigger: read.trigger, settings }, context);
});

const rotateOnce = oncePerEvent(
  async ({ trigger, settings }: { id: string; trigger: Trigger; settings: z.output<typeof Settings> }) =>
    rotate(trigger, settings),
);

async function rotate(trigger: Trigger, settings: z.output<typeof Settings>): Promise<RotationResult> {
  const stored = await clients.ssm.send(
    new GetParameterCommand({ Name: settings[RotatorEnv.contributorsParameter], WithDecryption: true }),
  );
  let entries: ContributorEntry[];
  try {
    entries = parse(Contributors, JSON.parse(stored.Parameter?.Value ?? "null"), "contributor parameter");
  } catch (error) {
    metrics.addMetric(RotatorMetric.refused, MetricUnit.Count, 1);
    if (error instanceof InvalidInputError) throw error;
    throw new InvalidInputError(`contributor parameter is not JSON: ${(error as Error).message}`);
  }
  let active: { cidr: string; label: string }[];
  let plan: Map<string, string>;
  const flow = (
    await clients.mediaConnect.send(new DescribeFlowCommand({ FlowArn: settings[RotatorEnv.flowArn] }))
  ).Flow;
  if (!flow) throw new Error(`flow ${settings[RotatorEnv.flowArn]} not found`);
  const sources = (flow.Sources?.length ? flow.Sources : flow.Source ? [flow.Source] : []).map((s) => ({
    arn: s.SourceArn ?? "",
    name: s.Name ?? "",
    cidr: s.WhitelistCidr,
  }));
  try {
    active = effectiveEntries(entries, new Date());
    plan = assign(sources, active);
  } catch (error) {
    metrics.addMetric(RotatorMetric.refused, MetricUnit.Count, 1);
    if (error instanceof ScheduleError) throw new InvalidInputError(error.message, { cause: error });
    throw error;
  }

  // 1. The flow's sources.
  const sourceChanges = sources
    .filter((s) => plan.get(s.arn) !== s.cidr)
    .map((s) => ({ sourceArn: s.arn, from: s.cidr, to: plan.get(s.arn)! }));
  for (const change of sourceChanges) {
    await clients.mediaConnect.send(
      new UpdateFlowSourceCommand({
        FlowArn: settings[RotatorEnv.flowArn],
        SourceArn: change.sourceArn,
        WhitelistCidr: change.to,
      }),
    );
    metrics.addMetric(RotatorMetric.sourcesUpdated, MetricUnit.Count, 1);
  }

  // 2. The appliance policy: only the set this function owns.
  const setName = settings[RotatorEnv.policySetName];
  const policyText = (
    await clients.ssm.send(new GetParameterCommand({ Name: settings[RotatorEnv.policyParameter] }))
  ).Parameter?.Value;
  const cidrs = active.map((a) => a.cidr);
  let previous: string[] = [];
  let policyUpdated = false;
  try {
    const document = JSON.parse(policyText ?? "null");
    validatePolicy(document, "current appliance policy");
    previous = document.sets?.[setName] ?? [];
    if (JSON.stringify(previous) !== JSON.stringify(cidrs)) {
      document.sets = { ...document.sets, [setName]: cidrs };
      validatePolicy(document, "rotated appliance policy");
      await clients.ssm.send(
        new PutParameterCommand({
          Name: settings[RotatorEnv.policyParameter],
          Value: JSON.stringify(document, null, 2),
          Type: "String",
          Overwrite: true,
        }),
      );
      policyUpdated = true;
      metrics.addMetric(RotatorMetric.policyUpdated, MetricUnit.Count, 1);
    }
  } catch (error) {
    if (sourceChanges.length > 0) {
      // The flow already has the new whitelist: count it, say so, and fail so that the invocation is
      // retried (and the next schedule tries again); the flow update is then a no-op.
      metrics.addMetric(RotatorMetric.partialFailures, MetricUnit.Count, 1);
      logger.error("flow sources rotated but the appliance policy was not", {
        error: (error as Error).message,
        sourceChanges,
      });
    }
    if (error instanceof SyntaxError || error instanceof PolicyError) {
      throw new InvalidInputError(`appliance policy parameter cannot be rotated: ${error.message}`);
    }
    throw error;
  }

  const result: RotationResult = {
    changed: sourceChanges.length > 0 || policyUpdated,
    sources: sourceChanges,
    policy: { from: previous, to: cidrs, updated: policyUpdated },
  };
  if (!result.changed) {
    metrics.addMetric(RotatorMetric.noChange, MetricUnit.Count, 1);
    logger.info("nothing to rotate", { trigger, active });
    return result;
  }
  await clients.events.send(
    new PutEventsCommand({
      Entries: [
        {
          Source: EVENT_SOURCE,
          DetailType: DetailType.whitelistRotated,
          EventBusName: settings[RotatorEnv.eventBusName],
          Detail: JSON.stringify({
            trigger,
            added: cidrs.filter((c) => !previous.includes(c)),
            removed: previous.filter((c) => !cidrs.includes(c)),
            sources: sourceChanges,
          }),
        },
      ],
    }),
  );
  metrics.addMetric(RotatorMetric.rotations, MetricUnit.Count, 1);
  logger.info("whitelist rotated", { trigger, result });
  return result;
}
