/** The emulator's flow bookkeeping as scenarios use it: pinning a flow, and finding the busiest target. */
import { describe, expect, it } from "vitest";
import { GwlbEmulator } from "../../appliance/lab/gwlb/emulator.ts";

const EMULATOR = "127.0.23.1";
const FLOW = { src: "10.0.1.10", dst: "10.0.11.20", srcPort: 0, dstPort: 5000, label: "", attack: false };

function emulator(): GwlbEmulator {
  return new GwlbEmulator({
    address: EMULATOR,
    targets: [
      { address: "127.0.23.2", healthUrl: "http://127.0.23.2:8080/healthz" },
      { address: "127.0.23.3", healthUrl: "http://127.0.23.3:8080/healthz" },
    ],
    healthIntervalMs: 1000,
    healthyThreshold: 1,
    unhealthyThreshold: 2,
    deregistrationDelayMs: 1000,
    onDeliver: () => {},
  });
}

describe("emulator: pin and busiestTarget", () => {
  it("moves a pinned flow and keeps every target's flow count true", async () => {
    const gwlb = emulator();
    // No health check has run: every target is initial, so a new flow has no target yet.
    const flows = await Promise.all(
      [0, 1, 2].map((i) => gwlb.addFlow({ ...FLOW, srcPort: 31_000 + i, label: `f${i}` })),
    );
    try {
      expect(flows.map((f) => f.target)).toEqual([-1, -1, -1]);
      for (const flow of flows) gwlb.pin(flow, 1);
      expect(gwlb.targets.map((t) => t.flows)).toEqual([0, 3]);
      expect(gwlb.busiestTarget(flows).index).toBe(1);
      gwlb.pin(flows[0], 0);
      gwlb.pin(flows[0], 0);
      expect(flows[0].target).toBe(0);
      expect(gwlb.targets.map((t) => t.flows)).toEqual([1, 2]);
      gwlb.pin(flows[1], 0);
      gwlb.pin(flows[2], 0);
      expect(gwlb.busiestTarget(flows).index).toBe(0);
      expect(gwlb.targets.map((t) => t.flows)).toEqual([3, 0]);
      // Of the given flows only: a scenario's own streams, not those earlier scenarios left behind.
      gwlb.pin(flows[2], 1);
      expect(gwlb.busiestTarget(flows).index).toBe(0);
      expect(gwlb.busiestTarget([flows[2]]).index).toBe(1);
    } finally {
      for (const flow of flows) flow.socket.close();
    }
  });

  it("names the first target when the counts tie", () => {
    expect(emulator().busiestTarget([]).index).toBe(0);
  });
});
