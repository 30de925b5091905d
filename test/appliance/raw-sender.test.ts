/**
 * `--sender raw`: allowed datagrams go back to GWLB:6081 from the source port GWLB sent each flow from,
 * byte for byte, with an outer IPv4/UDP header that tshark (an independent dissector) finds correct,
 * checksums included. The daemon runs as an unprivileged user holding only CAP_NET_RAW as an ambient
 * capability (what the systemd unit grants), and refuses to start, with the reason, without it.
 */

import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { APPLIANCE_BIN } from "../../appliance/lab/appliances/appliance-process.ts";
import { GwlbPeer } from "../../appliance/lab/gwlb/peer.ts";
import { CleanStream, DEFAULT_FLOW } from "../../appliance/lab/media/packets.ts";
import { PrometheusMetric } from "../../contracts/appliance-metrics.ts";
import { APPLIANCE_NODE_FLAGS } from "../../contracts/appliance-runtime.ts";
import { GENEVE_PORT } from "../../contracts/gwlb.ts";
import { applianceSuite } from "../support/appliance-suite.ts";
import { asUnprivileged, canGrantRaw, readablePolicy } from "../support/unprivileged.ts";

const APPLIANCE = "127.0.21.2";
const GWLB = "127.0.21.1";
const { dir, policyFile } = readablePolicy("si-raw-");

/** Starts tshark on loopback for the appliance's returns; resolves once it is capturing. */
async function capture(file: string, count: number): Promise<ChildProcess> {
  const tshark = spawn(
    "tshark",
    [
      "-i",
      "lo",
      "-f",
      `udp and src host ${APPLIANCE} and dst port ${GENEVE_PORT}`,
      "-c",
      String(count),
      "-a",
      "duration:20",
      "-w",
      file,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    tshark.stderr?.on("data", (chunk) => {
      stderr += chunk;
      // dumpcap has its filter attached once tshark reports the capture file open.
      if (stderr.includes("Capture started")) resolve();
    });
    tshark.once("exit", (code) => reject(new Error(`tshark exited ${code}: ${stderr}`)));
  });
  return tshark;
}

describe.runIf(canGrantRaw || process.env.CI)("raw sender (--sender raw)", () => {
  const { gwlb, launch } = applianceSuite(GWLB, { policyFile });

  it("can run here (root hands CAP_NET_RAW to the unprivileged daemon)", () => {
    expect(canGrantRaw).toBe(true);
  });

  it("returns each flow byte for byte from the source port GWLB sent it from, with checksums tshark accepts", async () => {
    const proc = launch({
      address: APPLIANCE,
      policyFile,
      ioBackend: "native",
      extraArgs: ["--sender", "raw"],
      launcher: asUnprivileged(true),
    });
    await proc.waitHealthy();
    expect(await proc.metric(PrometheusMetric.ioBackend, { backend: "native", sender: "raw" })).toBe(1);

    // GWLB gives every flow its own outer source port: one socket per flow.
    const flows = await Promise.all(Array.from({ length: 4 }, () => GwlbPeer.bind(GWLB, 0)));
    const ports = new Set(flows.map((peer) => String(peer.socket.address().port)));
    const pcap = path.join(dir, "returns.pcap");
    const perFlow = 5;
    const tshark = await capture(pcap, flows.length * perFlow);
    try {
      const sent = new Map<number, Buffer[]>();
      for (const [i, peer] of flows.entries()) {
        const stream = new CleanStream({ ...DEFAULT_FLOW, srcPort: 41000 + i });
        const port = peer.socket.address().port;
        sent.set(port, []);
        for (let n = 0; n < perFlow; n++) {
          const datagram = stream.next();
          sent.get(port)!.push(datagram);
          await peer.send(datagram, APPLIANCE);
        }
      }
      expect(await gwlb.waitForCount(flows.length * perFlow)).toBe(flows.length * perFlow);
      // Every return came from its own flow's port (never 6081), in order, unchanged.
      const back = new Map<number, Buffer[]>();
      for (const [i, port] of gwlb.sourcePorts.entries())
        back.set(port, [...(back.get(port) ?? []), gwlb.received[i]]);
      expect([...back.keys()].sort()).toEqual([...sent.keys()].sort());
      for (const [port, datagrams] of sent)
        expect(back.get(port), `flow from port ${port}`).toEqual(datagrams);
      if (tshark.exitCode === null) await once(tshark, "exit");
    } finally {
      tshark.kill();
      for (const peer of flows) peer.close();
    }
    const fields = execFileSync(
      "tshark",
      [
        "-r",
        pcap,
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "separator=,",
        "-E",
        "occurrence=f", // the outer header (the inner packet has IPv4/UDP fields too)
        "-e",
        "ip.src",
        "-e",
        "ip.dst",
        "-e",
        "ip.checksum.status",
        "-e",
        "ip.flags.df",
        "-e",
        "udp.srcport",
        "-e",
        "udp.dstport",
        "-e",
        "udp.checksum.status",
        "-e",
        "geneve.option.class",
      ],
      { encoding: "utf8" },
    )
      .trim()
      .split("\n")
      .map((line) => line.split(","));
    expect(fields).toHaveLength(flows.length * perFlow);
    for (const [src, dst, ipChecksum, df, srcPort, dstPort, udpChecksum, optionClass] of fields) {
      expect([src, dst, ipChecksum, df, dstPort, udpChecksum]).toEqual([
        APPLIANCE,
        GWLB,
        "1", // tshark: 1 = good, 0 = bad, 2 = unverified
        "1",
        String(GENEVE_PORT),
        "1",
      ]);
      expect(ports.has(srcPort), srcPort).toBe(true);
      expect(optionClass).toContain("0x0108");
    }
  });

  it("refuses to start without CAP_NET_RAW, saying why", () => {
    const [launcher, ...launcherArgs] = asUnprivileged(false);
    const run = spawnSync(
      launcher,
      [
        ...launcherArgs,
        ...APPLIANCE_NODE_FLAGS,
        APPLIANCE_BIN,
        "--geneve",
        `${APPLIANCE}:${GENEVE_PORT}`,
        "--health",
        `${APPLIANCE}:8080`,
        "--policy",
        policyFile,
        "--sender",
        "raw",
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(
      /--sender raw: cannot open a raw IPv4 socket \(Operation not permitted\).*CAP_NET_RAW/,
    );
  });

  it("refuses --sender raw on the dgram backend as a usage error", () => {
    const run = spawnSync(
      process.execPath,
      [APPLIANCE_BIN, "--policy", policyFile, "--sender", "raw", "--io-backend", "dgram"],
      { encoding: "utf8" },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/--sender raw needs the native I\/O backend/);
  });
});
