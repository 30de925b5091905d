/**
 * `npm run bench [-- --quick]`: the appliance's data plane against two ceilings, side by side in one
 * run: a plain Node UDP echo (one datagram per callback) and a C echo that moves 64 datagrams per
 * system call (bench/echo.c); the appliance on its native I/O backend (what the instances run) and on
 * the dgram fallback. Each runs in a network namespace of its own, joined to the C load generator
 * (bench/generator.c) by a veth pair, pinned to one core, the generator on the other (bench/netns.ts;
 * loopback where namespaces are not available). Prints a table and writes bench/results.json
 * (`npm run bench:table` turns it into the README's table). Not a test: nothing here asserts a speed.
 */
import { mkdtempSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { buildNative, type NativeTarget } from "../appliance/native/build.ts";
import { HOST_TARGET } from "../appliance/native/layout.ts";
import { type Config, FLOWS, log, readConfig } from "./config.ts";
import {
  type Bench,
  benchPolicy,
  CONTESTANTS,
  contestant,
  LABEL,
  SITES,
  withAppliance,
} from "./contestants.ts";
import { controlPlane } from "./control-plane.ts";
import { flowMemory, flowScaling } from "./flows.ts";
import { buildC, Generator } from "./generator.ts";
import { Network } from "./netns.ts";
import { printReport } from "./report.ts";
import { type PerContestant, results, type Sections, summarise, writeResults } from "./results.ts";
import { type Step, sweep } from "./steps.ts";
import { streamsPerWorker } from "./streams.ts";
import { datagramBytes } from "./template.ts";

/** 1,396-byte datagrams (7 TS packets per RTP packet), 16 flows: every contestant at every offered load. */
async function mainSweep(bench: Bench): Promise<PerContestant<Step[]>> {
  const steps = {} as PerContestant<Step[]>;
  for (const who of CONTESTANTS) {
    const inspection = who === "native" || who === "dgram" ? ", full RTP/MPEG-TS inspection, 1 worker" : "";
    log(`${LABEL[who]}, ${datagramBytes(7)} B datagrams${inspection}`);
    steps[who] = await contestant(bench, who, (running) =>
      sweep(bench, LABEL[who], running, bench.config.rates),
    );
  }
  return steps;
}

/** Other sizes at the generator's maximum: header-sized and jumbo (8,500-byte inner) datagrams. */
async function sizeSweep(bench: Bench): Promise<Sections["bySize"]> {
  const bySize: Sections["bySize"] = {};
  for (const tsPackets of bench.config.quick ? [] : [1, 45]) {
    const bytes = datagramBytes(tsPackets);
    const sizeSteps: Partial<PerContestant<Step[]>> = {};
    for (const who of ["nodeEcho", "cEcho", "native"] as const) {
      sizeSteps[who] = await contestant(bench, who, (running) =>
        sweep(bench, `${LABEL[who]} ${bytes} B`, running, [0], { tsPackets }),
      );
    }
    bySize[String(bytes)] = sizeSteps;
  }
  return bySize;
}

/**
 * Two receive loops (on a two-core host they share the generator's core: a check that two loops work
 * under load, not a scaling figure); then the daemon placing its own threads (--cpu-affinity auto:
 * the receive loop on the last core, every other thread with the generator), as the instances run it,
 * with APPLIANCE_NODE_FLAGS and with node's default parallel GC, to show what the flag is for.
 */
async function threadingSweeps(bench: Bench) {
  let workers2: Step[] = [];
  if (!bench.config.quick) {
    log("stream-intel-appliance --workers 2 (unpinned)");
    workers2 = await withAppliance(
      bench,
      (_, running) => sweep(bench, "appl. w2", running, [100_000, 200_000, 0], { flows: 64 }),
      { workers: 2 },
    );
  }
  const rates = [100_000, ...(bench.config.quick ? [] : [200_000])];
  log("stream-intel-appliance --workers 1 --cpu-affinity auto");
  const affinity = await withAppliance(
    bench,
    (_, running) => sweep(bench, "appl. affinity", running, rates),
    {
      affinity: true,
    },
  );
  log("stream-intel-appliance --workers 1 --cpu-affinity auto, node's default parallel GC");
  const parallelGc = await withAppliance(
    bench,
    (_, running) => sweep(bench, "appl. par. GC", running, rates),
    {
      affinity: true,
      nodeArgs: [],
    },
  );
  return { workers2, affinity, parallelGc };
}

async function functionFigures(quick: boolean) {
  const functions = await controlPlane(quick ? 50 : 200);
  for (const f of functions) {
    log(
      `${f.name}: bundle ${(f.bundleBytes / 1024).toFixed(0)} KiB (${(f.bundleBytesWithoutSdk / 1024).toFixed(0)} KiB without the SDK), handler ${f.handlerMicros.mean.toFixed(0)} µs mean`,
    );
  }
  return functions;
}

function setUp(config: Config): Bench {
  buildNative(HOST_TARGET as NativeTarget);
  const network = new Network(SITES, {
    sutCpu: config.rps ? config.sutCpu : null,
    generatorCpus: config.rps ? config.loadCpus : null,
    loopback: config.loopback,
  });
  if (network.fallback)
    log(`network namespaces unavailable (${network.fallback}): every contestant on loopback`);
  return {
    config,
    network,
    generator: new Generator(config.loadCpus),
    policyFile: benchPolicy(mkdtempSync(path.join(tmpdir(), "si-bench-"))),
    cEcho: buildC("echo"),
  };
}

async function main(): Promise<void> {
  const config = readConfig();
  const startedAt = new Date();
  log(
    `benchmark${config.quick ? " (quick)" : ""}: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.versions.node}`,
  );
  const bench = setUp(config);
  try {
    const steps = await mainSweep(bench);
    const bySize = await sizeSweep(bench);
    const threading = await threadingSweeps(bench);
    const streams = config.quick ? null : await streamsPerWorker(bench);
    const memory = config.skipMemory ? [] : await flowMemory(bench);
    const scaling = config.skipMemory ? [] : flowScaling(config.quick);
    const functions = await functionFigures(config.quick);
    const network = bench.network.fallback
      ? `loopback (${bench.network.fallback})`
      : `network namespaces, veth pairs${config.rps ? ", RPS to each receiver's core" : ""}`;
    const context = { config, network, flows: FLOWS, datagramBytes: datagramBytes(7), startedAt };
    const sections = { steps, bySize, ...threading, streams, memory, flowScaling: scaling, functions };
    const value = results(context, summarise(steps, datagramBytes(7)), sections);
    printReport(value);
    writeResults(new URL("./results.json", import.meta.url), value);
  } finally {
    bench.network.close();
  }
}

await main();
