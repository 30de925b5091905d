import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../appliance/dataplane/compiled-policy.ts";
import { SLOTS_PER_WORKER } from "../../appliance/dataplane/counters.ts";
import { Inspector } from "../../appliance/dataplane/inspector.ts";
import { DEFAULT_POLICY_TEXT } from "../../appliance/lab/appliances/policy-file.ts";
import { CleanStream } from "../../appliance/lab/media/packets.ts";
import { mutate, seededRandom } from "../../appliance/wire/mutate.ts";
import { DROP_REASONS } from "../../contracts/appliance-metrics.ts";
import { parsePolicy } from "../../contracts/policy.ts";

const FIXTURES = new URL("../fixtures/fuzz/", import.meta.url);
const policy = parsePolicy(DEFAULT_POLICY_TEXT);

function inspector(): Inspector {
  const out = new Inspector(new Float64Array(SLOTS_PER_WORKER), () => {});
  out.setPolicy(compilePolicy(policy, 1));
  return out;
}

describe("fuzzing regressions", () => {
  it("replays the hand-made edge cases and every input `npm run fuzz` saved, without throwing", () => {
    const subject = inspector();
    const files = readdirSync(FIXTURES).filter((name) => name.endsWith(".bin"));
    expect(files.length).toBeGreaterThan(0); // the hand-made edge cases at least
    for (const name of files) {
      const input = readFileSync(new URL(name, FIXTURES));
      const verdict = subject.inspect(input, input.length, 1);
      expect(verdict, name).toBeGreaterThanOrEqual(0);
    }
  });

  it("survives a fixed-seed run of structure-aware mutations and keeps forwarding clean traffic", () => {
    const subject = inspector();
    const stream = new CleanStream();
    const seeds = Array.from({ length: 32 }, () => stream.next());
    const random = seededRandom(20261125);
    const clean = new CleanStream({ src: "10.0.2.99", dst: "10.0.12.20", srcPort: 47001, dstPort: 5010 });
    let now = 0;
    for (let i = 0; i < 30_000; i++) {
      now += 0.05;
      const input = mutate(seeds[i % seeds.length], random);
      const verdict = subject.inspect(input, input.length, now);
      expect(verdict >= 0 && verdict <= DROP_REASONS.length).toBe(true);
      if (i % 100 === 0) {
        const packet = clean.next();
        expect(subject.inspect(packet, packet.length, now)).toBe(0);
      }
    }
  });
});
