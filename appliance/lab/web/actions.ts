/**
 * What the dashboard's buttons do to the running lab: kill an appliance (SIGKILL, then the ASG's
 * replacement once the emulator has failed it over), drain one (deregister + SIGTERM, replaced once
 * it has exited), a short attack mix, and a whitelist rotation. One fleet action at a time, and only
 * on a fleet whose every target is healthy, so a button never takes the last appliance away. An
 * action during a scenario can break that scenario's expectations; the timeline shows which came first.
 */
import { ATTACKER_SOURCE, streamSource } from "../addressing.ts";
import type { Flow } from "../gwlb/emulator.ts";
import type { Lab } from "../lab.ts";
import type { Pipeline } from "../pipeline/pipeline.ts";
import { attackFlow, LAB_RATE_CEILING_PPS } from "../scenarios/attacks.ts";
import { diffDrops } from "../scenarios/scenario.ts";
import { attackSource, type Source, wellFormed } from "../sources.ts";
import type { ActionAnswer } from "./protocol.ts";

const ATTACK_SECONDS = 5;
const HIJACK_SSRC = 0x0badf00d;

export class OperatorActions {
  private readonly lab: Lab;
  private readonly pipeline: Pipeline | null;
  private fleetBusy: string | null = null;
  private attacking = false;

  constructor(lab: Lab, pipeline: Pipeline | null) {
    this.lab = lab;
    this.pipeline = pipeline;
  }

  private fleetRefusal(number: number): string | null {
    const targets = this.lab.emulator.targets;
    if (!Number.isInteger(number) || number < 1 || number > targets.length)
      return `no appliance ${number}: the lab runs 1 to ${targets.length}`;
    if (this.fleetBusy) return `wait: ${this.fleetBusy}`;
    const unwell = targets.filter((t) => t.state !== "healthy");
    if (unwell.length > 0)
      return `wait: appliance ${unwell.map((t) => t.index + 1).join(", ")} is ${unwell[0].state}; one appliance out at a time`;
    return null;
  }

  kill(number: number): ActionAnswer {
    const target = this.lab.emulator.targets[number - 1];
    return this.outAndBack(
      number,
      `appliance ${number} was killed and is being replaced`,
      `operator: killed appliance ${number} (SIGKILL) carrying ${target?.flows ?? 0} flow(s)`,
      () => this.lab.fleet.kill(number - 1),
      async () => {
        await this.lab.waitFor(() => target.state === "unhealthy", `appliance ${number} unhealthy`, 15_000);
        await this.lab.sleep(1000);
      },
    );
  }

  drain(number: number): ActionAnswer {
    let exited: Promise<number | null> = Promise.resolve(null);
    return this.outAndBack(
      number,
      `appliance ${number} is draining`,
      `operator: appliance ${number} deregistered and sent SIGTERM (drain)`,
      () => {
        this.lab.emulator.deregister(number - 1);
        exited = this.lab.fleet.terminate(number - 1);
      },
      async () => this.lab.event(`operator: appliance ${number} drained, exit ${await exited}`),
    );
  }

  /** Takes appliance `number` out now, then (in the background) waits for `gone` and replaces it. */
  private outAndBack(
    number: number,
    busy: string,
    message: string,
    takeOut: () => void,
    gone: () => Promise<void>,
  ): ActionAnswer {
    const refusal = this.fleetRefusal(number);
    if (refusal) return { ok: false, message: refusal };
    const lab = this.lab;
    this.fleetBusy = busy;
    takeOut();
    lab.event(message);
    void (async () => {
      try {
        await gone();
        await lab.replace(lab.fleet.appliances[number - 1]);
        lab.event(`operator: appliance ${number} replaced`);
      } catch (error) {
        lab.event(`operator: replacing appliance ${number} failed: ${(error as Error).message}`);
      } finally {
        this.fleetBusy = null;
      }
    })();
    return { ok: true, message };
  }

  /**
   * Five seconds of: an unlisted source, an SSRC hijack riding the first contributor's live output
   * (or a synthetic flow when the pipeline is off), and a flood at four times the per-flow ceiling.
   */
  async attack(): Promise<ActionAnswer> {
    if (this.attacking) return { ok: false, message: "an attack is already running" };
    this.attacking = true;
    const lab = this.lab;
    const now = lab.now();
    const valid = (ssrc: number) => wellFormed(ssrc, () => lab.now(), 2_000_000);
    const flow = (label: string, src: string, dstPort: number) => attackFlow(lab, label, src, dstPort);
    const live = this.pipeline?.mediaConnect.liveSession(this.pipeline.contributors[0].spec);
    const hijacked: Flow = live?.source.flow ?? (await flow("operator-hijack", streamSource(94), 5004));
    const sources: Source[] = [
      attackSource(await flow("operator-unlisted", ATTACKER_SOURCE, 5000), 100, now, valid(0x6b)),
      attackSource(hijacked, 50, now, valid(HIJACK_SSRC)),
      attackSource(
        await flow("operator-flood", streamSource(95), 5005),
        LAB_RATE_CEILING_PPS * 4,
        now,
        valid(0x6c),
      ),
    ];
    const delivered = new Map<Flow, number>(sources.map((s) => [s.flow, 0]));
    const count = (flow: Flow, payload: Buffer) => {
      const n = delivered.get(flow);
      if (n === undefined) return;
      // The hijacked flow also carries the contributor's own packets: count only the hijacker's.
      if (flow === hijacked && (payload.length < 12 || payload.readUInt32BE(8) !== HIJACK_SSRC)) return;
      delivered.set(flow, n + 1);
    };
    const before = await lab.dropsByReason();
    lab.deliveryListeners.add(count);
    for (const source of sources) lab.addSource(source);
    const message = `operator: attack started (unlisted source, SSRC hijack on ${hijacked.label}, flood at ${LAB_RATE_CEILING_PPS * 4} pkt/s) for ${ATTACK_SECONDS} s`;
    lab.event(message);
    void (async () => {
      await lab.sleep(ATTACK_SECONDS * 1000);
      lab.removeSources(sources);
      await lab.sleep(300);
      lab.deliveryListeners.delete(count);
      const after = await lab.dropsByReason();
      const dropped = Object.entries(diffDrops(before, after))
        .map(([reason, n]) => `${reason} ${n}`)
        .join(", ");
      const sent = sources.reduce((n, s) => n + s.sent, 0);
      const [unlisted, hijack, flood] = sources.map((s) => delivered.get(s.flow) ?? 0);
      lab.event(
        `operator: attack over, ${sent} packets sent; delivered: unlisted ${unlisted}, hijack ${hijack}, flood ${flood} (under its ceiling, by design); dropped ${dropped || "nothing"}`,
      );
      this.attacking = false;
    })();
    return { ok: true, message };
  }

  rotate(): ActionAnswer {
    if (!this.pipeline)
      return { ok: false, message: "the contribution pipeline is not running (--no-pipeline)" };
    const answer = this.pipeline.rotate();
    return { ok: answer.ok, message: answer.ok ? `operator: ${answer.message}` : answer.message };
  }
}
