import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FilePolicySource, SsmPolicySource } from "../../appliance/control/policy-sources.ts";
import { PolicyStore } from "../../appliance/control/policy-store.ts";
import { DEFAULT_POLICY_TEXT, writePolicyFile } from "../../appliance/lab/appliances/policy-file.ts";

const goodText = DEFAULT_POLICY_TEXT;
const silent = pino({ level: "silent" });

describe("PolicyStore", () => {
  it("applies a good policy, rejects a bad one with every problem named, and keeps the last good", () => {
    const applied: number[] = [];
    const store = new PolicyStore(silent, { onApplied: (_p, generation) => applied.push(generation) });
    expect(store.offer(goodText, "test")).toBe(true);
    expect(store.offer("{", "test")).toBe(false);
    expect(store.lastError).toMatch(/not valid JSON/);
    const bad = JSON.parse(goodText);
    bad.flows[0].src = ["0.0.0.0/33"];
    bad.flows[0].profile = "nope";
    expect(store.offer(JSON.stringify(bad), "test")).toBe(false);
    expect(store.lastError).toMatch(/flows\.0\.src\.0/);
    expect(store.lastError).toMatch(/unknown profile "nope"/);
    expect(store.generation).toBe(1);
    expect(store.failures).toBe(2);
    expect(store.current?.flows[0].src).toEqual(["@mediaconnect"]);
    expect(applied).toEqual([1]);
    // The same text again is not a new generation.
    expect(store.offer(goodText, "test")).toBe(false);
    expect(store.generation).toBe(1);
  });
});

describe("SsmPolicySource", () => {
  const ssm = mockClient(SSMClient);
  beforeEach(() => {
    ssm.reset();
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it("delivers the parameter, then only new versions, polling on its interval", async () => {
    ssm
      .on(GetParameterCommand, { Name: "/si/dev/policy" })
      .resolvesOnce({ Parameter: { Value: goodText, Version: 1 } })
      .resolvesOnce({ Parameter: { Value: goodText, Version: 1 } })
      .resolves({ Parameter: { Value: `${goodText} `, Version: 2 } });
    const texts: string[] = [];
    const source = new SsmPolicySource({
      client: new SSMClient({}),
      name: "/si/dev/policy",
      pollSeconds: 30,
    });
    source.start({ onText: (_text, origin) => texts.push(origin), onError: () => {} });
    await vi.advanceTimersByTimeAsync(0);
    expect(texts).toEqual(["SSM parameter /si/dev/policy (version 1)"]);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(texts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(texts).toEqual([
      "SSM parameter /si/dev/policy (version 1)",
      "SSM parameter /si/dev/policy (version 2)",
    ]);
    expect(ssm.commandCalls(GetParameterCommand)[0].args[0].input).toEqual({
      Name: "/si/dev/policy",
      WithDecryption: true,
    });
    source.stop();
  });

  it("backs off exponentially while SSM fails, then recovers", async () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    ssm
      .on(GetParameterCommand)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .resolves({ Parameter: { Value: goodText, Version: 7 } });
    const errors: string[] = [];
    const texts: string[] = [];
    const source = new SsmPolicySource({ client: new SSMClient({}), name: "p", pollSeconds: 30 });
    source.start({ onText: (t) => texts.push(t), onError: (e) => errors.push(e.name) });
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual(["ThrottlingException"]);
    const delay = source.nextDelayMs();
    expect(delay).toBeGreaterThanOrEqual(500);
    expect(delay).toBeLessThanOrEqual(1000);
    await vi.advanceTimersByTimeAsync(1000 + 2000 + 4000);
    expect(errors).toHaveLength(3);
    expect(texts).toHaveLength(1);
    expect(source.nextDelayMs()).toBe(30_000);
    source.stop();
  });
});

describe("FilePolicySource", () => {
  it("reads at start, on replacement of the file, and on reload", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "si-policy-"));
    const file = path.join(dir, "policy.json");
    writeFileSync(file, goodText);
    const texts: string[] = [];
    const source = new FilePolicySource(file);
    source.start({ onText: (t) => texts.push(t), onError: (e) => texts.push(`error ${e.message}`) });
    await vi.waitFor(() => expect(texts).toHaveLength(1));
    writePolicyFile(file, `${goodText}\n`);
    await vi.waitFor(() => expect(texts).toHaveLength(2), { timeout: 3000 });
    source.reload();
    await vi.waitFor(() => expect(texts).toHaveLength(3));
    source.stop();
  });

  it("reports a missing file as an error, not a crash", async () => {
    const errors: string[] = [];
    const source = new FilePolicySource("/nonexistent/dir/policy.json");
    source.start({ onText: () => {}, onError: (e) => errors.push(e.message) });
    await vi.waitFor(() => expect(errors.some((m) => m.includes("ENOENT"))).toBe(true));
    source.stop();
  });
});
