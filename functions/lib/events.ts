/**
 * EventBridge envelopes and the detail shapes the functions act on. Strict on the fields used, lenient
 * on the rest: AWS adds fields over time and some published samples carry placeholder values.
 */
import { z } from "zod";
import { formatIssues } from "../../contracts/validation.ts";
import { InvalidInputError } from "./errors.ts";

export const Envelope = z.object({
  id: z.string().min(1),
  "detail-type": z.string().min(1),
  source: z.string().min(1),
  time: z.string().optional(),
  resources: z.array(z.string()).default([]),
  // EventBridge Scheduler sends the detail as the string "{}" unless an input is configured.
  detail: z.preprocess(
    (value) => {
      if (typeof value !== "string") return value;
      try {
        return JSON.parse(value);
      } catch {
        return value;
      }
    },
    z.record(z.string(), z.unknown()),
  ),
});
export type Envelope = z.infer<typeof Envelope>;

export const AlarmDetail = z.object({
  alarmName: z.string(),
  state: z.object({ value: z.enum(["OK", "ALARM", "INSUFFICIENT_DATA"]), reason: z.string().optional() }),
  previousState: z.object({ value: z.string() }).partial().optional(),
  configuration: z
    .object({
      // A metric-math alarm lists its expressions and its metrics in any order.
      metrics: z
        .array(
          z.object({
            id: z.string().optional(),
            expression: z.string().optional(),
            metricStat: z
              .object({
                metric: z
                  .object({
                    namespace: z.string().optional(),
                    name: z.string().optional(),
                    dimensions: z.record(z.string(), z.string()).optional(),
                  })
                  .partial(),
                period: z.number().int().positive().optional(),
              })
              .partial()
              .optional(),
          }),
        )
        .optional(),
    })
    .partial()
    .optional(),
});

/** Parses `value` with `schema` or throws InvalidInputError naming every problem. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new InvalidInputError(`${what} is malformed: ${formatIssues(result.error)}`);
  }
  return result.data;
}

export function isSchedule(event: Envelope): boolean {
  return (
    event["detail-type"] === "Scheduled Event" &&
    (event.source === "aws.events" || event.source === "aws.scheduler")
  );
}

/** Exception names the SDK uses for "not now" (a conflicting operation, a throttle). */
export function errorName(error: unknown): string {
  return (error as { name?: string } | null)?.name ?? "";
}
