/**
 * The policy file an appliance reads: the shipped default, changed where a run needs it, written the
 * way configuration management writes it (write, then rename), so the daemon's watcher never reads
 * half a file and always sees the change.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { PolicyInput } from "../../../contracts/policy.ts";

export const DEFAULT_POLICY_TEXT = readFileSync(
  new URL("../../policy.default.json", import.meta.url),
  "utf8",
);

/** A fresh copy of the shipped default policy, for the caller to change. */
export function defaultPolicy(): PolicyInput {
  return JSON.parse(DEFAULT_POLICY_TEXT) as PolicyInput;
}

/** Writes `policy` (an object, or text as it is) to `file` through `<file>.tmp` and a rename. */
export function writePolicyFile(file: string, policy: PolicyInput | string): void {
  const temp = `${file}.tmp`;
  writeFileSync(temp, typeof policy === "string" ? policy : JSON.stringify(policy, null, 2));
  renameSync(temp, file);
}
