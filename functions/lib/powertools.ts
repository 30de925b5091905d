/**
 * Handler plumbing shared by the functions, in the style of Powertools for AWS Lambda: a JSON logger
 * with the event id as correlation id, EMF metrics (namespace StreamIntel) flushed when the handler
 * ends whatever happened, and a malformed event counted and rethrown with its reason.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Context } from "aws-lambda";
import { AUTOMATION_NAMESPACE, COMMON_METRIC } from "../../contracts/automation-metrics.ts";
import { InvalidInputError } from "./errors.ts";

export { MetricUnit };

export interface Tools {
  logger: Logger;
  metrics: Metrics;
}

export function createTools(serviceName: string): Tools {
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? AUTOMATION_NAMESPACE,
      serviceName,
    }),
  };
}

/** Wraps a handler: context and correlation id on every log line, metrics always published. */
export function instrument<E, R>(tools: Tools, handler: (event: E, context?: Context) => Promise<R>) {
  return async (event: E, context?: Context): Promise<R> => {
    const { logger, metrics } = tools;
    if (context) logger.addContext(context);
    const id = (event as { id?: unknown } | null)?.id;
    if (typeof id === "string") logger.appendKeys({ correlation_id: id });
    try {
      return await handler(event, context);
    } catch (error) {
      if (error instanceof InvalidInputError) {
        metrics.addMetric(COMMON_METRIC.invalidEvents, MetricUnit.Count, 1);
        logger.error("rejected input, nothing changed", { reason: error.message });
      } else {
        logger.error("failed", error as Error);
      }
      throw error;
    } finally {
      metrics.publishStoredMetrics();
      logger.resetKeys();
    }
  };
}
