/**
 * What makes the automation's event delivery safe to repeat and impossible to lose quietly: the
 * dead-letter queue every EventBridge target, every Scheduler schedule and every function's own
 * asynchronous retries end in, and the Powertools Idempotency table where each handled event id is
 * recorded so that a second delivery of the same event acts once.
 */
import { dynamodb, sqs } from "@pulumi/aws";
import { named, type StageConfig } from "./config.ts";

export interface Delivery {
  deadLetters: sqs.Queue;
  idempotency: dynamodb.Table;
}

export function createDelivery(config: StageConfig): Delivery {
  const deadLetters = new sqs.Queue(named(config, "automation-dead-letters"), {
    name: named(config, "automation-dead-letters"),
    messageRetentionSeconds: 14 * 24 * 3600,
    sqsManagedSseEnabled: true,
  });
  const idempotency = new dynamodb.Table(named(config, "idempotency"), {
    name: named(config, "idempotency"),
    billingMode: "PAY_PER_REQUEST",
    hashKey: "id",
    attributes: [{ name: "id", type: "S" }],
    // Powertools' DynamoDB persistence layer writes the record's expiry (epoch seconds) here.
    ttl: { attributeName: "expiration", enabled: true },
    pointInTimeRecovery: { enabled: false },
  });
  return { deadLetters, idempotency };
}
