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
import type { Flow } from "@aws-sdk/client-mediaconnect";
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
import { eventsClient, putCustomEvent } from "./lib/aws/eventbridge.ts";
import { describeFlow, mediaConnectClient, setSourceWhitelist } from "./lib/aws/mediaconnect.ts";
import { getParameter, putParameter, ssmClient } from "./lib/aws/ssm.ts";
import { arn, defineFunction, Envelope, InvalidInputError, isSchedule, parse } from "./lib/function.ts";
import { oncePerEvent } from "./lib/idempotency.ts";

export { assign, CLOSED_CIDR, effectiveEntries } from "../contracts/contributor-schedule.ts";

const Settings = z.object({
  [RotatorEnv.contributorsParameter]: z.string().min(1),
  [RotatorEnv.policyParameter]: z.string().min(1),
  [RotatorEnv.policySetName]: z.string().min(1).default("contributors"),
  [RotatorEnv.flowArn]: arn("mediaconnect"),
  [RotatorEnv.eventBusName]: z.string().min(1).default("default"),
});

const { logger, count, readSettings, handle } = defineFunction(ServiceName.whitelistRotator, Settings);
type Settings = z.output<typeof Settings>;

export const clients = { ssm: ssmClient, mediaConnect: mediaConnectClient, events: eventsClient };

export interface RotationResult {
  changed: boolean;
  sources: SourceChange[];
  policy: { from: string[]; to: string[]; updated: boolean };
}

type Trigger = "schedule" | "parameter change" | "requested";
type Source = { arn: string; name: string; cidr: string | undefined };
type SourceChange = { sourceArn: string; from: string | undefined; to: string };

const UNCHANGED: RotationResult = {
  changed: false,
  sources: [],
  policy: { from: [], to: [], updated: false },
};

/** Which trigger this is, or why it needs nothing: read and validated before any AWS call. */
export function readTrigger(
  raw: unknown,
  settings: Settings,
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

export const handler = handle(async (raw: unknown, context?: Context): Promise<RotationResult> => {
  const settings = readSettings();
  const read = readTrigger(raw, settings);
  if ("ignored" in read) {
    logger.info(`ignored: ${read.ignored}`);
    return UNCHANGED;
  }
  return rotateOnce({ id: read.id, trigger: read.trigger, settings }, context);
});

const rotateOnce = oncePerEvent(
  async ({ trigger, settings }: { id: string; trigger: Trigger; settings: Settings }) =>
    rotate(trigger, settings),
);

/** Reads the schedule and the flow, applies the effective set to the flow then the policy, announces it. */
async function rotate(trigger: Trigger, settings: Settings): Promise<RotationResult> {
  const entries = await readContributors(settings[RotatorEnv.contributorsParameter]);
  const sources = flowSources(await describeFlow(settings[RotatorEnv.flowArn]), settings[RotatorEnv.flowArn]);
  const { active, plan } = refusalCounted(() => planRotation(entries, sources, new Date()));
  const sourceChanges = changesOf(sources, plan);
  for (const change of sourceChanges) {
    await setSourceWhitelist(settings[RotatorEnv.flowArn], change.sourceArn, change.to);
    count(RotatorMetric.sourcesUpdated);
  }
  const cidrs = active.map((a) => a.cidr);
  const policy = await applyPolicy(settings, cidrs, sourceChanges);
  const result: RotationResult = {
    changed: sourceChanges.length > 0 || policy.updated,
    sources: sourceChanges,
    policy: { from: policy.previous, to: cidrs, updated: policy.updated },
  };
  if (!result.changed) {
    count(RotatorMetric.noChange);
    logger.info("nothing to rotate", { trigger, active });
    return result;
  }
  await putCustomEvent(settings[RotatorEnv.eventBusName], DetailType.whitelistRotated, {
    trigger,
    added: cidrs.filter((c) => !policy.previous.includes(c)),
    removed: policy.previous.filter((c) => !cidrs.includes(c)),
    sources: sourceChanges,
  });
  count(RotatorMetric.rotations);
  logger.info("whitelist rotated", { trigger, result });
  return result;
}

/** Runs `decide`, counting a refusal (a malformed or unsatisfiable schedule) before it is thrown. */
function refusalCounted<T>(decide: () => T): T {
  try {
    return decide();
  } catch (error) {
    count(RotatorMetric.refused);
    throw error;
  }
}

async function readContributors(parameterName: string): Promise<ContributorEntry[]> {
  const text = await getParameter(parameterName, true);
  return refusalCounted(() => parseContributors(text));
}

/** The contributor parameter's entries, or InvalidInputError saying what is wrong with them. */
export function parseContributors(text: string | undefined): ContributorEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text ?? "null");
  } catch (error) {
    throw new InvalidInputError(`contributor parameter is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parse(Contributors, json, "contributor parameter");
}

/** The flow's sources (a flow has one, or two for failover) with the CIDR each accepts today. */
export function flowSources(flow: Flow | undefined, flowArn: string): Source[] {
  if (!flow) throw new Error(`flow ${flowArn} not found`);
  return (flow.Sources?.length ? flow.Sources : flow.Source ? [flow.Source] : []).map((s) => ({
    arn: s.SourceArn ?? "",
    name: s.Name ?? "",
    cidr: s.WhitelistCidr,
  }));
}

/** The entries active at `now` and the CIDR each source gets; a refused schedule is invalid input. */
function planRotation(entries: ContributorEntry[], sources: Source[], now: Date) {
  try {
    const active = effectiveEntries(entries, now);
    return { active, plan: assign(sources, active) };
  } catch (error) {
    if (error instanceof ScheduleError) throw new InvalidInputError(error.message, { cause: error });
    throw error;
  }
}

export function changesOf(sources: Source[], plan: Map<string, string>): SourceChange[] {
  return sources
    .filter((s) => plan.get(s.arn) !== s.cidr)
    .map((s) => ({ sourceArn: s.arn, from: s.cidr, to: plan.get(s.arn)! }));
}

/**
 * The policy document with only the set this function owns replaced by `cidrs`, both validated;
 * `next` is absent when the set already holds them. Throws SyntaxError or PolicyError.
 */
export function rotatePolicy(text: string | undefined, setName: string, cidrs: string[]) {
  const document = JSON.parse(text ?? "null");
  validatePolicy(document, "current appliance policy");
  const previous: string[] = document.sets?.[setName] ?? [];
  if (JSON.stringify(previous) === JSON.stringify(cidrs)) return { previous, next: undefined };
  document.sets = { ...document.sets, [setName]: cidrs };
  validatePolicy(document, "rotated appliance policy");
  return { previous, next: JSON.stringify(document, null, 2) };
}

async function applyPolicy(
  settings: Settings,
  cidrs: string[],
  sourceChanges: SourceChange[],
): Promise<{ previous: string[]; updated: boolean }> {
  const parameterName = settings[RotatorEnv.policyParameter];
  const text = await getParameter(parameterName);
  try {
    const { previous, next } = rotatePolicy(text, settings[RotatorEnv.policySetName], cidrs);
    if (next === undefined) return { previous, updated: false };
    await putParameter(parameterName, next);
    count(RotatorMetric.policyUpdated);
    return { previous, updated: true };
  } catch (error) {
    if (sourceChanges.length > 0) {
      // The flow already has the new whitelist: count it, say so, and fail so that the invocation is
      // retried (and the next schedule tries again); the flow update is then a no-op.
      count(RotatorMetric.partialFailures);
      logger.error("flow sources rotated but the appliance policy was not", {
        error: (error as Error).message,
        sourceChanges,
      });
    }
    if (error instanceof SyntaxError || error instanceof PolicyError) {
      throw new InvalidInputError(`appliance policy parameter cannot be rotated: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
}
