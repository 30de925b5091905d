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
import { type CidrError, cidrsOverlap, isWorldOpen, parseCidr } from "../contracts/cidr.ts";
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

export const CLOSED_CIDR = "192.0.2.1/32";

const Settings = z.object({
  [RotatorEnv.contributorsParameter]: z.string().min(1),
  [RotatorEnv.policyParameter]: z.string().min(1),
  [RotatorEnv.policySetName]: z.string().min(1).default("contributors"),
  [RotatorEnv.flowArn]: arn("mediaconnect"),
  [RotatorEnv.eventBusName]: z.string().min(1).default("default"),
});

const isoTime = z.string().refine((v) => !Number.isNaN(Date.parse(v)), "expected an ISO 8601 time");

export const ContributorEntry = z
  .object({
    cidr: z.string(),
    label: z.string().min(1).max(128),
    notBefore: isoTime.optional(),
    expiresAt: isoTime.optional(),
  })
  .strict();
export const Contributors = z.array(ContributorEntry).max(100);
export type ContributorEntry = z.infer<typeof ContributorEntry>;

export const clients = {
  ssm: new SSMClient({}),
  mediaConnect: new MediaConnectClient({}),
  events: new EventBridgeClient({}),
};

/** The CIDRs in force at `now`, validated: malformed or world-open entries refuse the whole rotation. */
export function effectiveEntries(entries: ContributorEntry[], now: Date): { cidr: string; label: string }[] {
  const problems: string[] = [];
  const active: { cidr: string; label: string }[] = [];
  for (const entry of entries) {
    let canonical: string;
    try {
      const cidr = parseCidr(entry.cidr);
      if (isWorldOpen(cidr)) {
        problems.push(`${entry.label}: ${entry.cidr} is open to the whole internet`);
        continue;
      }
      canonical = cidr.text;
    } catch (error) {
      problems.push(`${entry.label}: ${(error as CidrError).message}`);
      continue;
    }
    if (entry.notBefore && entry.expiresAt && Date.parse(entry.notBefore) >= Date.parse(entry.expiresAt)) {
      problems.push(`${entry.label}: notBefore is not before expiresAt`);
      continue;
    }
    const started = !entry.notBefore || Date.parse(entry.notBefore) <= now.getTime();
    const expired = entry.expiresAt !== undefined && Date.parse(entry.expiresAt) <= now.getTime();
    if (started && !expired) active.push({ cidr: canonical, label: entry.label });
  }
  if (problems.length > 0) throw new InvalidInputError(`contributor entries refused: ${problems.join("; ")}`);
  return active.sort((a, b) => a.cidr.localeCompare(b.cidr));
}

/**
 * Which CIDR each source gets: sources keep a CIDR that stays active, the rest are filled in order,
 * and sources left over are closed. Refuses more active entries than sources, or overlapping ones.
 */
export function assign(
  sources: { arn: string; name: string; cidr: string | undefined }[],
  active: { cidr: string; label: string }[],
): Map<string, string> {
  for (let i = 0; i < active.length; i++) {
    for (let j = i + 1; j < active.length; j++) {
      if (cidrsOverlap(parseCidr(active[i].cidr), parseCidr(active[j].cidr))) {
        throw new InvalidInputError(
          `active contributors ${active[i].label} (${active[i].cidr}) and ${active[j].label} (${active[j].cidr}) overlap`,
        );
      }
    }
  }
  if (active.length > sources.length) {
    throw new InvalidInputError(
      `${active.length} contributor entries are active (${active.map((a) => `${a.label} ${a.cidr}`).join(", ")}) but the flow has ${sources.length} source(s), each with one whitelist CIDR; refusing rather than widening`,
    );
  }
  const out = new Map<string, string>();
  const remaining = active.map((a) => a.cidr).filter((cidr) => !sources.some((s) => s.cidr === cidr));
  for (const source of sources) {
    if (source.cidr && active.some((a) => a.cidr === source.cidr)) out.set(source.arn, source.cidr);
    else out.set(source.arn, remaining.shift() ?? CLOSED_CIDR);
  }
  return out;
}

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
