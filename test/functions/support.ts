/** Shared by the function tests: sample events from events/, and the EMF metrics a handler printed. */
import { readFileSync } from "node:fs";
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
