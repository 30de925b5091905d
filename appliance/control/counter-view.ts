/**
 * The control thread's reading of the receive loops' shared counters (dataplane/counters.ts): sums
 * over workers, per-worker values and the slot groups (drops, alerts, histogram) that /metrics and the
 * EMF lines both report.
 */
import { DROP_REASONS } from "../../contracts/appliance-metrics.ts";
import {
  ALERT_BASE,
  Counter,
  DROP_BASE,
  HISTOGRAM_BASE,
  PROCESSING_BUCKETS,
  RULE_BASE,
  SLOTS_PER_WORKER,
} from "../dataplane/counters.ts";

export class CounterView {
  readonly workers: number;
  private readonly view: Float64Array;

  constructor(counters: SharedArrayBuffer | Float64Array, workers: number) {
    this.view = counters instanceof Float64Array ? counters : new Float64Array(counters);
    this.workers = workers;
  }

  /** One slot of one worker. */
  of(worker: number, slot: number): number {
    return this.view[worker * SLOTS_PER_WORKER + slot];
  }

  /** Sum of one slot over every worker. */
  total(slot: number): number {
    let sum = 0;
    for (let w = 0; w < this.workers; w++) sum += this.of(w, slot);
    return sum;
  }

  /** Packets dropped for drop reason `index` (in DROP_REASONS). */
  drops(index: number): number {
    return this.total(DROP_BASE + index);
  }

  /** Alerts counted for drop reason `index` (in DROP_REASONS). */
  alerts(index: number): number {
    return this.total(ALERT_BASE + index);
  }

  /** Packets matched by custom rule `index`. */
  rule(index: number): number {
    return this.total(RULE_BASE + index);
  }

  /** Drops and alerts over every reason. */
  allDropsAndAlerts(): { dropped: number; alerts: number } {
    let dropped = 0;
    let alerts = 0;
    for (let i = 0; i < DROP_REASONS.length; i++) {
      dropped += this.drops(i);
      alerts += this.alerts(i);
    }
    return { dropped, alerts };
  }

  /** Packets per processing-time bucket (PROCESSING_BUCKETS, then +Inf), summed over workers. */
  buckets(): number[] {
    const buckets: number[] = [];
    for (let b = 0; b <= PROCESSING_BUCKETS.length; b++) buckets.push(this.total(HISTOGRAM_BASE + b));
    return buckets;
  }

  /** Receive loops on I/O backend `backend` (IoBackendCode) and, if given, sender `sender` (SenderCode). */
  loops(backend: number, sender?: number): number {
    let loops = 0;
    for (let w = 0; w < this.workers; w++)
      if (
        this.of(w, Counter.ioBackend) === backend &&
        (sender === undefined || this.of(w, Counter.sender) === sender)
      )
        loops++;
    return loops;
  }
}
