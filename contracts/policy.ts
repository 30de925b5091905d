/**
 * The appliance policy: one JSON document, validated here by every side that reads or writes it (the
 * appliance at load, the whitelist rotator before it publishes, the stacks when they seed the SSM
 * parameter). The field-by-field reference is in the README ("Policy").
 */
import { z } from "zod";
import { checkCidr } from "./cidr.ts";
import { describeIssues } from "./validation.ts";

/** What a check does when it fires: drop the packet, let it through but log and count it, or nothing. */
export const CheckAction = z.enum(["drop", "alert", "off"]);
export type CheckAction = z.infer<typeof CheckAction>;

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "names are 1-64 characters: letters, digits, '_', '.', '-'");

const cidrText = z.string().superRefine(checkCidr);

/** A CIDR, or `@name` for a named set under `sets` (the whitelist rotator rewrites sets, never flows). */
const addressRef = z.string().superRefine((value, ctx) => {
  if (!value.startsWith("@")) return checkCidr(value, ctx);
  if (!/^@[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(value)) {
    ctx.addIssue({ code: "custom", message: `"${value}" is not a set reference (@name)` });
  }
});

const port = z.number().int().min(0).max(65535);

/** `5000`, `"5000"` or `"5000-5099"`, normalised to an inclusive range. */
export const PortRange = z
  .union([port, z.string().regex(/^\d{1,5}(-\d{1,5})?$/, 'port ranges look like 5000 or "5000-5099"')])
  .transform((value, ctx) => {
    const [fromText, toText] = String(value).split("-");
    const from = Number(fromText);
    const to = toText === undefined ? from : Number(toText);
    if (from > 65535 || to > 65535 || from > to) {
      ctx.addIssue({ code: "custom", message: `bad port range "${value}"` });
      return z.NEVER;
    }
    return { from, to };
  });
export type PortRange = z.output<typeof PortRange>;

export const Protocol = z.enum(["udp", "tcp", "icmp", "icmpv6", "any"]);
export type Protocol = z.infer<typeof Protocol>;

const IpChecks = z
  .object({
    /** Packets arriving with a TTL / hop limit below this are dropped (`ip_ttl_low`). */
    minTtl: z.number().int().min(0).max(255).default(2),
    allowOptions: z.boolean().default(false),
    allowFragments: z.boolean().default(false),
  })
  .strict();

const RtpChecks = z
  .object({
    payloadTypes: z.array(z.number().int().min(0).max(127)).min(1).default([33]),
    /**
     * A new SSRC on a live flow is a suspected hijack (`rtp_ssrc_changed`); it takes over only once the
     * pinned SSRC has been silent for `handoverSilenceMs` (`rtp_ssrc_handover`).
     */
    pinSsrc: z.boolean().default(true),
    /**
     * Forward sequence steps above this are dropped (`rtp_seq_jump`) until the stream proves it resynced.
     * RFC 3550 A.1 tolerates 3000 (MAX_DROPOUT); a single packet may move the flow that far, so a blind
     * spoofer of the SSRC hits with 3000/65536 of its guesses. 128 packets is over 60 ms of a 20 Mbit/s
     * stream lost in one go, which a path inside a VPC does not do; a larger loss costs probation.
     */
    maxSeqJump: z.number().int().min(1).max(32767).default(128),
    /**
     * RFC 3550 A.1 probation: packets in sequence (with no packet at the old position between them) that
     * a stream must show at a new sequence position, or a new SSRC, before it is followed there. All but
     * the last are dropped, so a restart costs at most this many packets.
     */
    probationPackets: z.number().int().min(2).max(64).default(8),
    /**
     * How long, at least, the pinned SSRC must have been silent before a new one may take the pin (a
     * handover); a bursty stream must be silent for 4 times its own largest recent gap when that is longer.
     */
    handoverSilenceMs: z.number().int().min(1).max(10_000).default(50),
    /** How far behind the highest sequence a late (reordered) packet may be; duplicates inside it are replays. */
    reorderWindow: z.number().int().min(0).max(1024).default(64),
    /** Largest timestamp step, in RTP clock ticks (90 kHz for MP2T), between consecutive packets. */
    maxTimestampJump: z.number().int().min(1).max(0x7fffffff).default(900_000),
  })
  .strict();

const MpegTsChecks = z
  .object({
    /** Continuity-counter gaps usually mean loss upstream, not an attack: alert by default. */
    continuity: CheckAction.default("alert"),
    transportError: CheckAction.default("drop"),
    /** PIDs absent from the PMT (once a PAT and PMT have been seen on the flow). */
    unexpectedPid: CheckAction.default("drop"),
    /** PAT/PMT sections whose CRC_32 is wrong (`ts_psi_crc`) or whose lengths lie (`ts_psi_length`). */
    psiErrors: CheckAction.default("drop"),
  })
  .strict();

const RateLimits = z
  .object({
    maxPacketsPerSecond: z.number().positive().default(20_000),
    maxBitsPerSecond: z.number().positive().default(200_000_000),
    /** Bucket depth, in seconds of the ceiling. */
    burstSeconds: z.number().positive().max(60).default(0.5),
  })
  .strict();

const AnomalyChecks = z
  .object({
    action: CheckAction.default("alert"),
    windowMs: z.number().int().min(100).max(60_000).default(1000),
    /** Windows of baseline before the detector may fire. */
    warmupWindows: z.number().int().min(2).max(1000).default(10),
    /** How many standard deviations from the baseline a window must be... */
    zScore: z.number().positive().default(6),
    /** ...and by what factor it must differ from the baseline mean, so quiet streams do not flap. */
    minRatio: z.number().min(1).default(3),
  })
  .strict();

export const Profile = z
  .object({
    description: z.string().max(500).optional(),
    ip: IpChecks.default(IpChecks.parse({})),
    /** Absent = the payload is not parsed as RTP (and so not as MPEG-TS either). */
    rtp: RtpChecks.optional(),
    mpegts: MpegTsChecks.optional(),
    rate: RateLimits.optional(),
    anomaly: AnomalyChecks.optional(),
  })
  .strict();
export type Profile = z.output<typeof Profile>;

export const Flow = z
  .object({
    name,
    src: z.array(addressRef).min(1),
    dst: z.array(addressRef).min(1),
    protocol: Protocol,
    /** Omitted = every port. Only meaningful for udp and tcp. */
    dstPorts: z.array(PortRange).min(1).optional(),
    profile: name,
  })
  .strict();
export type Flow = z.output<typeof Flow>;

export const RuleAction = z.enum(["allow", "drop", "alert"]);
export type RuleAction = z.infer<typeof RuleAction>;

export const Rule = z
  .object({
    name,
    description: z.string().max(500).optional(),
    match: z
      .object({
        src: z.array(addressRef).min(1).optional(),
        dst: z.array(addressRef).min(1).optional(),
        protocol: Protocol.optional(),
        srcPorts: z.array(PortRange).min(1).optional(),
        dstPorts: z.array(PortRange).min(1).optional(),
        /** Inner IP packet length bounds, inclusive. */
        minLength: z.number().int().min(0).max(65535).optional(),
        maxLength: z.number().int().min(0).max(65535).optional(),
        rtpPayloadTypes: z.array(z.number().int().min(0).max(127)).min(1).optional(),
      })
      .strict(),
    action: RuleAction,
  })
  .strict();
export type Rule = z.output<typeof Rule>;

export const Limits = z
  .object({
    maxFlows: z.number().int().min(1).max(4_000_000).default(200_000),
    flowIdleSeconds: z.number().min(1).max(3600).default(30),
    newFlowsPerSecondPerSource: z.number().positive().default(200),
    newFlowBurstPerSource: z.number().int().min(1).default(400),
    /** Security events logged per second and per reason; the rest are counted as suppressed. */
    securityEventsPerSecond: z.number().int().min(0).max(10_000).default(10),
  })
  .strict();
export type Limits = z.output<typeof Limits>;

/** Rules are matched through a 32-bit mask per flow. */
export const MAX_RULES = 32;

const PolicyDocument = z
  .object({
    version: z.literal(1),
    description: z.string().max(2000).optional(),
    sets: z.record(name, z.array(cidrText)).default({}),
    profiles: z.record(name, Profile),
    flows: z.array(Flow),
    rules: z.array(Rule).max(MAX_RULES).default([]),
    limits: Limits.default(Limits.parse({})),
  })
  .strict();
type PolicyDocument = z.output<typeof PolicyDocument>;
type Issue = (path: (string | number)[], message: string) => void;

/** The references a schema cannot check alone: names unique, profiles and `@sets` defined, and so on. */
export const Policy = PolicyDocument.superRefine((policy, ctx) => {
  const issue: Issue = (path, message) => ctx.addIssue({ code: "custom", path, message });
  checkFlows(policy, issue);
  checkRules(policy, issue);
  checkProfiles(policy, issue);
});

/** Each `@set` named in `refs` must exist. */
function checkSetRefs(
  policy: PolicyDocument,
  refs: readonly string[] | undefined,
  path: (string | number)[],
  issue: Issue,
) {
  for (const [i, ref] of (refs ?? []).entries()) {
    if (ref.startsWith("@") && !(ref.slice(1) in policy.sets)) issue([...path, i], `unknown set "${ref}"`);
  }
}

function checkFlows(policy: PolicyDocument, issue: Issue): void {
  const seen = new Set<string>();
  for (const [i, flow] of policy.flows.entries()) {
    if (seen.has(flow.name)) issue(["flows", i, "name"], `duplicate flow "${flow.name}"`);
    seen.add(flow.name);
    if (!(flow.profile in policy.profiles))
      issue(["flows", i, "profile"], `unknown profile "${flow.profile}"`);
    checkSetRefs(policy, flow.src, ["flows", i, "src"], issue);
    checkSetRefs(policy, flow.dst, ["flows", i, "dst"], issue);
  }
}

function checkRules(policy: PolicyDocument, issue: Issue): void {
  const seen = new Set<string>();
  for (const [i, rule] of policy.rules.entries()) {
    if (seen.has(rule.name)) issue(["rules", i, "name"], `duplicate rule "${rule.name}"`);
    seen.add(rule.name);
    checkSetRefs(policy, rule.match.src, ["rules", i, "match", "src"], issue);
    checkSetRefs(policy, rule.match.dst, ["rules", i, "match", "dst"], issue);
    const { minLength, maxLength } = rule.match;
    if (minLength !== undefined && maxLength !== undefined && minLength > maxLength) {
      issue(["rules", i, "match"], "minLength is above maxLength");
    }
  }
}

function checkProfiles(policy: PolicyDocument, issue: Issue): void {
  for (const [profileName, profile] of Object.entries(policy.profiles)) {
    if (profile.mpegts && !profile.rtp) {
      issue(
        ["profiles", profileName, "mpegts"],
        "mpegts checks need rtp checks (the transport stream is read from the RTP payload)",
      );
    }
  }
}
export type Policy = z.output<typeof Policy>;
export type PolicyInput = z.input<typeof Policy>;

export class PolicyError extends Error {
  readonly issues: readonly string[];
  constructor(message: string, issues: readonly string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.issues = issues;
  }
}

/** Parses policy JSON text; throws PolicyError naming every problem. */
export function parsePolicy(text: string, origin = "policy"): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new PolicyError(`${origin} is not valid JSON: ${(error as Error).message}`, [], { cause: error });
  }
  return validatePolicy(raw, origin);
}

export function validatePolicy(raw: unknown, origin = "policy"): Policy {
  const result = Policy.safeParse(raw);
  if (!result.success) {
    const issues = describeIssues(result.error);
    throw new PolicyError(`${origin} is invalid: ${issues.join("; ")}`, issues);
  }
  return result.data;
}
