/**
 * The flow table's figures: resident memory of the daemon with many live flows, and the in-process
 * cost per packet as the table grows (bench/flow-scaling.ts, one fresh process per size).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PrometheusMetric } from "../contracts/appliance-metrics.ts";
import { log } from "./config.ts";
import { type Appliance, type Bench, type Running, withAppliance } from "./contestants.ts";

export interface MemoryPoint {
  flows: number;
  rssMiB: number;
  /** RSS growth per flow since the previous point (the first point: since the idle daemon). */
  marginalBytesPerFlow: number;
}

export interface ScalingPoint {
  flows: number;
  nsPerPacket: number;
  bytesPerFlow: number;
  typedArrayBytesPerFlow: number;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Until (nearly) every flow is in the table, or, on a host too busy to deliver them all, until the
 * count stops growing: the figure is per flow actually held either way.
 */
async function settledFlows(appliance: Appliance, flows: number): Promise<number> {
  let last = -1;
  await appliance.waitFor(
    async () => {
      const active = await appliance.metric(PrometheusMetric.activeFlows);
      const settled = active >= flows * 0.99 || active === last;
      last = active;
      if (!settled) await pause(500);
      return settled;
    },
    `${flows} flows`,
    30_000,
  );
  await pause(500);
  return appliance.metric(PrometheusMetric.activeFlows);
}

async function fillTable(bench: Bench, appliance: Appliance, running: Running): Promise<MemoryPoint[]> {
  await pause(500);
  if (appliance.proc.exitCode !== null) throw new Error(`appliance exited: ${appliance.output.join("\n")}`);
  let previousRss = rssKiB(running.pid);
  let previousFlows = 0;
  log(`flow table: idle daemon RSS ${(previousRss / 1024).toFixed(1)} MiB`);
  const out: MemoryPoint[] = [];
  for (const flows of bench.config.quick ? [10_000, 30_000] : [10_000, 100_000]) {
    // Every flow gets three packets: enough to create it and run RTP/TS state for it.
    const rate = 50_000;
    await bench.generator.run({
      bind: running.site.generator,
      target: running.site.address,
      rate,
      seconds: (flows * 3) / rate,
      flows,
      basePort: 1024,
      warmupSeconds: 0,
    });
    const active = await settledFlows(appliance, flows);
    const rss = rssKiB(running.pid);
    const marginal = ((rss - previousRss) * 1024) / (active - previousFlows);
    out.push({ flows: active, rssMiB: rss / 1024, marginalBytesPerFlow: marginal });
    log(
      `flow table: ${active} flows, RSS ${(rss / 1024).toFixed(1)} MiB (${marginal.toFixed(0)} bytes per added flow)`,
    );
    previousRss = rss;
    previousFlows = active;
  }
  return out;
}

export function flowMemory(bench: Bench): Promise<MemoryPoint[]> {
  return withAppliance(bench, (appliance, running) => fillTable(bench, appliance, running));
}

export function flowScaling(quick: boolean): ScalingPoint[] {
  const out: ScalingPoint[] = [];
  const script = fileURLToPath(new URL("./flow-scaling.ts", import.meta.url));
  for (const flows of quick ? [1_000, 100_000] : [1_000, 10_000, 100_000, 1_000_000]) {
    const result = JSON.parse(execFileSync(process.execPath, [script, String(flows)], { encoding: "utf8" }));
    log(
      `flow scaling: ${flows} flows → ${result.nsPerPacket.toFixed(0)} ns per packet, ${result.typedArrayBytesPerFlow.toFixed(0)} bytes of flow state per flow`,
    );
    out.push(result);
  }
  return out;
}
