/**
 * The contributor schedule and what it allows at a given moment: entries (CIDR, label, optional
 * notBefore / expiresAt) reduced to the CIDRs in force, then one CIDR per MediaConnect flow source.
 * The whitelist rotator applies the result to AWS; the lab's MediaConnect stand-in admits SRT callers
 * by it. Pure: no clock, no I/O.
 *
 * A source takes one CIDR and a flow has at most two sources, so at most that many entries may be
 * active at once; more is refused, never widened into a covering CIDR. A source with no active entry
 * is closed by whitelisting 192.0.2.1/32 (TEST-NET-1, never routed on the internet).
 */
import { z } from "zod";
import { type CidrError, cidrsOverlap, isWorldOpen, parseCidr } from "./cidr.ts";

export const CLOSED_CIDR = "192.0.2.1/32";

/** A schedule that cannot be applied; the message names every entry at fault. */
export class ScheduleError extends Error {
  override readonly name = "ScheduleError";
}

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

/** The CIDRs in force at `now`, validated: malformed or world-open entries refuse the whole schedule. */
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
  if (problems.length > 0) throw new ScheduleError(`contributor entries refused: ${problems.join("; ")}`);
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
        throw new ScheduleError(
          `active contributors ${active[i].label} (${active[i].cidr}) and ${active[j].label} (${active[j].cidr}) overlap`,
        );
      }
    }
  }
  if (active.length > sources.length) {
    throw new ScheduleError(
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
