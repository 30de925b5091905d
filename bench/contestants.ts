/**
 * The systems under test, each started in its own site (network namespace, or address on loopback),
 * pinned to the system-under-test core, and stopped when the work given to it is done.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ApplianceProcess } from "../appliance/lab/appliances/appliance-process.ts";
import { defaultPolicy, writePolicyFile } from "../appliance/lab/appliances/policy-file.ts";
import { GENEVE_PORT } from "../contracts/gwlb.ts";
import { type Config, pin } from "./config.ts";
import type { Generator } from "./generator.ts";
import type { Network, Site } from "./netns.ts";

export const CONTESTANTS = ["nodeEcho", "cEcho", "native", "dgram"] as const;
export type Contestant = (typeof CONTESTANTS)[number];
export const LABEL: Record<Contestant, string> = {
  nodeEcho: "Node echo",
  cEcho: "C echo (64/call)",
  native: "appliance, native",
  dgram: "appliance, dgram",
};
/** Each contestant's site; the appliance's two backends take turns in one. */
export const SITES = ["nodeEcho", "cEcho", "appliance"] as const;

/** The launcher's handle on a running appliance (its metrics, output and process). */
export type Appliance = ApplianceProcess;

/** What a step needs of the benchmark. */
export interface Bench {
  config: Config;
  network: Network;
  generator: Generator;
  policyFile: string;
  /** The compiled bench/echo.c. */
  cEcho: string;
}

/** A system under test that is up: where to offer load, and the process whose CPU time counts. */
export interface Running {
  site: Site;
  pid: number;
}

export interface ApplianceOptions {
  workers?: number;
  /** --cpu-affinity auto: the daemon places its own threads, as the instances run it. */
  affinity?: boolean;
  /** node's own options; default: what every launcher passes (contracts/appliance-runtime.ts). */
  nodeArgs?: string[];
  /** `--io-backend`; default native (what the instances run). */
  ioBackend?: "native" | "dgram";
}

export function benchPolicy(dir: string): string {
  const policy = defaultPolicy();
  // Rate ceilings per flow stay, but high enough for 16 flows to carry 500k packets/s between them, and
  // sources may open flows fast enough for the flow-table runs.
  policy.profiles["rtp-mpegts"].rate = {
    maxPacketsPerSecond: 100_000,
    maxBitsPerSecond: 8_000_000_000,
    burstSeconds: 0.5,
  };
  policy.limits = {
    ...policy.limits,
    newFlowsPerSecondPerSource: 1_000_000,
    newFlowBurstPerSource: 1_000_000,
    maxFlows: 250_000,
    flowIdleSeconds: 600,
  };
  // The 8,500-byte runs carry jumbo inner packets, which the default policy's size rule refuses.
  policy.rules = [];
  const file = path.join(dir, "policy.json");
  writePolicyFile(file, policy);
  return file;
}

/** The appliance in its site, up and healthy, for the duration of `run`. */
export async function withAppliance<T>(
  bench: Bench,
  run: (appliance: ApplianceProcess, running: Running) => Promise<T>,
  { workers = 1, affinity = false, nodeArgs, ioBackend = "native" }: ApplianceOptions = {},
): Promise<T> {
  const site = bench.network.site("appliance");
  const appliance = new ApplianceProcess({
    address: site.address,
    policyFile: bench.policyFile,
    healthPort: 8081,
    workers,
    extraArgs: affinity ? ["--cpu-affinity", "auto"] : [],
    nodeArgs,
    ioBackend,
    launcher: bench.network.command(site, [process.execPath]),
  });
  try {
    await appliance.waitHealthy();
    // One worker gets the system-under-test core; several are left to the scheduler (two cores here);
    // with --cpu-affinity auto the daemon places its own threads.
    if (workers === 1 && !affinity) pin(appliance.proc.pid, bench.config.sutCpu);
    return await run(appliance, { site, pid: appliance.proc.pid! });
  } finally {
    await appliance.stop();
  }
}

/** A process that prints a line once it is bound, pinned, for the duration of `run`. */
async function withEchoProcess<T>(
  bench: Bench,
  site: Site,
  name: string,
  argv: string[],
  run: (running: Running) => Promise<T>,
): Promise<T> {
  const [command, ...args] = bench.network.command(site, argv);
  const echo = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await new Promise<void>((resolve, reject) => {
      echo.stdout?.once("data", () => resolve());
      echo.once("exit", (code) => reject(new Error(`${name} exited ${code}`)));
    });
    pin(echo.pid, bench.config.sutCpu);
    return await run({ site, pid: echo.pid! });
  } finally {
    echo.kill("SIGKILL");
  }
}

export function withCEcho<T>(bench: Bench, run: (running: Running) => Promise<T>): Promise<T> {
  const site = bench.network.site("cEcho");
  return withEchoProcess(
    bench,
    site,
    "C echo",
    [bench.cEcho, site.address, String(GENEVE_PORT), String(GENEVE_PORT)],
    run,
  );
}

export function withNodeEcho<T>(bench: Bench, run: (running: Running) => Promise<T>): Promise<T> {
  const site = bench.network.site("nodeEcho");
  const script = fileURLToPath(new URL("./node-echo.ts", import.meta.url));
  return withEchoProcess(bench, site, "Node echo", [process.execPath, script, site.address], run);
}

/** One contestant up for the duration of `run`. */
export function contestant<T>(
  bench: Bench,
  who: Contestant,
  run: (running: Running) => Promise<T>,
): Promise<T> {
  if (who === "nodeEcho") return withNodeEcho(bench, run);
  if (who === "cEcho") return withCEcho(bench, run);
  return withAppliance(bench, (_, running) => run(running), { ioBackend: who });
}
