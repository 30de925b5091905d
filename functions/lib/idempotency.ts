/**
 * Once per event: EventBridge and Scheduler deliver at least once, so the same event (same `id`) can
 * arrive twice. Powertools Idempotency records each event id in DynamoDB before the work and its
 * result after; a second delivery returns the recorded result without acting again, one that arrives
 * while the first is still running fails (and is retried), and a failed run leaves no record, so its
 * retry runs for real.
 */

import { IdempotencyConfig, makeIdempotent } from "@aws-lambda-powertools/idempotency";
import { DynamoDBPersistenceLayer } from "@aws-lambda-powertools/idempotency/dynamodb";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Context } from "aws-lambda";
import { z } from "zod";
import { CommonEnv } from "../../contracts/function-env.ts";
import { readEnv } from "./env.ts";

export const idempotencyClients = { dynamoDb: new DynamoDBClient({}) };

const Settings = z.object({ [CommonEnv.idempotencyTable]: z.string().min(1) });

/** How long an event id is remembered (the stack's table expires records after it). */
export const REMEMBER_SECONDS = 24 * 3600;

/** Wraps `work` so that it runs once per event id; the event must already be validated. */
export function oncePerEvent<E extends { id: string }, R>(work: (event: E) => Promise<R>) {
  let wrapped: ((event: E) => Promise<R>) | undefined;
  const config = new IdempotencyConfig({
    eventKeyJmesPath: "id",
    throwOnNoIdempotencyKey: true,
    expiresAfterSeconds: REMEMBER_SECONDS,
  });
  return (event: E, context?: Context): Promise<R> => {
    if (!wrapped) {
      const settings = readEnv(Settings);
      wrapped = makeIdempotent(work, {
        persistenceStore: new DynamoDBPersistenceLayer({
          tableName: settings[CommonEnv.idempotencyTable],
          awsSdkV3Client: idempotencyClients.dynamoDb,
        }),
        config,
      });
    }
    if (context) config.registerLambdaContext(context);
    return wrapped(event);
  };
}
