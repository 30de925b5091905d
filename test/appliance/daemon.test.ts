/**
 * The appliance as a process, over real UDP sockets on loopback: what GWLB sends, what comes back,
 * what /metrics and /healthz say, and how it reacts to policy changes and signals.
 */

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import {
  APPLIANCE_BIN,
  type ApplianceOptions,
  type ApplianceProcess,
} from "../../appliance/lab/appliances/appliance-process.ts";
import { defaultPolicy as shippedPolicy } from "../../appliance/lab/appliances/policy-file.ts";
import { GwlbPeer } from "../../appliance/lab/gwlb/peer.ts";
import {
  CleanStream,
  DEFAULT_FLOW,
  esPacket,
  geneveUdp,
  INNER_OFFSET,
  rtpPacket,
} from "../../appliance/lab/media/packets.ts";
import { decodeGeneve } from "../../appliance/wire/geneve.ts";
import { PrometheusMetric } from "../../contracts/appliance-metrics.ts";
import { APPLIANCE_NODE_FLAGS } from "../../contracts/appliance-runtime.ts";
import { GENEVE_PORT } from "../../contracts/gwlb.ts";
import { applianceSuite } from "../support/appliance-suite.ts";

const APPLIANCE = "127.0.20.2";
const GWLB = "127.0.20.1";
const defaultPolicy = shippedPolicy();
// Lower ceilings than production so a flood from one test process reliably exceeds them.
defaultPolicy.profiles["rtp-mpegts"].rate = {
  maxPacketsPerSecond: 1000,
  maxBitsPerSecond: 50_000_000,
  burstSeconds: 0.5,
};

const dropped = (appliance: ApplianceProcess, reason: string) =>
  appliance.metric(PrometheusMetric.packetsDropped, { reason });

// Every process test runs on both receive-loop backends: the native addon (what the instances run) and
// Node's dgram (the fallback when the addon cannot load).
describe.each(["native", "dgram"] as const)("stream-intel-appliance process, %s I/O", (backend) => {
  const { gwlb, launch, policyFile, writePolicy } = applianceSuite(GWLB, { tempPrefix: "si-daemon-" });

  async function start(options: Partial<ApplianceOptions> = {}): Promise<ApplianceProcess> {
    writePolicy(defaultPolicy);
    const appliance = launch({ address: APPLIANCE, policyFile, ioBackend: backend, ...options });
    await appliance.waitHealthy();
    return appliance;
  }

  it("documents every flag in --help, with its environment variable", () => {
    const help = spawnSync(process.execPath, [APPLIANCE_BIN, "--help"], { encoding: "utf8" }).stdout;
    for (const flag of ["--geneve", "--health", "--policy", "--policy-ssm", "--workers", "--drain-seconds"]) {
      expect(help).toContain(flag);
    }
    for (const env of ["SI_GENEVE", "SI_HEALTH", "SI_POLICY", "SI_POLICY_SSM", "SI_WORKERS"])
      expect(help).toContain(env);
  });

  it("refuses to start without a policy source, with a clear message", () => {
    const run = spawnSync(process.execPath, [APPLIANCE_BIN, "--geneve", `${APPLIANCE}:${GENEVE_PORT}`], {
      encoding: "utf8",
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/--policy FILE or --policy-ssm NAME is required/);
  });

  it("returns an allowed flow byte for byte, GWLB options included, to port 6081 of the sender", async () => {
    const proc = await start();
    const stream = new CleanStream();
    const sent = Array.from({ length: 200 }, () => stream.next());
    for (const datagram of sent) await gwlb.send(datagram, APPLIANCE);
    expect(await gwlb.waitForCount(200)).toBe(200);
    expect(gwlb.received.map((b) => b.toString("hex"))).toEqual(sent.map((b) => b.toString("hex")));
    expect(decodeGeneve(gwlb.received[0]).options).toHaveLength(3);
    expect(await proc.metric(PrometheusMetric.packetsForwarded)).toBe(200);
    expect(await proc.metric(PrometheusMetric.activeFlows)).toBe(1);
  });

  it("says which I/O backend its receive loops run on, in the log and in /metrics", async () => {
    const proc = await start({ workers: 2 });
    expect(await proc.metric(PrometheusMetric.ioBackend, { backend, sender: "udp" })).toBe(2);
    expect(await proc.metric(PrometheusMetric.ioBackend)).toBe(2);
    const decided = proc.output
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l))
      .find((l) => l.event === "io_backend");
    expect(decided).toMatchObject({ backend, sender: "udp" });
  });

  it("drops a zero-length, a truncated and an oversize datagram, counts each, and keeps forwarding", async () => {
    const proc = await start();
    const stream = new CleanStream();
    const before = stream.next();
    const truncated = stream.next().subarray(0, 300); // cut inside the inner packet: its IPv4 length lies
    // Larger than a receive slot (9,216 bytes): an RTP payload no GWLB (8,500-byte inner MTU) would carry.
    const oversize = geneveUdp({ ...DEFAULT_FLOW, srcPort: 43100 }, Buffer.alloc(9500, 0x47));
    const after = stream.next();
    for (const datagram of [before, Buffer.alloc(0), truncated, oversize, after])
      await gwlb.send(datagram, APPLIANCE);
    expect(await gwlb.waitForCount(2)).toBe(2);
    expect(gwlb.received).toEqual([before, after]);
    await proc.waitFor(
      async () => (await proc.metric(PrometheusMetric.packetsReceived)) === 5,
      "all five read",
    );
    expect(await dropped(proc, "geneve_malformed")).toBe(1);
    expect(await dropped(proc, "ip_malformed")).toBe(1);
    expect(await dropped(proc, "datagram_oversize")).toBe(1);
    expect(await proc.metric(PrometheusMetric.bytesReceived)).toBe(
      before.length + truncated.length + oversize.length + after.length,
    );
    expect((await proc.health()).status).toBe(200);
  });

  it("passes a real ffmpeg RTP/MPEG-TS capture through unchanged", async () => {
    await start();
    const capture = readFileSync(new URL("../fixtures/ffmpeg-rtp-mpegts.bin", import.meta.url));
    const sent: Buffer[] = [];
    for (let offset = 0; offset < capture.length; ) {
      const length = capture.readUInt16BE(offset);
      sent.push(
        geneveUdp({ ...DEFAULT_FLOW, srcPort: 42000 }, capture.subarray(offset + 2, offset + 2 + length)),
      );
      offset += 2 + length;
    }
    expect(sent.length).toBeGreaterThan(100);
    for (const datagram of sent) await gwlb.send(datagram, APPLIANCE);
    expect(await gwlb.waitForCount(sent.length)).toBe(sent.length);
    expect(gwlb.received.every((b, i) => b.equals(sent[i]))).toBe(true);
  });

  it("drops each attack class and counts it by reason, while the clean flow keeps flowing", async () => {
    const proc = await start();
    const clean = new CleanStream();
    const attacks: [string, Buffer[]][] = [];
    const unlisted = new CleanStream({ ...DEFAULT_FLOW, src: "203.0.113.9" });
    attacks.push([
      "flow_not_allowed",
      [unlisted.next(), new CleanStream({ ...DEFAULT_FLOW, dstPort: 22 }).next()],
    ]);
    const badVersion = rtpPacket({ sequence: 1, timestamp: 0, ssrc: 9, version: 1 }, clean.program.payload());
    attacks.push(["rtp_version", [geneveUdp({ ...DEFAULT_FLOW, srcPort: 43001 }, badVersion)]]);
    const garbage = Buffer.concat(Array.from({ length: 7 }, () => esPacket(0x100, 0)));
    garbage[0] = 0x00;
    attacks.push([
      "ts_sync_lost",
      [
        geneveUdp(
          { ...DEFAULT_FLOW, srcPort: 43002 },
          rtpPacket({ sequence: 1, timestamp: 0, ssrc: 5 }, garbage),
        ),
      ],
    ]);
    attacks.push(["custom_rule", [geneveUdp({ ...DEFAULT_FLOW, srcPort: 43003 }, Buffer.alloc(3000))]]);
    const malformed = Buffer.from(clean.next());
    malformed[INNER_OFFSET + 2] = 0xff; // inner IPv4 total length lies
    attacks.push(["ip_malformed", [malformed]]);

    const cleanSent: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const datagram = clean.next();
      cleanSent.push(datagram);
      await gwlb.send(datagram, APPLIANCE);
    }
    // SSRC hijack on the established clean flow
    const hijack = new CleanStream(DEFAULT_FLOW, 0x0bad0bad, clean.sequence + 5);
    attacks.push(["rtp_ssrc_changed", [hijack.next(), hijack.next()]]);
    for (const [, datagrams] of attacks) for (const d of datagrams) await gwlb.send(d, APPLIANCE);
    for (let i = 0; i < 20; i++) {
      const datagram = clean.next();
      cleanSent.push(datagram);
      await gwlb.send(datagram, APPLIANCE);
    }
    expect(await gwlb.waitForCount(cleanSent.length)).toBe(cleanSent.length);
    await new Promise((resolve) => setTimeout(resolve, 200)); // nothing else may come back
    expect(gwlb.received.length).toBe(cleanSent.length);
    expect(gwlb.received.every((b, i) => b.equals(cleanSent[i]))).toBe(true);
    for (const [reason, datagrams] of attacks)
      expect(await dropped(proc, reason), reason).toBe(datagrams.length);
  });

  it("drops a flood above the per-flow rate ceiling and says so in /metrics", async () => {
    const proc = await start();
    const flood = new CleanStream({ ...DEFAULT_FLOW, srcPort: 44000 });
    for (let i = 0; i < 4000; i++) {
      gwlb.socket.send(flood.next(), GENEVE_PORT, APPLIANCE);
      // Yield now and then so the kernel's socket buffers, not the test, decide what arrives.
      if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
    }
    // Wait until the count stops moving: whatever the kernel delivered has been inspected.
    let last = -1;
    await proc.waitFor(async () => {
      const now = await proc.metric(PrometheusMetric.packetsReceived);
      const settled = now === last && now > 0;
      last = now;
      return settled;
    }, "flood fully received");
    expect(last).toBeGreaterThan(2000);
    const limited = (await dropped(proc, "rate_packets")) + (await dropped(proc, "rate_bits"));
    const forwarded = await proc.metric(PrometheusMetric.packetsForwarded);
    // Where the kernel dropped more than maxSeqJump datagrams in a row, the stream is followed again
    // after its probation; nothing else may drop a packet of this flood.
    const probation = await dropped(proc, "rtp_seq_jump");
    expect(limited).toBeGreaterThan(1000);
    expect(forwarded + limited + probation).toBe(await proc.metric(PrometheusMetric.packetsReceived));
  });

  it("counts datagrams the kernel dropped while the appliance could not read, and recovers", async () => {
    const proc = await start({ socketBuffer: 65536 });
    proc.proc.kill("SIGSTOP"); // every thread frozen: the receive buffer fills and overflows
    const burst = new CleanStream({ ...DEFAULT_FLOW, srcPort: 46000 });
    for (let i = 0; i < 500; i++) gwlb.socket.send(burst.next(), GENEVE_PORT, APPLIANCE);
    await new Promise((resolve) => setTimeout(resolve, 300));
    proc.proc.kill("SIGCONT");
    // Every datagram is either read or counted as a kernel drop (the drop count is refreshed twice a second).
    let accounted = 0;
    await proc
      .waitFor(
        async () => {
          accounted =
            (await proc.metric(PrometheusMetric.packetsReceived)) +
            (await proc.metric(PrometheusMetric.socketDrops));
          return accounted === 500;
        },
        "every datagram read or counted as dropped",
        5000,
      )
      .catch(() => {}); // a timeout shows as the count the expectation below reports
    expect(accounted).toBe(500);
    expect(await proc.metric(PrometheusMetric.socketDrops)).toBeGreaterThan(0);
    expect(proc.output.some((l) => l.includes("stalled"))).toBe(false); // overload is a metric, not a 503
    // The stall gauge covers the check window in which the drops were seen, then clears.
    await proc.waitFor(
      async () => (await proc.metric(PrometheusMetric.forwardingStalled)) === 0,
      "stall gauge clears",
    );
    // and it carries on
    gwlb.received.length = 0;
    const after = new CleanStream({ ...DEFAULT_FLOW, srcPort: 46001 });
    for (let i = 0; i < 20; i++) await gwlb.send(after.next(), APPLIANCE);
    expect(await gwlb.waitForCount(20)).toBeGreaterThanOrEqual(20);
  });

  it("reloads a changed policy file without a restart and keeps the last good one when a bad one arrives", async () => {
    const proc = await start();
    const moved = new CleanStream({ ...DEFAULT_FLOW, src: "10.0.3.10" });
    await gwlb.send(moved.next(), APPLIANCE);
    await proc.waitFor(
      async () => (await dropped(proc, "flow_not_allowed")) === 1,
      "unlisted source dropped",
    );

    const rotated = structuredClone(defaultPolicy);
    rotated.sets!.mediaconnect = ["10.0.3.0/24"];
    writePolicy(rotated);
    await proc.waitFor(
      async () => (await proc.metric(PrometheusMetric.policyGeneration)) === 2,
      "generation 2",
    );
    await gwlb.send(moved.next(), APPLIANCE);
    expect(await gwlb.waitForCount(1)).toBe(1);

    writePolicy('{"version": 1, "profiles": {}, "flows": [{"name": "x"}]}');
    await proc.waitFor(
      async () => (await proc.metric(PrometheusMetric.policyReloadFailures)) === 1,
      "bad policy counted",
    );
    expect(await proc.metric(PrometheusMetric.policyGeneration)).toBe(2);
    expect((await proc.health()).status).toBe(200);
    await gwlb.send(moved.next(), APPLIANCE);
    expect(await gwlb.waitForCount(2)).toBe(2);
    expect(
      proc.output.some((line) => line.includes('"event":"policy_rejected"') && line.includes("flows.0.src")),
    ).toBe(true);

    // SIGHUP re-reads the source even when the watcher saw nothing.
    writeFileSync(policyFile, JSON.stringify(defaultPolicy));
    proc.proc.kill("SIGHUP");
    await proc.waitFor(
      async () => (await proc.metric(PrometheusMetric.policyGeneration)) === 3,
      "generation 3 after SIGHUP",
    );
  });

  it("is not healthy until a policy is loaded", async () => {
    writePolicy("{ not json");
    const proc = launch({ address: APPLIANCE, policyFile, ioBackend: backend });
    await proc.waitFor(async () => (await proc.health()).body.status === "no-policy", "503 no-policy");
    expect((await proc.health()).status).toBe(503);
    writePolicy(defaultPolicy);
    await proc.waitHealthy();
  });

  it("says at start when node runs without the appliance's flags, and still serves", async () => {
    const proc = await start({ nodeArgs: [] });
    const warning = proc.output
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l))
      .find((l) => l.event === "node_flags");
    expect(warning?.missing).toEqual([...APPLIANCE_NODE_FLAGS]);
    expect(warning?.msg).toContain("--single-threaded-gc");
  });

  it("drains on SIGTERM: 503 at once, keeps forwarding for the drain period, then exits 0", async () => {
    const proc = await start({ drainSeconds: 2 });
    const stream = new CleanStream();
    proc.proc.kill("SIGTERM");
    await proc.waitFor(async () => (await proc.health()).status === 503, "503 while draining");
    expect((await proc.health()).body.status).toBe("draining");
    const sent = Array.from({ length: 50 }, () => stream.next());
    for (const datagram of sent) await gwlb.send(datagram, APPLIANCE);
    expect(await gwlb.waitForCount(50)).toBe(50);
    expect(await proc.exited).toBe(0);
  });

  it("with --cpu-affinity auto, gives the receive loop a CPU of its own and the other threads the rest", async () => {
    const proc = await start({ extraArgs: ["--cpu-affinity", "auto"] });
    await proc.waitFor(
      async () => proc.output.some((l) => l.includes('"event":"cpu_affinity"')),
      "affinity decided",
    );
    const threads = readdirSync(`/proc/${proc.proc.pid}/task`).map((task) => ({
      name: readFileSync(`/proc/${proc.proc.pid}/task/${task}/comm`, "utf8").trim(),
      cpus: /Cpus_allowed_list:\s*(\S+)/.exec(
        readFileSync(`/proc/${proc.proc.pid}/task/${task}/status`, "utf8"),
      )?.[1],
    }));
    const loop = threads.find((t) => t.name === "dataplane-0")!;
    // Started as every launcher starts it: no complaint about node's flags.
    expect(proc.output.some((l) => l.includes('"event":"node_flags"'))).toBe(false);
    if (availableParallelism() < 2) {
      expect(proc.output.some((l) => l.includes("receive loops not pinned"))).toBe(true);
      return;
    }
    expect(loop.cpus).toBe(String(availableParallelism() - 1));
    for (const other of threads.filter((t) => t.name !== "dataplane-0"))
      expect(other.cpus, other.name).not.toContain(loop.cpus!);
    // and it still forwards
    const stream = new CleanStream({ ...DEFAULT_FLOW, srcPort: 46100 });
    for (let i = 0; i < 20; i++) await gwlb.send(stream.next(), APPLIANCE);
    expect(await gwlb.waitForCount(20)).toBe(20);
  });

  it("spreads flows over several receive loops with SO_REUSEPORT and loses none", async () => {
    const proc = await start({ workers: 2 });
    expect(await proc.metric(PrometheusMetric.workers)).toBe(2);
    // GWLB gives every flow its own outer source port; emulate that with one socket per flow.
    const peers = await Promise.all(Array.from({ length: 8 }, () => GwlbPeer.bind("127.0.20.3", 0)));
    const replies = await GwlbPeer.bind("127.0.20.3");
    try {
      let total = 0;
      for (const [i, peer] of peers.entries()) {
        const stream = new CleanStream({ ...DEFAULT_FLOW, srcPort: 45000 + i });
        for (let n = 0; n < 30; n++) {
          await peer.send(stream.next(), APPLIANCE);
          total++;
        }
      }
      expect(await replies.waitForCount(total)).toBe(total);
      const perWorker = (await proc.metrics()).filter((s) => s.name === PrometheusMetric.activeFlows);
      expect(perWorker).toHaveLength(2);
      expect(perWorker.reduce((sum, s) => sum + s.value, 0)).toBe(8);
    } finally {
      for (const peer of peers) peer.close();
      replies.close();
    }
  });
});
