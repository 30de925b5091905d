import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildAppliance } from "../../appliance/build.ts";
import { APPLIANCE_NODE_FLAGS } from "../../contracts/appliance-runtime.ts";
import { ApplianceProcess } from "../support/appliance-process.ts";

describe("appliance bundle", () => {
  let appliance: ApplianceProcess | null = null;
  afterAll(async () => appliance?.stop());

  it("is one self-contained file that serves from a directory with no node_modules", async () => {
    const outdir = mkdtempSync(path.join(tmpdir(), "si-bundle-"));
    const { bundle, bytes } = await buildAppliance(outdir);
    expect(bytes).toBeGreaterThan(100_000);
    const isolated = mkdtempSync(path.join(tmpdir(), "si-opt-"));
    copyFileSync(bundle, path.join(isolated, "stream-intel-appliance.mjs"));
    copyFileSync(path.join(outdir, "policy.default.json"), path.join(isolated, "policy.json"));
    // Both ways of starting it pass node the flags the data plane needs.
    const execStart = /^ExecStart=(.*)$/m.exec(
      readFileSync(path.join(outdir, "stream-intel-appliance.service"), "utf8"),
    )?.[1];
    expect(execStart).toMatch(/^\/usr\/bin\/node .*\/opt\/stream-intel\/stream-intel-appliance\.mjs$/);
    const shebang = readFileSync(bundle, "utf8").split("\n", 1)[0];
    expect(shebang).toMatch(/^#!\/usr\/bin\/env -S node /);
    for (const flag of APPLIANCE_NODE_FLAGS) {
      expect(execStart?.split(" ")).toContain(flag);
      expect(shebang.split(" ")).toContain(flag);
    }
    appliance = new ApplianceProcess({
      address: "127.0.20.9",
      policyFile: path.join(isolated, "policy.json"),
      workers: 2,
      entry: path.join(isolated, "stream-intel-appliance.mjs"),
    });
    await appliance.waitHealthy();
    expect(await appliance.metric("stream_intel_workers")).toBe(2);
  });
});
