/**
 * What every test file that drives one appliance process sets up: a GWLB peer bound for the whole
 * file, a policy file in a fresh directory, and at most one appliance per test, stopped after it (and
 * what came back forgotten), so that a failing test cannot leave a process behind for the next one.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { type ApplianceOptions, ApplianceProcess } from "../../appliance/lab/appliances/appliance-process.ts";
import { writePolicyFile } from "../../appliance/lab/appliances/policy-file.ts";
import { GwlbPeer } from "../../appliance/lab/gwlb/peer.ts";
import type { PolicyInput } from "../../contracts/policy.ts";

export interface ApplianceSuite {
  gwlb: GwlbPeer;
  policyFile: string;
  /** Writes the suite's policy file atomically (text is written as it is). */
  writePolicy(policy: PolicyInput | string): void;
  /** Starts an appliance for the current test; it is stopped after the test. */
  launch(options: ApplianceOptions): ApplianceProcess;
}

export function applianceSuite(
  gwlbAddress: string,
  options: { policyFile?: string; tempPrefix?: string } = {},
): ApplianceSuite {
  const gwlb = new GwlbPeer(gwlbAddress);
  const policyFile =
    options.policyFile ??
    path.join(mkdtempSync(path.join(tmpdir(), options.tempPrefix ?? "si-appliance-")), "policy.json");
  let current: ApplianceProcess | null = null;
  beforeAll(() => gwlb.listen());
  afterAll(() => gwlb.close());
  afterEach(async () => {
    await current?.stop();
    current = null;
    gwlb.clear();
  });
  return {
    gwlb,
    policyFile,
    writePolicy: (policy) => writePolicyFile(policyFile, policy),
    launch(launchOptions) {
      current = new ApplianceProcess(launchOptions);
      return current;
    },
  };
}
