/**
 * `npm run bench:table`: the README's figures and targets from a results.json, here one made from
 * synthetic steps (the clean rate is the best step with ≤ 0.1 % loss that was offered in full).
 */
import { describe, expect, it } from "vitest";
import { readConfig } from "../../bench/config.ts";
import { results, type Sections, summarise } from "../../bench/results.ts";
import type { Step } from "../../bench/steps.ts";
import { markdown } from "../../bench/table.ts";

function step(offered: number, delivered: number, loss: number, p99: number, sentPerSecond = offered): Step {
  return {
    offered,
    sent: sentPerSecond * 4,
    received: delivered * 4,
    mismatched: 0,
    late: 0,
    sentPerSecond,
    deliveredPerSecond: delivered,
    loss,
    latencyMicros: { p50: p99 / 2, p99, p999: p99, max: p99, samples: 1000 },
    cpuMicrosPerPacket: 4,
  };
}

const sweep = (clean: number, p99At100k: number) => [
  step(100_000, 100_000, 0, p99At100k),
  step(clean, clean, 0.0005, 900),
  step(clean + 100_000, clean, 0.2, 9000),
  step(0, clean + 10_000, 0.3, 9000, 600_000),
];

function made(config = readConfig(["--quick"])) {
  const steps = {
    nodeEcho: sweep(100_000, 900),
    cEcho: sweep(400_000, 200),
    native: sweep(320_000, 700),
    dgram: sweep(100_000, 1500),
  };
  const sections: Sections = {
    steps,
    bySize: {},
    workers2: [],
    affinity: [],
    parallelGc: [],
    streams: null,
    memory: [{ flows: 30_000, rssMiB: 180, marginalBytesPerFlow: 220 }],
    flowScaling: [
      { flows: 1000, nsPerPacket: 500, bytesPerFlow: 300, typedArrayBytesPerFlow: 288 },
      { flows: 100_000, nsPerPacket: 700, bytesPerFlow: 300, typedArrayBytesPerFlow: 288 },
    ],
    functions: [],
  };
  const context = {
    config,
    network: "network namespaces, veth pairs",
    flows: 16,
    datagramBytes: 1396,
    startedAt: new Date(),
  };
  return results(context, summarise(steps, 1396), sections);
}

describe("bench:table", () => {
  it("prints the run, the figures per contestant and the targets with whether each is met", () => {
    const text = markdown(made());
    expect(text).toMatch(
      /^`npm run bench -- --quick`, \d{4}-\d\d-\d\d \d\d:\d\d UTC, .*; network namespaces, veth pairs\.$/m,
    );
    expect(text).toContain(
      "| 1,396 B, 16 flows | Node echo | C echo, 64 per call | appliance, dgram | appliance, native |",
    );
    expect(text).toContain(
      "| clean (≤ 0.1 % loss, offered in full) | 100.0k pps, 1.12 Gbit/s | 400.0k pps, 4.47 Gbit/s |",
    );
    expect(text).toContain(
      "| p99 at 100k pps (one-way, generator → system → generator) | 0.90 ms | 0.20 ms | 1.50 ms | 0.70 ms |",
    );
    expect(text).toContain(
      "| clean rate with full inspection ≥ 0.75 × the batched C echo's | 0.80 × | met |",
    );
    expect(text).toContain("| ≥ 300k pps at 1,396 B | 320.0k pps | met |");
    expect(text).toContain("| p99 added ≤ 1 ms at 100k pps | 0.50 ms | met |");
    expect(text).toContain(
      "| ≥ 250 streams of 10 Mbit/s per receive loop, zero loss | not measured (--quick) | not shown |",
    );
    // A quick run's flow tables are too small to show the flow-count targets.
    expect(text).toMatch(/cost per packet flat .* \| not shown \|/);
    expect(text).toMatch(/memory per flow unchanged .* \| 220 bytes \| not shown \|/);
  });

  it("does not judge the added latency over a C echo that did not keep up itself", () => {
    const r = made();
    r.steps.cEcho[0] = step(100_000, 80_000, 0.2, 100_001);
    r.latencyMicrosAt100k.nativeOverCEcho = 700 - 100_001;
    expect(markdown(r)).toContain(
      "| p99 added ≤ 1 ms at 100k pps | -99.30 ms (the C echo itself did not keep up at 100k pps) | not shown |",
    );
  });

  it("judges the flow-count targets on a full run", () => {
    const text = markdown(made(readConfig([])));
    expect(text).toMatch(/cost per packet flat .* \| met \|/);
    expect(text).toMatch(/memory per flow unchanged .* \| 220 bytes \| met \|/);
  });
});
