/**
 * The benchmark's C load generator: its traffic, captured on the wire, is valid GENEVE/IPv4/UDP/RTP/
 * MPEG-TS to an independent dissector (tshark) with each flow's RTP sequence continuing across steps;
 * a run through the C echo in a network namespace comes back whole and byte for byte; and a return
 * that differs by one byte is counted as such.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildC, Generator, type GeneratorStep } from "../../bench/generator.ts";
import { Network } from "../../bench/netns.ts";
import { GENEVE_PORT } from "../../contracts/gwlb.ts";
import { outputIncludes } from "./output.ts";

const root = process.getuid?.() === 0;
const hasTshark = (() => {
  try {
    execFileSync("tshark", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const generator = new Generator(null);

describe.skipIf(!root)(
  "through the C echo in a network namespace (needs root for ip netns: skipped otherwise)",
  () => {
    let network: Network;
    let echo: ChildProcess;

    beforeAll(async () => {
      network = new Network(["echo"], {
        prefix: `si-bt-gen${process.pid}`,
        sutCpu: null,
        generatorCpus: null,
      });
      const site = network.site("echo");
      const [command, ...args] = network.command(site, [buildC("echo"), site.address, "6081", "6081"]);
      echo = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
      await once(echo.stdout!, "data");
    });

    afterAll(() => {
      echo?.kill("SIGKILL");
      network?.close();
    });

    const load = (options: Partial<GeneratorStep> = {}): GeneratorStep => {
      const site = network.site("echo");
      return { bind: site.generator, target: site.address, rate: 5000, seconds: 0.5, flows: 16, ...options };
    };

    it("gets every datagram back, byte for byte, with its one-way latency", async () => {
      const report = await generator.run(load({ warmupSeconds: 0 }));
      expect(report.sent).toBeGreaterThanOrEqual(2400);
      expect(report.errors).toBe(0);
      expect(report.received).toBe(report.sent);
      expect(report.mismatched).toBe(0);
      expect(report.latencyMicros.samples).toBe(report.received);
      expect(report.latencyMicros.p50).toBeGreaterThan(0);
    });

    it.skipIf(!hasTshark)(
      "sends what tshark decodes as GENEVE/IPv4/UDP/RTP/MPEG-TS, sequences continuing across steps",
      async () => {
        const site = network.site("echo");
        const file = path.join(mkdtempSync(path.join(tmpdir(), "si-bt-pcap-")), "generator.pcap");
        const [command, ...args] = network.command(site, [
          "tshark",
          "-i",
          site.device,
          "-w",
          file,
          "-f",
          `udp and dst host ${site.address}`,
        ]);
        const capture = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
        await outputIncludes(capture.stderr!, "Capturing on");
        // tshark says it is capturing a little before it is.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const flows = 2;
        // Two steps: the second continues where the first stopped.
        let sent = 0;
        for (let i = 0; i < 2; i++)
          sent += (await generator.run(load({ flows, rate: 1000, seconds: 0.2, basePort: 30_000 }))).sent;
        await new Promise((resolve) => setTimeout(resolve, 300));
        capture.kill("SIGINT");
        await once(capture, "exit");
        const fields = [
          "geneve.option.class",
          "ip.src",
          "udp.dstport",
          "rtp.version",
          "rtp.p_type",
          "rtp.ssrc",
          "rtp.seq",
          "mp2t.pid",
        ];
        const out = execFileSync(
          "tshark",
          [
            "-r",
            file,
            "-d",
            "udp.port==5000,rtp",
            "-d",
            "udp.port==5001,rtp",
            "-T",
            "fields",
            "-E",
            "separator=|",
            ...fields.flatMap((f) => ["-e", f]),
          ],
          { encoding: "utf8" },
        );
        const packets = out
          .trim()
          .split("\n")
          .map((line) => Object.fromEntries(line.split("|").map((v, i) => [fields[i], v])));
        expect(packets.length).toBe(sent);
        for (const p of packets) {
          expect(p["geneve.option.class"]).toBe("0x0108,0x0108,0x0108");
          expect(p["ip.src"]).toMatch(/^198\.18\.0\.1,10\.0\.[12]\.\d+$/);
          expect(p["rtp.version"]).toBe("2");
          expect(p["rtp.p_type"]).toBe("33");
        }
        for (const ssrc of ["0x51000000", "0x51000001"]) {
          const flow = packets.filter((p) => p["rtp.ssrc"] === ssrc);
          const seq = flow.map((p) => Number(p["rtp.seq"]));
          expect(seq.length).toBeGreaterThan(150); // both steps
          for (let i = 1; i < seq.length; i++) expect(seq[i]).toBe((seq[i - 1] + 1) & 0xffff);
          // Every 100th datagram of a flow leads with PAT (PID 0) and PMT (0x1000).
          const psi = flow.filter((p) => p["mp2t.pid"].startsWith("0x00000000,0x00001000,0x00000100"));
          expect(psi).toHaveLength(Math.ceil(seq.length / 100));
        }
        // tshark's own MPEG-TS continuity check finds nothing missing.
        const expert = execFileSync(
          "tshark",
          ["-r", file, "-d", "udp.port==5000,rtp", "-d", "udp.port==5001,rtp", "-Y", "mp2t.cc.drop"],
          {
            encoding: "utf8",
          },
        );
        expect(expert.trim()).toBe("");
      },
    );
  },
);

describe("the byte-for-byte check (loopback)", () => {
  /** A UDP echo on loopback that returns each datagram with `alter` applied. */
  async function echoing(address: string, alter: (msg: Buffer) => Buffer) {
    const socket = dgram.createSocket("udp4");
    socket.on("message", (msg, rinfo) => socket.send(alter(msg), GENEVE_PORT, rinfo.address));
    await new Promise<void>((resolve) => socket.bind(GENEVE_PORT, address, resolve));
    return socket;
  }
  const step = (target: string): GeneratorStep => ({
    bind: "127.0.31.1",
    target,
    rate: 2000,
    seconds: 0.25,
    flows: 4,
    warmupSeconds: 0,
  });

  it("passes returns that are what was sent", async () => {
    const socket = await echoing("127.0.31.2", (msg) => msg);
    try {
      const report = await generator.run(step("127.0.31.2"));
      expect(report.received).toBeGreaterThan(0);
      expect(report.mismatched).toBe(0);
    } finally {
      socket.close();
    }
  });

  it("counts every return that differs by one byte", async () => {
    const socket = await echoing("127.0.31.3", (msg) => {
      msg[msg.length >>> 1] ^= 0x01; // in the middle of a TS packet's payload
      return msg;
    });
    try {
      const report = await generator.run(step("127.0.31.3"));
      expect(report.received).toBeGreaterThan(0);
      expect(report.mismatched).toBe(report.received);
      expect(report.latencyMicros.samples).toBe(0);
    } finally {
      socket.close();
    }
  });
});
