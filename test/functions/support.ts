/**
 * Shared by the function tests: sample events from events/, the EMF metrics a handler printed, and the
 * idempotency table.
 */
import { readFileSync } from "node:fs";
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DeleteItemCommandInput,
  DynamoDBClient,
  GetItemCommand,
  type GetItemCommandInput,
  PutItemCommand,
  type PutItemCommandInput,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { vi } from "vitest";

export function sampleEvent(name: string): Record<string, unknown> & { detail: Record<string, unknown> } {
  return JSON.parse(readFileSync(new URL(`../../events/${name}.json`, import.meta.url), "utf8"));
}

/** Runs `fn` capturing stdout; returns its result (or error) and the EMF metrics printed, summed by name. */
export async function capture<T>(
  fn: () => Promise<T>,
): Promise<{ result?: T; error?: Error; metrics: Record<string, number>; logs: Record<string, unknown>[] }> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split("\n").filter(Boolean));
    return true;
  });
  let result: T | undefined;
  let error: Error | undefined;
  try {
    result = await fn();
  } catch (e) {
    error = e as Error;
  } finally {
    spy.mockRestore();
  }
  const metrics: Record<string, number> = {};
  const logs: Record<string, unknown>[] = [];
  for (const line of lines) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    const aws = parsed._aws as { CloudWatchMetrics?: { Metrics: { Name: string }[] }[] } | undefined;
    if (aws?.CloudWatchMetrics) {
      for (const { Name } of aws.CloudWatchMetrics.flatMap((m) => m.Metrics)) {
        const value = parsed[Name];
        metrics[Name] =
          (metrics[Name] ?? 0) + (Array.isArray(value) ? value.reduce((a, b) => a + b, 0) : Number(value));
      }
    } else {
      logs.push(parsed);
    }
  }
  return { result, error, metrics, logs };
}

/**
 * The idempotency table as DynamoDB behaves for Powertools' persistence layer: a conditional PutItem
 * that fails with ConditionalCheckFailedException (and the old item) while an unexpired record exists,
 * UpdateItem's SET, DeleteItem and GetItem. Every test starts with an empty table.
 */
export function idempotencyTable() {
  process.env.IDEMPOTENCY_TABLE ??= "stream-intel-dev-idempotency";
  const stub = mockClient(DynamoDBClient);
  const items = new Map<string, Record<string, AttributeValue>>();
  const reset = () => {
    stub.reset();
    items.clear();
    stub.on(PutItemCommand).callsFake((input: PutItemCommandInput) => {
      const key = input.Item!.id.S!;
      const old = items.get(key);
      const expired = old && Number(old.expiration?.N) < Date.now() / 1000;
      const abandoned =
        old?.status?.S === "INPROGRESS" &&
        old.in_progress_expiration !== undefined &&
        Number(old.in_progress_expiration.N) < Date.now();
      if (old && !expired && !abandoned) {
        throw new ConditionalCheckFailedException({
          message: "The conditional request failed",
          $metadata: {},
          Item: old,
        });
      }
      items.set(key, { ...input.Item! });
      return {};
    });
    stub.on(UpdateItemCommand).callsFake((input: UpdateItemCommandInput) => {
      const item = items.get(input.Key!.id.S!) ?? { ...input.Key! };
      for (const assignment of input.UpdateExpression!.replace(/^SET /, "").split(", ")) {
        const [name, value] = assignment.split(" = ");
        item[input.ExpressionAttributeNames![name]] = input.ExpressionAttributeValues![value];
      }
      items.set(input.Key!.id.S!, item);
      return {};
    });
    stub.on(DeleteItemCommand).callsFake((input: DeleteItemCommandInput) => {
      items.delete(input.Key!.id.S!);
      return {};
    });
    stub
      .on(GetItemCommand)
      .callsFake((input: GetItemCommandInput) => ({ Item: items.get(input.Key!.id.S!) }));
  };
  reset();
  return { stub, items, reset };
}
