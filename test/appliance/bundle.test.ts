/**
 * The instance bundle as the launch template installs it: one JavaScript file with the native I/O addon
 * beside it, started by the systemd unit. It must serve from a directory with no node_modules, load the
 * addon from beside itself, and fall back to Node's dgram (saying so) when the addon is missing or broken.
 */

import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ApplianceProcess } from "../../appliance/lab/appliances/appliance-process.ts";
import { GwlbPeer } from "../../appliance/lab/gwlb/peer.ts";
import { CleanStream } from "../../appliance/lab/media/packets.ts";
import { bundledName, HOST_TARGET } from "../../appliance/native/layout.ts";
import { EmfMetric, PrometheusMetric } from "../../contracts/appliance-metrics.ts";
import { APPLIANCE_NODE_FLAGS } from "../../contracts/appliance-runtime.ts";
import { GENEVE_PORT } from "../../contracts/gwlb.ts";

const ADDRESS = "127.0.20.9";
let built: Awaited<ReturnType<typeof import("../../appliance/build.ts").buildAppliance>>;
let outdir: string;

/** A fresh /opt/stream-intel: the bundle, the policy and, if given, `addon` under the host's addon name. */
function install(addon?: string): { dir: string; bundle: string; policy: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "si-opt-"));
  const bundle = path.join(dir, "stream-intel-appliance.mjs");
  copyFileSync(built.bundle, bundle);
  copyFileSync(path.join(outdir, "policy.default.json"), path.join(dir, "policy.json"));
  if (addon) copyFileSync(addon, path.join(dir, bundledName(HOST_TARGET)));
  return { dir, bundle, policy: path.join(dir, "policy.json") };
}

const logLines = (proc: ApplianceProcess) =>
  proc.output.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

describe("appliance bundle", () => {
  let appliance: ApplianceProcess | null = null;
  beforeAll(async () => {
    const { buildAppliance } = await import("../../appliance/build.ts");
    outdir = mkdtempSync(path.join(tmpdir(), "si-bundle-"));
    built = await buildAppliance(outdir);
  });
  afterEach(async () => {
    await appliance?.stop();
    appliance = null;
  });

  it("is one self-contained file started with the data plane's node flags, next to an addon per target", () => {
    expect(built.bytes).toBeGreaterThan(100_000);
    expect(Object.keys(built.addons).sort()).toEqual(["linux-arm64", "linux-x64"]);
    for (const [target, file] of Object.entries(built.addons))
      expect(path.basename(file)).toBe(bundledName(target));
    const execStart = /^ExecStart=(.*)$/m.exec(
      readFileSync(path.join(outdir, "stream-intel-appliance.service"), "utf8"),
    )?.[1];
    expect(execStart).toMatch(/^\/usr\/bin\/node .*\/opt\/stream-intel\/stream-intel-appliance\.mjs$/);
    const shebang = readFileSync(built.bundle, "utf8").split("\n", 1)[0];
    expect(shebang).toMatch(/^#!\/usr\/bin\/env -S node /);
    for (const flag of APPLIANCE_NODE_FLAGS) {
      expect(execStart?.split(" ")).toContain(flag);
      expect(shebang.split(" ")).toContain(flag);
    }
  });

  it("runs the raw sender as an unprivileged user holding CAP_NET_RAW and nothing else (systemd unit)", () => {
    const unit = readFileSync(path.join(outdir, "stream-intel-appliance.service"), "utf8");
    const settings = (key: string) =>
      [...unit.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1].trim());
    expect(settings("User")).toEqual(["stream-intel"]);
    expect(settings("Environment")).toEqual(["SI_SENDER=raw"]);
    expect(settings("AmbientCapabilities")).toEqual(["CAP_NET_RAW"]);
    expect(settings("CapabilityBoundingSet")).toEqual(["CAP_NET_RAW"]);
    expect(settings("NoNewPrivileges")).toEqual(["yes"]);
    // A raw IPv4 socket is AF_INET: the address-family allow-list must keep it.
    expect(settings("RestrictAddressFamilies")[0].split(" ")).toContain("AF_INET");
  });

  it("serves from a directory with no node_modules on the addon beside it", async () => {
    const opt = install(built.addons[HOST_TARGET]);
    appliance = new ApplianceProcess({
      address: ADDRESS,
      policyFile: opt.policy,
      workers: 2,
      entry: opt.bundle,
    });
    await appliance.waitHealthy();
    expect(await appliance.metric(PrometheusMetric.workers)).toBe(2);
    expect(await appliance.metric(PrometheusMetric.ioBackend, { backend: "native" })).toBe(2);
    expect(logLines(appliance).find((l) => l.event === "io_backend")?.addon).toBe(
      path.join(opt.dir, bundledName(HOST_TARGET)),
    );
    const gwlb = await GwlbPeer.bind("127.0.20.8");
    try {
      const stream = new CleanStream();
      const sent = Array.from({ length: 20 }, () => stream.next());
      for (const datagram of sent) await gwlb.send(datagram, ADDRESS);
      expect(await gwlb.waitForCount(20)).toBe(20);
      expect(gwlb.received).toEqual(sent);
    } finally {
      gwlb.close();
    }
  });

  for (const [what, addon, reason] of [
    ["missing", undefined, /not found/],
    // An arm64 build under the x64 name: the dynamic loader refuses it.
    ["built for another machine", "linux-arm64", /ELF|cannot open shared object|invalid/i],
  ] as const) {
    it(`falls back to dgram when the addon is ${what}, and says so in the log, /metrics and EMF`, async () => {
      const opt = install(addon ? built.addons[addon] : undefined);
      appliance = new ApplianceProcess({
        address: ADDRESS,
        policyFile: opt.policy,
        entry: opt.bundle,
        extraArgs: ["--emf-interval", "0.5"],
      });
      const proc = appliance;
      await proc.waitHealthy();
      const decided = logLines(proc).find((l) => l.event === "io_backend");
      expect(decided).toMatchObject({ level: "warn", backend: "dgram" });
      expect(String(decided?.fallback)).toMatch(reason);
      expect(await proc.metric(PrometheusMetric.ioBackend, { backend: "dgram", sender: "udp" })).toBe(1);
      expect(await proc.metric(PrometheusMetric.ioBackend, { backend: "native" })).toBe(0);
      await proc.waitFor(async () => logLines(proc).some((l) => "_aws" in l), "an EMF line");
      expect(logLines(proc).find((l) => "_aws" in l)?.[EmfMetric.ioBackendFallback]).toBe(1);
    });
  }

  it("refuses to start with --io-backend native when the addon cannot load", () => {
    const opt = install();
    const run = spawnSync(
      process.execPath,
      [opt.bundle, "--policy", opt.policy, "--geneve", `${ADDRESS}:${GENEVE_PORT}`, "--io-backend", "native"],
      { encoding: "utf8", timeout: 20_000 },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/cannot start: --io-backend native: no loadable .* addon/);
  });
});
