/**
 * An Inspector under test with the shipped default policy, a clock the test moves, and the counters
 * and security events it produced, read by reason name.
 */
import { compilePolicy } from "../../appliance/dataplane/compiled-policy.ts";
import { ALERT_BASE, DROP_BASE, SLOTS_PER_WORKER } from "../../appliance/dataplane/counters.ts";
import { Inspector, type SecurityEvent } from "../../appliance/dataplane/inspector.ts";
import { DEFAULT_POLICY_TEXT } from "../../appliance/lab/appliances/policy-file.ts";
import { DROP_REASONS, type DropReason } from "../../contracts/appliance-metrics.ts";
import { type PolicyInput, parsePolicy, validatePolicy } from "../../contracts/policy.ts";

export type Verdict = DropReason | "forward";

export function verdictName(v: number): Verdict {
  return v === 0 ? "forward" : DROP_REASONS[v - 1];
}

export class InspectorHarness {
  readonly counters = new Float64Array(SLOTS_PER_WORKER);
  readonly events: SecurityEvent[] = [];
  readonly inspector = new Inspector(this.counters, (e) => this.events.push(e));
  /** The inspector's clock, in ms; tests move it. */
  now = 1_000_000;
  private generation = 0;

  constructor(policy: PolicyInput | string = DEFAULT_POLICY_TEXT) {
    this.load(policy);
  }

  load(policy: PolicyInput | string): void {
    const parsed = typeof policy === "string" ? parsePolicy(policy) : validatePolicy(policy);
    this.inspector.setPolicy(compilePolicy(parsed, ++this.generation));
  }

  inspect(datagram: Buffer): Verdict {
    return verdictName(this.inspector.inspect(datagram, datagram.length, this.now));
  }

  dropped(reason: DropReason): number {
    return this.counters[DROP_BASE + DROP_REASONS.indexOf(reason)];
  }

  alerts(reason: DropReason): number {
    return this.counters[ALERT_BASE + DROP_REASONS.indexOf(reason)];
  }

  /** Inspects `count` datagrams from `next`, `stepMs` apart; returns the verdicts. */
  play(next: () => Buffer, count: number, stepMs = 1.1): Verdict[] {
    const out: Verdict[] = [];
    for (let i = 0; i < count; i++) {
      out.push(this.inspect(next()));
      this.now += stepMs;
    }
    return out;
  }
}
