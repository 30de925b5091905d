/**
 * What each function's module opens with, in one place: the Powertools logger and metrics of its
 * service, its settings read from the environment (at each invocation, so a bad setting fails that
 * invocation with InvalidInputError, as a bad event does), and its handler's wrapper.
 */
import type { Context } from "aws-lambda";
import type { z } from "zod";
import { readEnv } from "./env.ts";
import { createTools, instrument, MetricUnit } from "./powertools.ts";

export { arn } from "./env.ts";
export { InvalidInputError } from "./errors.ts";
export { Envelope, isSchedule, parse } from "./events.ts";

export function defineFunction<S extends z.ZodType>(serviceName: string, settings: S) {
  const tools = createTools(serviceName);
  return {
    logger: tools.logger,
    /** Adds `value` (1 unless said) to one of the service's Count metrics. */
    count: (metric: string, value = 1) => tools.metrics.addMetric(metric, MetricUnit.Count, value),
    readSettings: (): z.output<S> => readEnv(settings),
    /** The Lambda handler: `work`, with the context on every log line and the metrics always published. */
    handle: <E, R>(work: (event: E, context?: Context) => Promise<R>) => instrument(tools, work),
  };
}
