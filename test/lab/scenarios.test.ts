/**
 * Every lab scenario, short, against real appliance processes: the verdicts and the counts behind
 * them. One lab for the whole file (its emulator owns 127.0.0.1:6081), scenarios in the default order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab } from "../../appliance/lab/lab.ts";
import { labOptions } from "../../appliance/lab/main.ts";
import { attacks } from "../../appliance/lab/scenarios/attacks.ts";
import { clean } from "../../appliance/lab/scenarios/clean.ts";
import { drain } from "../../appliance/lab/scenarios/drain.ts";
import { burst, policySourceDown, slowAppliance } from "../../appliance/lab/scenarios/drills.ts";
import { encoderRestart } from "../../appliance/lab/scenarios/encoder-restart.ts";
import { failover } from "../../appliance/lab/scenarios/failover.ts";
import { policyChange } from "../../appliance/lab/scenarios/policy-change.ts";
import type { Scenario, ScenarioResult } from "../../appliance/lab/scenarios/scenario.ts";
import { sourceFailover } from "../../appliance/lab/scenarios/source-failover.ts";

describe("lab scenarios (quick)", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = new Lab(labOptions({ quick: true, streams: 6, bitrate: 4, appliances: 2, source: "synthetic" }));
    await lab.start();
  }, 30_000);
  afterAll(async () => lab?.stop());
  const progress = () => {};
  /** Runs `scenario` on the file's lab and expects no failure. */
  async function pass<D extends object>(scenario: Scenario<D>): Promise<ScenarioResult<D>> {
    const r = await scenario.run(lab, progress);
    expect(r.failures).toEqual([]);
    return r;
  }

  it("clean: every packet delivered, none dropped, none altered", async () => {
    const r = await pass(clean);
    expect(r.verdict).toBe("pass");
    expect(r.packets.cleanSent).toBeGreaterThan(1000);
    expect(r.packets.cleanDelivered).toBe(r.packets.cleanSent);
    expect(r.packets.droppedByReason).toEqual({});
    expect(r.details.corruptedReturns).toBe(0);
    expect(r.addedLatencyMs.p50).toBeGreaterThan(0);
  }, 30_000);

  it("attacks: none reaches MediaLive, each is dropped for its reason, clean streams untouched", async () => {
    const r = await pass(attacks);
    expect(r.packets.attackSent).toBeGreaterThan(500);
    expect(r.packets.attackDelivered).toBe(0);
    expect(r.packets.cleanLost).toBe(0);
    for (const reason of [
      "flow_not_allowed",
      "rtp_ssrc_changed",
      "rtp_version",
      "rtp_malformed",
      "ts_sync_lost",
      "rate_packets",
    ]) {
      expect(r.packets.droppedByReason[reason], reason).toBeGreaterThan(0);
    }
  }, 30_000);

  it("failover: a killed appliance's flows move and the loss stays under the detection bound", async () => {
    const r = await pass(failover);
    const details = r.details;
    expect(details.flowsMoved).toBeGreaterThan(0);
    expect(r.packets.cleanLost).toBeLessThanOrEqual(details.lossBound);
    expect(details.timeToDetectMs).toBeGreaterThan(0);
    expect(details.timeToRecoverMs).toBeGreaterThanOrEqual(details.timeToDetectMs!);
    expect(lab.emulator.healthyCount()).toBe(2); // replaced
  }, 40_000);

  it("drain: nothing lost while a SIGTERMed appliance drains, and it exits 0", async () => {
    const r = await pass(drain);
    expect(r.packets.cleanLost).toBe(0);
    expect(r.details.exitCode).toBe(0);
    expect(r.details.flowsOnIt).toBeGreaterThan(0);
  }, 40_000);

  it("policy change: the rotation takes effect without a restart and kept streams lose nothing", async () => {
    const r = await pass(policyChange);
    const d = r.details;
    expect(d.removedContributor.deliveredBefore).toBeGreaterThan(0);
    expect(d.removedContributor.deliveredAfter).toBe(0);
    expect(d.addedContributor.deliveredBefore).toBe(0);
    expect(d.addedContributor.deliveredAfter).toBeGreaterThan(0);
    expect(r.packets.cleanLost).toBe(0);
    expect(lab.fleet.appliances.every((a) => a.starts <= 2)).toBe(true);
  }, 40_000);

  for (const [scenario, restarts] of [
    [encoderRestart, 2],
    [sourceFailover, 3],
  ] as const) {
    it(`${scenario.name}: each restart within its bound, the attacks alongside all refused`, async () => {
      const r = await pass(scenario);
      const d = r.details;
      expect(d.restarts).toHaveLength(restarts);
      for (const restart of d.restarts) expect(restart.lost).toBeLessThanOrEqual(restart.bound);
      expect(Object.keys(d.attacks)).toEqual(["hijack", "spoof", "replay"]);
      for (const attack of Object.values(d.attacks)) {
        expect(attack.sent).toBeGreaterThan(0);
        expect(attack.delivered).toBe(0);
      }
      expect(r.packets.cleanLost).toBe(0);
    }, 40_000);
  }

  it("drill, slow appliance: a CPU-starved appliance that still answers health checks trips its stall metric", async () => {
    const r = await slowAppliance.run(lab, progress);
    if (r.verdict === "skipped") {
      expect(r.details.skipped).toMatch(/cgroup/); // only where the machine cannot cap a process's CPU
      return;
    }
    expect(r.failures).toEqual([]);
    expect(r.details.timeToDetectMs).toBeGreaterThan(0);
    expect(r.details.timeToRecoverMs).not.toBeNull();
  }, 40_000);

  it("drill, policy source down: the last good policy keeps serving and the failures are counted", async () => {
    const r = await pass(policySourceDown);
    expect(r.packets.cleanLost).toBe(0);
    expect(r.details.timeToDetectMs).toBeGreaterThan(0);
  }, 40_000);

  it("drill, burst: kernel receive drops are counted and clean traffic recovers within 2 s", async () => {
    const r = await pass(burst);
    // Dropped datagrams counted, or (a receive loop fast enough for the whole burst) every one read.
    expect(r.details.socketReceiveDrops > 0 || r.details.burstReadWhole === true).toBe(true);
    expect(r.details.timeToRecoverMs).toBeLessThanOrEqual(2000);
  }, 40_000);
});
