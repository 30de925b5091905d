/**
 * The GWLB emulator's view of the outer source port of returns: it accepts them from any port (GWLB's
 * documented behaviour is only that the datagram comes back), and counts, per flow, the returns that
 * kept the flow's own port: all of them from a `--sender raw` appliance, none from `--sender udp`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ApplianceProcess } from "../../appliance/lab/appliances/appliance-process.ts";
import { type Flow, GwlbEmulator } from "../../appliance/lab/gwlb/emulator.ts";
import { rtpPacket, TsProgram } from "../../appliance/lab/media/packets.ts";
import { asUnprivileged, canGrantRaw, readablePolicy } from "../support/unprivileged.ts";

const EMULATOR = "127.0.22.1";
const APPLIANCE = "127.0.22.2";
const PER_FLOW = 10;

const { policyFile } = readablePolicy("si-emu-port-");

async function run(sender: "udp" | "raw"): Promise<Flow[]> {
  const appliance = new ApplianceProcess({
    address: APPLIANCE,
    policyFile,
    extraArgs: ["--sender", sender],
    // raw: an unprivileged user holding only CAP_NET_RAW, as the systemd unit runs it
    launcher: sender === "raw" ? asUnprivileged(true) : undefined,
  });
  running = appliance;
  await appliance.waitHealthy();
  const emulator = new GwlbEmulator({
    address: EMULATOR,
    targets: [{ address: APPLIANCE, healthUrl: `${appliance.serverUrl}/healthz` }],
    healthIntervalMs: 100,
    healthyThreshold: 1,
    unhealthyThreshold: 2,
    deregistrationDelayMs: 1000,
    onDeliver: () => {},
  });
  try {
    await emulator.start();
    const flows = await Promise.all(
      [0, 1, 2].map((i) =>
        emulator.addFlow({
          src: "10.0.1.10",
          dst: "10.0.11.20",
          srcPort: 42000 + i,
          dstPort: 5000,
          label: `flow-${i}`,
          attack: false,
        }),
      ),
    );
    for (const [i, flow] of flows.entries()) {
      const program = new TsProgram();
      for (let n = 0; n < PER_FLOW; n++)
        emulator.send(
          flow,
          rtpPacket({ sequence: n, timestamp: n * 3000, ssrc: 0x1000 + i }, program.payload()),
        );
    }
    const deadline = Date.now() + 5000;
    while (flows.some((f) => f.returned < PER_FLOW) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(emulator.strayReturns).toBe(0);
    return flows.map((f) => ({ ...f }));
  } finally {
    await emulator.stop();
  }
}

let running: ApplianceProcess | null = null;

describe("emulator: outer source port of returns", () => {
  afterEach(async () => {
    await running?.stop();
    running = null;
  });

  it("accepts returns from 6081 (--sender udp) and counts none as from the flow's port", async () => {
    for (const flow of await run("udp")) {
      expect(flow.returned).toBe(PER_FLOW);
      expect(flow.corrupted).toBe(0);
      expect(flow.returnedFromFlowPort).toBe(0);
    }
  });

  it.runIf(canGrantRaw || process.env.CI)(
    "sees every return of a --sender raw appliance come from the flow's own source port",
    async () => {
      for (const flow of await run("raw")) {
        expect(flow.returned).toBe(PER_FLOW);
        expect(flow.corrupted).toBe(0);
        expect(flow.returnedFromFlowPort).toBe(PER_FLOW);
        expect(flow.sourcePort).not.toBe(6081);
      }
    },
  );
});
