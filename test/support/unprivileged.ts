/**
 * Running the appliance as the systemd unit does: an unprivileged user (here `nobody`) whose only
 * capability is an ambient CAP_NET_RAW, granted by this (root) test process through util-linux setpriv.
 */
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadNativeIo } from "../../appliance/dataplane/io/native-addon.ts";
import { DEFAULT_POLICY_TEXT, writePolicyFile } from "../../appliance/lab/appliances/policy-file.ts";

const NOBODY = 65534;

/** Whether this process can hand CAP_NET_RAW on: root, with the addon loadable (as here and in CI). */
export const canGrantRaw = (() => {
  const native = loadNativeIo();
  return native.io !== null && native.io.probeRaw() === undefined && process.getuid?.() === 0;
})();

/** The launcher for ApplianceProcess: `nobody`, with CAP_NET_RAW as its one ambient capability or none. */
export function asUnprivileged(withRaw: boolean): string[] {
  return [
    "setpriv",
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    ...(withRaw ? ["--inh-caps=+net_raw", "--ambient-caps=+net_raw"] : ["--inh-caps=-all"]),
    process.execPath,
  ];
}

/** The default policy in a fresh directory that the unprivileged user can read. */
export function readablePolicy(prefix: string): { dir: string; policyFile: string } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const policyFile = path.join(dir, "policy.json");
  writePolicyFile(policyFile, DEFAULT_POLICY_TEXT);
  chmodSync(policyFile, 0o644);
  return { dir, policyFile };
}
