/**
 * `npm run fuzz [-- --quick] [--iterations N] [--live N] [--seed S] [--io-backend native|dgram]`: throws
 * random and structure-aware mutated GENEVE datagrams at the inspector in-process and then at a live
 * daemon over loopback (its native batched receive loop unless told otherwise), with clean packets in
 * between that must all come back. The live daemon first gets the datagrams the receive slots must
 * survive: zero-length, cut short anywhere, and larger than a slot; each must be counted under its
 * reason. Any input that makes the inspector throw is written to test/fixtures/fuzz/ (replayed by the
 * regression test) and the run fails.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { compilePolicy } from "../appliance/dataplane/compiled-policy.ts";
import { SLOTS_PER_WORKER } from "../appliance/dataplane/counters.ts";
import { Inspector } from "../appliance/dataplane/inspector.ts";
import { MAX_DATAGRAM_BYTES } from "../appliance/dataplane/io/receive-loop.ts";
import { buildNative, type NativeTarget } from "../appliance/native/build.ts";
import { HOST_TARGET } from "../appliance/native/layout.ts";
import { mutate, seededRandom } from "../appliance/wire/mutate.ts";
import { DROP_REASONS, PrometheusMetric } from "../contracts/appliance-metrics.ts";
import { parsePolicy } from "../contracts/policy.ts";
import { ApplianceProcess, GwlbPeer } from "../test/support/appliance-process.ts";
import { CleanStream, DEFAULT_FLOW } from "../test/support/packets.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    iterations: { type: "string" },
    live: { type: "string" },
    seed: { type: "string" },
    "io-backend": { type: "string", default: "native" },
  },
});
const ioBackend = values["io-backend"] as "native" | "dgram";
const iterations = Number(values.iterations ?? (values.quick ? 200_000 : 2_000_000));
const liveIterations = Number(values.live ?? (values.quick ? 50_000 : 300_000));
const seed = Number(values.seed ?? Date.now() % 1_000_000);
const FIXTURES = new URL("../test/fixtures/fuzz/", import.meta.url);
const policyText = readFileSync(new URL("../appliance/policy.default.json", import.meta.url), "utf8");

function corpus(count: number): Buffer[] {
  const streams = [
    new CleanStream(),
    new CleanStream({ ...DEFAULT_FLOW, srcPort: 40100 }, 0x77),
    new CleanStream({ src: "fd00:1::10", dst: "fd00:11::20", srcPort: 40000, dstPort: 5001 }),
  ];
  return Array.from({ length: count }, (_, i) => streams[i % streams.length].next());
}

function progress(label: string, done: number, total: number, extra: string): void {
  if (done % 50_000 !== 0 && done !== total) return;
  process.stderr.write(`\r${label} ${done.toLocaleString()} / ${total.toLocaleString()} ${extra}   `);
  if (done === total) process.stderr.write("\n");
}

function inProcess(): number {
  const counters = new Float64Array(SLOTS_PER_WORKER);
  const inspector = new Inspector(counters, () => {});
  inspector.setPolicy(compilePolicy(parsePolicy(policyText), 1));
  const random = seededRandom(seed);
  const seeds = corpus(64);
  let crashes = 0;
  let now = 0;
  const heapStart = process.memoryUsage().heapUsed;
  for (let i = 1; i <= iterations; i++) {
    const input =
      random() < 0.1
        ? Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => random() * 256))
        : mutate(seeds[i % seeds.length], random);
    now += 0.01;
    try {
      const verdict = inspector.inspect(input, input.length, now);
      if (!(verdict >= 0 && verdict <= DROP_REASONS.length))
        throw new Error(`verdict ${verdict} out of range`);
    } catch (error) {
      crashes++;
      const name = `crash-${createHash("sha256").update(input).digest("hex").slice(0, 16)}.bin`;
      writeFileSync(new URL(name, FIXTURES), input);
      process.stderr.write(`\ninspector threw on input ${name}: ${(error as Error).message}\n`);
    }
    if (i % 100_000 === 0) inspector.sweep(now);
    progress(
      "in-process",
      i,
      iterations,
      `flows ${inspector.flowCount}, heap +${((process.memoryUsage().heapUsed - heapStart) / 1e6).toFixed(1)} MB`,
    );
  }
  const forwarded = iterations - DROP_REASONS.reduce((sum, _r, i) => sum + counters[16 + i], 0);
  console.log(
    `in-process: ${iterations.toLocaleString()} inputs (seed ${seed}), ${crashes} crashes, ${forwarded.toLocaleString()} forwarded, flow table ${inspector.flowCount}`,
  );
  return crashes;
}

async function live(): Promise<boolean> {
  if (ioBackend === "native") buildNative(HOST_TARGET as NativeTarget);
  const dir = mkdtempSync(path.join(tmpdir(), "si-fuzz-"));
  const policyFile = path.join(dir, "policy.json");
  writeFileSync(policyFile, policyText);
  const appliance = new ApplianceProcess({ address: "127.0.40.2", policyFile, ioBackend });
  const gwlb = await GwlbPeer.bind("127.0.40.1");
  try {
    await appliance.waitHealthy();
    if (!(await edges(appliance, gwlb))) return false;
    const rssBefore = Number(
      /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${appliance.proc.pid}/status`, "utf8"))?.[1],
    );
    const random = seededRandom(seed + 1);
    const seeds = corpus(64);
    const clean = new CleanStream({ ...DEFAULT_FLOW, src: "10.0.2.200", srcPort: 47000 });
    const cleanSent = new Set<string>();
    for (let i = 1; i <= liveIterations; i++) {
      if (i % 10 === 0) {
        const datagram = clean.next();
        cleanSent.add(datagram.toString("base64"));
        gwlb.socket.send(datagram, 6081, appliance.address);
      } else {
        gwlb.socket.send(mutate(seeds[i % seeds.length], random), 6081, appliance.address);
      }
      // Pace at roughly 20k datagrams/s so the kernel does not drop the clean ones for us.
      if (i % 200 === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      progress("live daemon", i, liveIterations, `clean back ${gwlb.received.length}`);
    }
    await gwlb.waitForCount(gwlb.received.length + 1, 2000);
    const back = gwlb.received.filter((b) => cleanSent.has(b.toString("base64"))).length;
    const healthy = (await appliance.health()).status === 200;
    const rssAfter = Number(
      /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${appliance.proc.pid}/status`, "utf8"))?.[1],
    );
    const received = await appliance.metric(PrometheusMetric.packetsReceived);
    console.log(
      `live daemon (${ioBackend} I/O): ${liveIterations.toLocaleString()} datagrams, ${received.toLocaleString()} received, clean ${back}/${cleanSent.size} back, healthy ${healthy}, RSS ${(rssBefore / 1024).toFixed(0)} → ${(rssAfter / 1024).toFixed(0)} MiB`,
    );
    return healthy && back === cleanSent.size && appliance.proc.exitCode === null;
  } finally {
    gwlb.close();
    await appliance.stop();
  }
}

/**
 * What the receive slots must survive, sent slowly enough that the kernel drops none: zero-length
 * datagrams, clean ones cut short at every length, and ones larger than a slot. Each is counted under
 * its reason (geneve_malformed / any parse reason / datagram_oversize), none comes back, the daemon stays
 * healthy.
 */
async function edges(appliance: ApplianceProcess, gwlb: GwlbPeer): Promise<boolean> {
  const random = seededRandom(seed + 2);
  const clean = new CleanStream({ ...DEFAULT_FLOW, src: "10.0.2.201", srcPort: 47001 }).next();
  const sent = { zero: 200, truncated: clean.length - 1, oversize: 200 };
  const before = await appliance.metric(PrometheusMetric.packetsReceived);
  const send = async (datagram: Buffer, i: number) => {
    gwlb.socket.send(datagram, 6081, appliance.address);
    if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  for (let i = 0; i < sent.zero; i++) await send(Buffer.alloc(0), i);
  for (let cut = 1; cut < clean.length; cut++) await send(clean.subarray(0, cut), cut);
  for (let i = 0; i < sent.oversize; i++) {
    const size = MAX_DATAGRAM_BYTES + 1 + Math.floor(random() * (65_000 - MAX_DATAGRAM_BYTES));
    await send(Buffer.concat([clean, Buffer.alloc(size - clean.length, 0x47)]), i);
  }
  const total = sent.zero + sent.truncated + sent.oversize;
  await appliance.waitFor(
    async () => (await appliance.metric(PrometheusMetric.packetsReceived)) - before >= total,
    "every edge datagram read",
    10_000,
  );
  const oversize = await appliance.metric(PrometheusMetric.packetsDropped, {
    reason: "datagram_oversize",
  });
  const forwarded = await appliance.metric(PrometheusMetric.packetsForwarded);
  const healthy = (await appliance.health()).status === 200;
  console.log(
    `edge datagrams (${ioBackend}): ${sent.zero} zero-length, ${sent.truncated} truncated (every length), ${sent.oversize} larger than a ${MAX_DATAGRAM_BYTES}-byte slot → read ${total}, ${oversize} counted datagram_oversize, ${forwarded} returned, healthy ${healthy}`,
  );
  return oversize === sent.oversize && forwarded === 0 && healthy && gwlb.received.length === 0;
}

const crashes = inProcess();
const liveOk = await live();
if (crashes > 0 || !liveOk) {
  console.log("fuzz: FAILED");
  process.exitCode = 1;
} else {
  console.log("fuzz: no crash, every clean packet came back");
}
