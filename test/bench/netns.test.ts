/**
 * The benchmark's network namespaces and veth pairs never outlive it: closed, interrupted (SIGINT) or
 * killed (the next run removes them).
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { cpuMask, listNamespaces, Network, removeStale, type Site } from "../../bench/netns.ts";
import { outputIncludes } from "./output.ts";

const root = process.getuid?.() === 0;
const HOLD = fileURLToPath(new URL("./fixtures/hold-network.ts", import.meta.url));
const links = () => execFileSync("ip", ["-o", "link"], { encoding: "utf8" });

/** A child process holding a Network of two sites, and the sites it made. */
async function holder(prefix: string) {
  const child = spawn(process.execPath, [HOLD, prefix], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  return { child, sites: JSON.parse(line.toString()) as Site[] };
}

describe("cpuMask", () => {
  it("turns a taskset list into the hexadecimal mask sysfs takes", () => {
    expect(cpuMask("1")).toBe("2");
    expect(cpuMask("0-2")).toBe("7");
    expect(cpuMask("0,3")).toBe("9");
  });
});

describe.skipIf(!root)("network namespaces (needs root for ip netns: skipped otherwise)", () => {
  it("gives each site a namespace and a veth pair, and close removes them", () => {
    const prefix = `si-bt-close${process.pid}`;
    const network = new Network(["x", "y"], { prefix, sutCpu: null, generatorCpus: null });
    expect(network.fallback).toBeNull();
    expect(listNamespaces(prefix)).toHaveLength(2);
    const x = network.site("x");
    expect(execFileSync("ip", ["-n", x.namespace!, "-o", "addr"], { encoding: "utf8" })).toContain(x.address);
    network.close();
    expect(listNamespaces(prefix)).toEqual([]);
    expect(links()).not.toContain(`sb${process.pid}g`);
  });

  it("removes them on SIGINT", async () => {
    const prefix = `si-bt-int${process.pid}`;
    const { child, sites } = await holder(prefix);
    expect(listNamespaces(prefix)).toHaveLength(2);
    child.kill("SIGINT");
    const [code] = await once(child, "exit");
    expect(code).toBe(130);
    expect(listNamespaces(prefix)).toEqual([]);
    // Both ends of every pair: sb<pid>g<i> here, sb<pid>s<i> in the namespace.
    for (const site of sites) expect(links()).not.toContain(site.device.replace(/s\d+$/, ""));
  });

  it("leaves them behind when killed, and the next run removes them", async () => {
    const prefix = `si-bt-kill${process.pid}`;
    const { child } = await holder(prefix);
    child.kill("SIGKILL");
    await once(child, "exit");
    expect(listNamespaces(prefix)).toHaveLength(2);
    expect(removeStale(prefix)).toHaveLength(2);
    expect(listNamespaces(prefix)).toEqual([]);
  });
});

describe("without namespaces", () => {
  it("puts every site on loopback and says why", () => {
    const network = new Network(["x"], { sutCpu: null, generatorCpus: null, loopback: true });
    expect(network.fallback).toBe("loopback asked for");
    expect(network.site("x")).toMatchObject({ namespace: null, address: "127.0.30.2", device: "lo" });
    network.close();
  });
});

describe.skipIf(!root)("npm run bench interrupted (needs root for ip netns: skipped otherwise)", () => {
  it("leaves no namespace, veth or contestant behind after SIGINT", async () => {
    const run = fileURLToPath(new URL("../../bench/run.ts", import.meta.url));
    const bench = spawn(
      process.execPath,
      [run, "--quick", "--rates", "1000", "--seconds", "20", "--skip-memory"],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const prefix = `si-bench-${bench.pid}`;
    // Interrupted mid-step, with the first contestant up in its namespace.
    await outputIncludes(bench.stderr!, "Node echo, ");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(listNamespaces(prefix)).toHaveLength(3);
    bench.kill("SIGINT");
    const [code] = await once(bench, "exit");
    expect(code).toBe(130);
    expect(listNamespaces(prefix)).toEqual([]);
    expect(links()).not.toContain(`sb${bench.pid}`);
    const processes = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    expect(processes).not.toContain("node-echo.ts 198.18.");
    expect(processes).not.toMatch(/generator --bind 198\.18\./);
  });
});
