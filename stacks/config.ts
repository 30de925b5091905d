/**
 * Stage settings: addressing, instance type, group sizes, contributor whitelist, media ports. One
 * validated document with the defaults of the design; a stage overrides what it needs.
 */
import { z } from "zod";
import { checkCidr, isWorldOpen, parseCidr } from "../contracts/cidr.ts";
import { formatIssues } from "../contracts/validation.ts";

const cidr = z.string().superRefine(checkCidr);

const pair = z.tuple([cidr, cidr]);

/** A MediaLive RTP_PUSH input listens on this port at each of its endpoints; it cannot be chosen. */
export const MEDIALIVE_RTP_PORT = 5000;

const scheduleExpression = z
  .string()
  .regex(
    /^(cron|rate|at)\(.+\)$/,
    "expected an EventBridge Scheduler expression: cron(...), rate(...) or at(...)",
  );

export const StageConfig = z
  .object({
    stage: z.string().regex(/^[a-z][a-z0-9-]{0,20}$/),
    region: z.string().default("eu-west-1"),
    /** The two Availability Zones, "a" then "b" in the tables below. */
    zones: z.tuple([z.string(), z.string()]).default(["eu-west-1a", "eu-west-1b"]),
    streamVpcCidr: cidr.default("10.0.0.0/16"),
    mediaConnectSubnets: pair.default(["10.0.1.0/24", "10.0.2.0/24"]),
    mediaLiveSubnets: pair.default(["10.0.11.0/24", "10.0.12.0/24"]),
    endpointSubnets: pair.default(["10.0.21.0/28", "10.0.22.0/28"]),
    inspectionVpcCidr: cidr.default("10.1.0.0/16"),
    applianceSubnets: pair.default(["10.1.1.0/24", "10.1.2.0/24"]),
    gwlbSubnets: pair.default(["10.1.11.0/28", "10.1.12.0/28"]),
    /** UDP ports of the RTP outputs (MediaConnect → MediaLive). */
    mediaPorts: z
      .object({ from: z.number().int().min(1024), to: z.number().int().max(65535) })
      .default({ from: 5000, to: 5099 }),
    /** SRT listener port of the MediaConnect flow source. */
    ingestPort: z.number().int().default(5000),
    /** The contributor schedule seeded into SSM: the rotator keeps the flow's whitelist in line with it. */
    whitelist: z
      .array(
        z.object({
          cidr,
          label: z.string(),
          notBefore: z.string().optional(),
          expiresAt: z.string().optional(),
        }),
      )
      .min(1)
      .default([{ cidr: "198.51.100.0/28", label: "primary encoder (replace with yours)" }]),
    instanceType: z.string().default("c7gn.large"),
    minAppliances: z.number().int().min(2).default(2),
    maxAppliances: z.number().int().min(2).default(4),
    /**
     * Receive loops per appliance. One on a 2-vCPU c7gn.large: it gets a vCPU of its own (the daemon's
     * --cpu-affinity auto) and keeps p99 near a millisecond; one loop carries ~100k 1.4 kB packets/s.
     */
    applianceWorkers: z.number().int().min(1).default(1),
    healthCheckGraceSeconds: z.number().int().min(60).default(180),
    /** GWLB keeps existing flows on a deregistering target this long; the daemon drains longer. */
    deregistrationDelaySeconds: z.number().int().min(0).max(3600).default(45),
    drainSeconds: z.number().int().min(1).default(60),
    idleTimeoutMinutes: z.number().positive().default(15),
    /**
     * Scale out when the appliances average more than this many received packets per second each (one
     * receive loop carries about 100k: the benchmark), and whenever the kernel drops datagrams.
     */
    scaleOutPacketsPerSecond: z.number().int().positive().default(50_000),
    /** Who may fetch the HLS origin (a CDN's or the operators' ranges); never the whole internet. */
    hlsViewerCidrs: z.array(cidr).min(1).default(["198.51.100.0/24"]),
    /**
     * Recurring stream windows: EventBridge Scheduler starts the stream at `start` and stops it at `stop`
     * (cron expressions in `timezone`).
     */
    streamWindows: z
      .array(
        z.object({
          name: z.string().regex(/^[a-z0-9-]{1,24}$/),
          start: scheduleExpression,
          stop: scheduleExpression,
          timezone: z.string().default("UTC"),
        }),
      )
      .default([]),
    alarmEmail: z.string().email().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.maxAppliances < c.minAppliances)
      ctx.addIssue({ code: "custom", path: ["maxAppliances"], message: "below minAppliances" });
    if (c.drainSeconds <= c.deregistrationDelaySeconds) {
      ctx.addIssue({
        code: "custom",
        path: ["drainSeconds"],
        message: "must exceed deregistrationDelaySeconds, or flows are cut before GWLB moves them",
      });
    }
    if (c.mediaPorts.from > MEDIALIVE_RTP_PORT || c.mediaPorts.to < MEDIALIVE_RTP_PORT) {
      ctx.addIssue({
        code: "custom",
        path: ["mediaPorts"],
        message: `must include ${MEDIALIVE_RTP_PORT}, the port of every MediaLive RTP_PUSH input endpoint`,
      });
    }
    for (const [i, viewers] of c.hlsViewerCidrs.entries()) {
      try {
        if (isWorldOpen(parseCidr(viewers)))
          ctx.addIssue({
            code: "custom",
            path: ["hlsViewerCidrs", i],
            message: "world-open HLS origin refused",
          });
      } catch {
        // reported by the field's own check
      }
    }
    for (const [i, entry] of c.whitelist.entries()) {
      try {
        if (isWorldOpen(parseCidr(entry.cidr)))
          ctx.addIssue({
            code: "custom",
            path: ["whitelist", i, "cidr"],
            message: "world-open whitelist refused",
          });
      } catch {
        // reported by the field's own check
      }
    }
  });
export type StageConfig = z.output<typeof StageConfig>;

export function stageConfig(
  stage: string,
  overrides: Partial<z.input<typeof StageConfig>> = {},
): StageConfig {
  const result = StageConfig.safeParse({ stage, ...overrides });
  if (!result.success) {
    throw new Error(`stage "${stage}" configuration is invalid: ${formatIssues(result.error)}`);
  }
  return result.data;
}

/** Resource name with the app and stage, e.g. stream-intel-dev-appliances. */
export function named(config: StageConfig, name: string): string {
  return `stream-intel-${config.stage}-${name}`;
}
