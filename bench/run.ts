/**
 * `npm run bench [-- --quick]`: the appliance's data plane against two ceilings, side by side in one run
 * on loopback, each in its own process, with the load generator in two more processes: a plain Node UDP
 * echo (one datagram per callback) and a C echo that moves 64 datagrams per system call (bench/echo.c,
 * built here). The appliance runs on its native I/O backend (what the instances run) and on the dgram
 * fallback. Prints a table and writes bench/results.json. Not a test: nothing here asserts a speed.
 */
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Table from "cli-table3";
import pc from "picocolors";
import { socketStats } from "../appliance/control/socket-stats.ts";
import { ApplianceProcess } from "../appliance/lab/appliances/appliance-process.ts";
import { percentiles } from "../appliance/lab/sink/sink.ts";
import { buildNative, type NativeTarget } from "../appliance/native/build.ts";
import { HOST_TARGET } from "../appliance/native/layout.ts";
import type { ReceiveReport, SendReport } from "./blaster.ts";
import { controlPlane } from "./control-plane.ts";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rates: { type: "string" },
    seconds: { type: "string" },
    "skip-memory": { type: "boolean", default: false },
  },
});
const quick = flags.quick ?? false;
const BLASTER = fileURLToPath(new URL("./blaster.ts", import.meta.url));
const GENERATOR = "127.0.30.1";
const ECHO = "127.0.30.2";
const DAEMON = "127.0.30.3";
const C_ECHO = "127.0.30.4";
const STEP_SECONDS = flags.seconds ? Number(flags.seconds) : quick ? 2.5 : 4;
const RATES = flags.rates
  ? flags.rates.split(",").map(Number)
  : quick
    ? [50_000, 100_000, 200_000, 0]
    : [50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 350_000, 400_000, 0];
const FLOWS = 16;
const STREAM_COUNTS = [50, 100, 150, 200, 250, 300, 350];
const STREAM_REPEATS = 3;
/** Packets/s of `streams` 10 Mbit/s MPEG-TS streams, 7 TS packets per RTP packet. */
const streamsPps = (streams: number) => Math.round((streams * 10_000_000) / (188 * 7 * 8));
const LOSSLESS = 0.001;

// The system under test gets one core to itself and the load generator the other, so that neither
// steals the other's time slices (on two cores, three busy processes otherwise turn the scheduler's
// time slice into tail latency). Without taskset, or with one core, nothing is pinned.
const CPUS = os.cpus().length;
const SUT_CPU = CPUS > 1 ? String(CPUS - 1) : null;
const LOAD_CPUS = CPUS > 1 ? `0-${CPUS - 2}` : null;
let pinning = SUT_CPU !== null;
function pin(pid: number | undefined, cpus: string | null): void {
  if (!pinning || pid === undefined || cpus === null) return;
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
  } catch {
    pinning = false;
  }
}

const log = (line: string) =>
  process.stderr.write(`${pc.dim(new Date().toISOString().slice(11, 19))} ${line}\n`);

function benchPolicy(): string {
  const policy = JSON.parse(
    readFileSync(new URL("../appliance/policy.default.json", import.meta.url), "utf8"),
  );
  // Rate ceilings per flow stay, but high enough for 16 flows to carry 500k packets/s between them, and
  // sources may open flows fast enough for the flow-table runs.
  policy.profiles["rtp-mpegts"].rate = {
    maxPacketsPerSecond: 100_000,
    maxBitsPerSecond: 8_000_000_000,
    burstSeconds: 0.5,
  };
  policy.limits.newFlowsPerSecondPerSource = 1_000_000;
  policy.limits.newFlowBurstPerSource = 1_000_000;
  policy.limits.maxFlows = 250_000;
  policy.limits.flowIdleSeconds = 600;
  // The 8,500-byte runs carry jumbo inner packets, which the default policy's size rule refuses.
  policy.rules = [];
  const file = path.join(mkdtempSync(path.join(tmpdir(), "si-bench-")), "policy.json");
  writeFileSync(file, JSON.stringify(policy));
  return file;
}

function child(
  role: string,
  options: object,
): { proc: ChildProcess; result: Promise<unknown>; ready: Promise<void> } {
  const proc = fork(BLASTER, [role, JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  pin(proc.pid, role === "echo" ? SUT_CPU : LOAD_CPUS);
  let out = "";
  proc.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  const ready = new Promise<void>((resolve) => proc.once("message", () => resolve()));
  const result = new Promise((resolve, reject) =>
    proc.once("exit", (code, signal) =>
      code === 0 || signal === "SIGTERM"
        ? resolve(out ? JSON.parse(out) : null)
        : reject(new Error(`${role} exited ${code ?? signal}`)),
    ),
  );
  return { proc, result, ready };
}

/** Process id of whatever answers at each target address, for its CPU time. */
const sutPids = new Map<string, number>();

/**
 * CPU time (ns) every thread of `pid` has run, kernel work in its system calls included: on loopback
 * that is also the delivery into the receiving socket. From /proc/<pid>/task/<tid>/schedstat.
 */
function cpuNanos(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  let total = 0;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`))
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
  return total;
}

interface Step {
  offered: number;
  sent: number;
  received: number;
  sentPerSecond: number;
  deliveredPerSecond: number;
  loss: number;
  latencyMicros: ReceiveReport["latencyMicros"];
  /**
   * CPU the system under test spent per datagram it read (µs): robust where rates are not, on a shared
   * host, since a time slice lost to another process is not counted.
   */
  cpuMicrosPerPacket: number;
}

let stepCount = 0;

async function step(target: string, rate: number, flows = FLOWS, tsPerPacket = 7): Promise<Step> {
  // Fresh 5-tuples every step: a new sender restarts its sequence numbers, which on the same flows
  // the appliance would rightly drop as replays.
  const basePort = 20_000 + (stepCount++ % 400) * 100;
  const receiver = child("receive", {
    bind: GENERATOR,
    seconds: STEP_SECONDS + 1,
    warmupSeconds: 0.5,
    tsPerPacket,
  });
  await receiver.ready;
  const pid = sutPids.get(target);
  const cpuBefore = cpuNanos(pid);
  const dropsBefore = socketStats(target, 6081)?.drops ?? 0;
  const sender = child("send", {
    target,
    from: GENERATOR,
    rate,
    seconds: STEP_SECONDS,
    flows,
    basePort,
    tsPerPacket,
  });
  const sent = (await sender.result) as SendReport;
  const received = (await receiver.result) as ReceiveReport;
  const cpu = cpuNanos(pid) - cpuBefore;
  // What the system under test read: what was sent less what its socket's receive buffer dropped.
  const read = sent.sent - ((socketStats(target, 6081)?.drops ?? 0) - dropsBefore);
  const activeSeconds = received.received > 1 ? (received.lastAt - received.firstAt) / 1e9 : sent.seconds;
  return {
    offered: rate,
    sent: sent.sent,
    received: received.received,
    sentPerSecond: sent.sent / sent.seconds,
    deliveredPerSecond: received.received / Math.max(activeSeconds, sent.seconds),
    loss: sent.sent ? 1 - received.received / sent.sent : 0,
    latencyMicros: received.latencyMicros,
    cpuMicrosPerPacket: read > 0 ? cpu / 1000 / read : Number.NaN,
  };
}

async function sweep(
  name: string,
  target: string,
  rates = RATES,
  tsPerPacket = 7,
  flows = FLOWS,
): Promise<Step[]> {
  const steps: Step[] = [];
  for (const rate of rates) {
    const result = await step(target, rate, flows, tsPerPacket);
    steps.push(result);
    log(
      `${name.padEnd(14)} offered ${rate ? `${(rate / 1000).toFixed(0)}k/s` : "max"} → sent ${(result.sentPerSecond / 1000).toFixed(1)}k/s, delivered ${(result.deliveredPerSecond / 1000).toFixed(1)}k/s, loss ${(result.loss * 100).toFixed(2)}%, p99 ${result.latencyMicros.p99} µs, CPU ${result.cpuMicrosPerPacket.toFixed(2)} µs/packet`,
    );
  }
  return steps;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

interface MemoryPoint {
  flows: number;
  rssMiB: number;
  /** RSS growth per flow since the previous point (the first point: since the idle daemon). */
  marginalBytesPerFlow: number;
}

async function flowMemory(policyFile: string): Promise<MemoryPoint[]> {
  const appliance = new ApplianceProcess({ address: DAEMON, policyFile, healthPort: 8081 });
  await appliance.waitHealthy();
  pin(appliance.proc.pid, SUT_CPU);
  await new Promise((resolve) => setTimeout(resolve, 500));
  if (appliance.proc.exitCode !== null) throw new Error(`appliance exited: ${appliance.output.join("\n")}`);
  let previousRss = rssKiB(appliance.proc.pid!);
  let previousFlows = 0;
  log(`flow table: idle daemon RSS ${(previousRss / 1024).toFixed(1)} MiB`);
  const out: MemoryPoint[] = [];
  try {
    for (const flows of quick ? [10_000, 30_000] : [10_000, 100_000]) {
      // Every flow gets three packets: enough to create it and run RTP/TS state for it.
      const rate = 50_000;
      const sender = child("send", {
        target: DAEMON,
        from: GENERATOR,
        rate,
        seconds: (flows * 3) / rate,
        flows,
        basePort: 1024,
      });
      await sender.result;
      // Until (nearly) every flow is in the table, or, on a host too busy to deliver them all, until the
      // count stops growing: the figure is per flow actually held either way.
      let last = -1;
      await appliance.waitFor(
        async () => {
          const active = await appliance.metric("stream_intel_active_flows");
          const settled = active >= flows * 0.99 || active === last;
          last = active;
          if (!settled) await new Promise((resolve) => setTimeout(resolve, 500));
          return settled;
        },
        `${flows} flows`,
        30_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      const rss = rssKiB(appliance.proc.pid!);
      const active = await appliance.metric("stream_intel_active_flows");
      const marginal = ((rss - previousRss) * 1024) / (active - previousFlows);
      out.push({ flows: active, rssMiB: rss / 1024, marginalBytesPerFlow: marginal });
      log(
        `flow table: ${active} flows, RSS ${(rss / 1024).toFixed(1)} MiB (${marginal.toFixed(0)} bytes per added flow)`,
      );
      previousRss = rss;
      previousFlows = active;
    }
  } finally {
    await appliance.stop();
  }
  return out;
}

/** A step the generator actually offered: it sent at least this share of the rate asked of it. */
const OFFERED_IN_FULL = 0.95;

/**
 * Clean rate: the highest delivered rate of a step with ≤ 0.1 % loss that the generator offered in full
 * (a step it could not send at its rate says nothing about the system under test); saturated: what was
 * delivered at the generator's maximum; generator: the most the generator sent in any step.
 */
function best(steps: Step[]) {
  const saturated = steps.find((s) => s.offered === 0) ?? steps[steps.length - 1];
  const lossless = steps
    .filter((s) => s.offered > 0 && s.loss <= LOSSLESS && s.sentPerSecond >= OFFERED_IN_FULL * s.offered)
    .reduce((m, s) => Math.max(m, s.deliveredPerSecond), 0);
  const generator = steps.reduce((m, s) => Math.max(m, s.sentPerSecond), 0);
  return {
    saturatedPps: saturated.deliveredPerSecond,
    losslessPps: Math.round(lossless),
    generatorPps: generator,
  };
}

/** a / b, or NaN when b is 0 (printed as n/a). */
const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
const times = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)} ×` : "n/a ×");

/** Datagram size for `tsPerPacket` TS packets: GENEVE + options (40) + IPv4/UDP (28) + RTP (12) + TS. */
const datagramBytes = (tsPerPacket: number) => 40 + 28 + 12 + 188 * tsPerPacket;
const gbps = (pps: number, tsPerPacket: number) => (pps * datagramBytes(tsPerPacket) * 8) / 1e9;

interface RunOptions {
  workers?: number;
  /** --cpu-affinity auto: the daemon places its own threads, as the instances run it. */
  affinity?: boolean;
  /** node's own options; default: what every launcher passes (contracts/appliance-runtime.ts). */
  nodeArgs?: string[];
  /** `--io-backend`; default native (what the instances run). */
  ioBackend?: "native" | "dgram";
}

async function withAppliance<T>(
  policyFile: string,
  run: () => Promise<T>,
  { workers = 1, affinity = false, nodeArgs, ioBackend = "native" }: RunOptions = {},
): Promise<T> {
  const extraArgs = affinity ? ["--cpu-affinity", "auto"] : [];
  const appliance = new ApplianceProcess({
    address: DAEMON,
    policyFile,
    healthPort: 8081,
    workers,
    extraArgs,
    nodeArgs,
    ioBackend,
  });
  try {
    await appliance.waitHealthy();
    // One worker gets the system-under-test core; several are left to the scheduler (two cores here);
    // with --cpu-affinity auto the daemon places its own threads.
    if (workers === 1 && !affinity) pin(appliance.proc.pid, SUT_CPU);
    sutPids.set(DAEMON, appliance.proc.pid!);
    return await run();
  } finally {
    sutPids.delete(DAEMON);
    await appliance.stop();
  }
}

/** bench/echo.c, compiled for this host into a temporary directory. */
function buildCEcho(): string {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "si-bench-echo-")), "echo");
  execFileSync("cc", ["-O2", "-Wall", "-o", out, fileURLToPath(new URL("./echo.c", import.meta.url))], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  return out;
}

async function withCEcho<T>(binary: string, run: () => Promise<T>): Promise<T> {
  const echo = spawn(binary, [C_ECHO, "6081", "6081"], { stdio: ["ignore", "pipe", "inherit"] });
  pin(echo.pid, SUT_CPU);
  await new Promise<void>((resolve, reject) => {
    echo.stdout?.once("data", () => resolve());
    echo.once("exit", (code) => reject(new Error(`C echo exited ${code}`)));
  });
  sutPids.set(C_ECHO, echo.pid!);
  try {
    return await run();
  } finally {
    sutPids.delete(C_ECHO);
    echo.kill("SIGTERM");
  }
}

async function withEcho<T>(run: () => Promise<T>): Promise<T> {
  const echo = child("echo", { bind: ECHO });
  await echo.ready;
  sutPids.set(ECHO, echo.proc.pid!);
  try {
    return await run();
  } finally {
    sutPids.delete(ECHO);
    echo.proc.kill("SIGTERM");
    await echo.result;
  }
}

function scaling(): {
  flows: number;
  nsPerPacket: number;
  bytesPerFlow: number;
  typedArrayBytesPerFlow: number;
}[] {
  const out = [];
  for (const flows of quick ? [1_000, 100_000] : [1_000, 10_000, 100_000, 1_000_000]) {
    const json = execFileSync(
      process.execPath,
      [fileURLToPath(new URL("./flow-scaling.ts", import.meta.url)), String(flows)],
      {
        encoding: "utf8",
      },
    );
    const result = JSON.parse(json);
    log(
      `flow scaling: ${flows} flows → ${result.nsPerPacket.toFixed(0)} ns per packet, ${result.typedArrayBytesPerFlow.toFixed(0)} bytes of flow state per flow`,
    );
    out.push(result);
  }
  return out;
}

interface StreamsResult {
  streams: number;
  pps: number;
  /** Worst loss of the appliance's repetitions. */
  loss: number;
  /** Medians over the repetitions, µs. */
  p99: number;
  echoP99: number;
  addedP99: number;
  /** This count and every smaller one passed. */
  ok: boolean;
}

const median = (values: number[]) => percentiles(values).p50;

/**
 * Largest count of 10 Mbit/s streams one receive loop carries with no loss and p99 added latency < 1 ms
 * over the batched C echo (the ceiling). On a shared two-core host the p99 of a single 4-second step
 * wanders by a millisecond or more from run to run for the echo as much as for the appliance, so each
 * count is measured as pairs (echo step, appliance step, back to back, both processes up throughout)
 * repeated STREAM_REPEATS times, and the medians are compared. The answer is the largest count for which
 * that count and every smaller one pass (a lucky step above a failed one does not count).
 */
async function streamsPerWorker(
  policyFile: string,
  cEcho: string,
): Promise<{ largest: number; results: StreamsResult[] }> {
  const results: StreamsResult[] = [];
  await withCEcho(cEcho, () =>
    // As the instances run: one receive loop with a CPU of its own (--cpu-affinity auto).
    withAppliance(
      policyFile,
      async () => {
        // An instance serves for days: the first seconds after start (code still being optimised)
        // are not its steady state, so a warm-up pair runs first and is not counted.
        await step(C_ECHO, streamsPps(STREAM_COUNTS[0]), STREAM_COUNTS[0]);
        await step(DAEMON, streamsPps(STREAM_COUNTS[0]), STREAM_COUNTS[0]);
        let passing = true;
        for (const streams of STREAM_COUNTS) {
          const echo: Step[] = [];
          const appliance: Step[] = [];
          for (let i = 0; i < STREAM_REPEATS; i++) {
            echo.push(await step(C_ECHO, streamsPps(streams), streams));
            appliance.push(await step(DAEMON, streamsPps(streams), streams));
          }
          const p99 = median(appliance.map((s) => s.latencyMicros.p99));
          const echoP99 = median(echo.map((s) => s.latencyMicros.p99));
          const loss = Math.max(...appliance.map((s) => s.loss));
          const ok = loss === 0 && p99 - echoP99 < 1000;
          passing &&= ok;
          results.push({
            streams,
            pps: streamsPps(streams),
            loss,
            p99,
            echoP99,
            addedP99: p99 - echoP99,
            ok: passing,
          });
          log(
            `streams: ${streams} × 10 Mbit/s = ${streamsPps(streams)} pps → loss ${(loss * 100).toFixed(3)}%, p99 ${appliance.map((s) => s.latencyMicros.p99).join("/")} µs vs C echo ${echo.map((s) => s.latencyMicros.p99).join("/")} µs: median added ${p99 - echoP99} µs ${ok ? "ok" : "over"}`,
          );
          if (!passing && streams >= 250) break; // nothing above a failed count can count
        }
      },
      { affinity: true },
    ),
  );
  const largest = results.filter((r) => r.ok).reduce((m, r) => Math.max(m, r.streams), 0);
  return { largest, results };
}

const CONTESTANTS = ["nodeEcho", "cEcho", "native", "dgram"] as const;
type Contestant = (typeof CONTESTANTS)[number];
const LABEL: Record<Contestant, string> = {
  nodeEcho: "Node echo",
  cEcho: "C echo (64/call)",
  native: "appliance, native",
  dgram: "appliance, dgram",
};

/** One contestant up for the duration of `run`, which gets the address to offer load to. */
function contestant<T>(
  who: Contestant,
  policyFile: string,
  cEcho: string,
  run: (target: string) => Promise<T>,
): Promise<T> {
  if (who === "nodeEcho") return withEcho(() => run(ECHO));
  if (who === "cEcho") return withCEcho(cEcho, () => run(C_ECHO));
  return withAppliance(policyFile, () => run(DAEMON), { ioBackend: who });
}

const at = (steps: Step[], rate: number) => steps.find((s) => s.offered === rate);

async function main(): Promise<void> {
  log(
    `benchmark${quick ? " (quick)" : ""}: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.versions.node}`,
  );
  buildNative(HOST_TARGET as NativeTarget);
  const cEcho = buildCEcho();
  const policyFile = benchPolicy();

  // 1. 1,396-byte datagrams (7 TS packets per RTP packet), 16 flows: every contestant at every offered load.
  const main1400 = {} as Record<Contestant, Step[]>;
  for (const who of CONTESTANTS) {
    log(
      `${LABEL[who]}, ${datagramBytes(7)} B datagrams${who === "native" || who === "dgram" ? ", full RTP/MPEG-TS inspection, 1 worker" : ""}`,
    );
    main1400[who] = await contestant(who, policyFile, cEcho, (target) => sweep(LABEL[who], target, RATES));
  }

  // 1b. Other sizes at the generator's maximum: header-sized and jumbo (8,500-byte inner) datagrams.
  const bySize: Record<string, Partial<Record<Contestant, Step[]>>> = {};
  for (const ts of quick ? [] : [1, 45]) {
    const sizeSteps: Partial<Record<Contestant, Step[]>> = {};
    for (const who of ["nodeEcho", "cEcho", "native"] as const) {
      sizeSteps[who] = await contestant(who, policyFile, cEcho, (target) =>
        sweep(`${LABEL[who]} ${datagramBytes(ts)} B`, target, [0], ts),
      );
    }
    bySize[String(datagramBytes(ts))] = sizeSteps;
  }

  // 2. Two receive loops (the machine's cores are shared with the generator: a check that two loops
  //    work under load, not a scaling figure, on a two-core host).
  let workers2: Step[] = [];
  if (!quick) {
    log("stream-intel-appliance --workers 2 (unpinned)");
    workers2 = await withAppliance(
      policyFile,
      () => sweep("appl. w2", DAEMON, [100_000, 200_000, 0], 7, 64),
      {
        workers: 2,
      },
    );
  }

  // 2b. The daemon placing its own threads (--cpu-affinity auto: the receive loop on the last core,
  //     every other thread with the generator), as the instances run it; then the same with node's
  //     default parallel GC instead of APPLIANCE_NODE_FLAGS, to show what the flag is for.
  const affinityRates = [100_000, ...(quick ? [] : [200_000])];
  log("stream-intel-appliance --workers 1 --cpu-affinity auto");
  const affinity = await withAppliance(policyFile, () => sweep("appl. affinity", DAEMON, affinityRates), {
    affinity: true,
  });
  log("stream-intel-appliance --workers 1 --cpu-affinity auto, node's default parallel GC");
  const parallelGc = await withAppliance(policyFile, () => sweep("appl. par. GC", DAEMON, affinityRates), {
    affinity: true,
    nodeArgs: [],
  });

  // 3. Streams per receive loop.
  const streams = quick ? null : await streamsPerWorker(policyFile, cEcho);

  // 4. Memory with live flows, and per-packet cost as the flow table grows.
  const memory = flags["skip-memory"] ? [] : await flowMemory(policyFile);
  const flowScaling = flags["skip-memory"] ? [] : scaling();

  // 5. Control plane: Lambda bundle sizes and warm handler time with answered clients.
  const functions = await controlPlane(quick ? 50 : 200);
  for (const f of functions) {
    log(
      `${f.name}: bundle ${(f.bundleBytes / 1024).toFixed(0)} KiB (${(f.bundleBytesWithoutSdk / 1024).toFixed(0)} KiB without the SDK), handler ${f.handlerMicros.mean.toFixed(0)} µs mean`,
    );
  }

  const table = new Table({
    head: ["offered", ...CONTESTANTS.flatMap((who) => [`${LABEL[who]} pps`, "Gbit/s", "loss", "p99 µs"])],
  });
  for (const [i, s] of main1400.nodeEcho.entries()) {
    table.push([
      s.offered ? `${s.offered / 1000}k/s` : "max",
      ...CONTESTANTS.flatMap((who) => {
        const c = main1400[who][i];
        return [
          c.deliveredPerSecond.toFixed(0),
          gbps(c.deliveredPerSecond, 7).toFixed(2),
          `${(c.loss * 100).toFixed(2)}%`,
          String(c.latencyMicros.p99),
        ];
      }),
    ]);
  }
  console.log(table.toString());

  const summary = Object.fromEntries(CONTESTANTS.map((who) => [who, best(main1400[who])])) as Record<
    Contestant,
    ReturnType<typeof best>
  >;
  const n = summary.native;
  const ratios = {
    cleanToCEcho: ratio(n.losslessPps, summary.cEcho.losslessPps),
    cleanToNodeEcho: ratio(n.losslessPps, summary.nodeEcho.losslessPps),
    saturatedToCEcho: ratio(n.saturatedPps, summary.cEcho.saturatedPps),
    saturatedToNodeEcho: ratio(n.saturatedPps, summary.nodeEcho.saturatedPps),
    nativeToDgramClean: ratio(n.losslessPps, summary.dgram.losslessPps),
  };
  for (const who of CONTESTANTS) {
    const b = summary[who];
    console.log(
      `${LABEL[who].padEnd(18)} clean (≤ ${LOSSLESS * 100}% loss) ${b.losslessPps} pps = ${gbps(b.losslessPps, 7).toFixed(2)} Gbit/s; at the generator's maximum ${b.saturatedPps.toFixed(0)} pps = ${gbps(b.saturatedPps, 7).toFixed(2)} Gbit/s (the generator sent ${b.generatorPps.toFixed(0)} pps at most${b.losslessPps >= OFFERED_IN_FULL * b.generatorPps ? ": the clean rate is the generator's, not this contestant's" : ""}).`,
    );
  }
  console.log(
    `Full inspection on the native backend, clean rate: ${times(ratios.cleanToCEcho)} the batched C echo, ${times(ratios.cleanToNodeEcho)} the Node echo, ${times(ratios.nativeToDgramClean)} the dgram backend; at the maximum ${times(ratios.saturatedToCEcho)} C echo, ${times(ratios.saturatedToNodeEcho)} Node echo.`,
  );
  const latencyAt = (rate: number) =>
    Object.fromEntries(
      CONTESTANTS.map((who) => [who, at(main1400[who], rate)?.latencyMicros ?? null]),
    ) as Record<Contestant, Step["latencyMicros"] | null>;
  const addedAt = (rate: number) => {
    const l = latencyAt(rate);
    const minus = (a: Contestant, b: Contestant) => (l[a] && l[b] ? l[a].p99 - l[b].p99 : Number.NaN);
    return {
      p99: l,
      nativeOverCEcho: minus("native", "cEcho"),
      nativeOverNodeEcho: minus("native", "nodeEcho"),
      dgramOverCEcho: minus("dgram", "cEcho"),
    };
  };
  const added100k = addedAt(100_000);
  const cpuAt100k = Object.fromEntries(
    CONTESTANTS.map((who) => [who, at(main1400[who], 100_000)?.cpuMicrosPerPacket ?? Number.NaN]),
  ) as Record<Contestant, number>;
  console.log(
    `CPU per datagram read at 100k pps (µs; one core's worth of packets/s in brackets): ${CONTESTANTS.map((w) => `${LABEL[w]} ${cpuAt100k[w].toFixed(2)} (${(1e6 / cpuAt100k[w] / 1000).toFixed(0)}k)`).join(", ")}; native costs ${(cpuAt100k.native / cpuAt100k.cEcho).toFixed(2)} × the C echo, ${(cpuAt100k.native / cpuAt100k.nodeEcho).toFixed(2)} × the Node echo.`,
  );
  console.log(
    `p99 added latency at 100k pps (a p99 of 100001 µs is the histogram's ceiling: ≥ 100 ms): native ${added100k.nativeOverCEcho} µs over the C echo (${added100k.nativeOverNodeEcho} µs over the Node echo); dgram ${added100k.dgramOverCEcho} µs over the C echo. p99 ${CONTESTANTS.map((w) => `${LABEL[w]} ${added100k.p99[w]?.p99 ?? "-"} µs`).join(", ")}.`,
  );
  for (const [bytes, sizeSteps] of Object.entries(bySize)) {
    console.log(
      `${bytes}-byte datagrams at the generator's maximum: ${Object.entries(sizeSteps)
        .map(
          ([who, st]) =>
            `${LABEL[who as Contestant]} ${st![0].deliveredPerSecond.toFixed(0)} pps (${((st![0].deliveredPerSecond * Number(bytes) * 8) / 1e9).toFixed(2)} Gbit/s, loss ${(st![0].loss * 100).toFixed(2)}%)`,
        )
        .join(", ")}.`,
    );
  }
  for (const s of workers2) {
    console.log(
      `--workers 2, 64 flows: offered ${s.offered || "max"} → ${s.deliveredPerSecond.toFixed(0)} pps, loss ${(s.loss * 100).toFixed(2)}%, p99 ${s.latencyMicros.p99} µs.`,
    );
  }
  for (const [i, s] of affinity.entries()) {
    const p = parallelGc[i];
    console.log(
      `--cpu-affinity auto at ${s.offered / 1000}k pps: p99 ${s.latencyMicros.p99} µs with --single-threaded-gc, ${p.latencyMicros.p99} µs with node's default parallel GC (loss ${(s.loss * 100).toFixed(2)}% / ${(p.loss * 100).toFixed(2)}%).`,
    );
  }
  if (streams)
    console.log(
      `Streams per receive loop (10 Mbit/s each, zero loss, median p99 added over the C echo < 1 ms): ${streams.largest}. Added p99 by count: ${streams.results.map((r) => `${r.streams}: ${r.addedP99} µs${r.loss ? ` (loss ${(r.loss * 100).toFixed(3)}%)` : ""}`).join(", ")}.`,
    );
  for (const m of memory) {
    console.log(
      `Memory: ${m.flows} active flows → RSS ${m.rssMiB.toFixed(1)} MiB (${m.marginalBytesPerFlow.toFixed(0)} bytes per added flow).`,
    );
  }
  for (const f of flowScaling) {
    console.log(
      `Flow table ${f.flows}: ${f.nsPerPacket.toFixed(0)} ns per packet in-process, ${f.typedArrayBytesPerFlow.toFixed(0)} bytes of state per flow.`,
    );
  }
  for (const f of functions) {
    console.log(
      `Lambda ${f.name}: ${(f.bundleBytes / 1024).toFixed(0)} KiB minified (${(f.bundleBytesWithoutSdk / 1024).toFixed(0)} KiB without the AWS SDK), warm handler ${f.handlerMicros.mean.toFixed(0)} µs mean / ${f.handlerMicros.p99.toFixed(0)} µs p99.`,
    );
  }

  const results = {
    date: new Date().toISOString(),
    quick,
    command: `npm run bench${quick ? " -- --quick" : ""}`,
    pinned: pinning ? { systemUnderTest: SUT_CPU, loadGenerator: LOAD_CPUS } : null,
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      node: process.versions.node,
      platform: `${os.platform()} ${os.arch()}`,
    },
    flows: FLOWS,
    datagramBytes: datagramBytes(7),
    /** Every step of every contestant at 1,396 bytes. */
    steps: main1400,
    /** Highest offered load with ≤ 0.1 % loss (lossless) and delivered at the maximum (saturated), pps. */
    summary,
    gbitPerSecond: Object.fromEntries(
      CONTESTANTS.map((who) => [
        who,
        { clean: gbps(summary[who].losslessPps, 7), saturated: gbps(summary[who].saturatedPps, 7) },
      ]),
    ),
    ratios,
    latencyMicrosAt100k: added100k,
    cpuMicrosPerPacketAt100k: cpuAt100k,
    bySize,
    workers2,
    affinity,
    parallelGc,
    streams,
    memory,
    flowScaling,
    functions,
  };
  writeFileSync(new URL("./results.json", import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  console.log(
    `native/C echo clean-rate ratio ${times(ratios.cleanToCEcho)}, native/Node echo ${times(ratios.cleanToNodeEcho)}; p99 added at 100k pps ${(added100k.nativeOverCEcho / 1000).toFixed(3)} ms${streams ? `; ${streams.largest} streams per loop` : ""}`,
  );
}

await main();
