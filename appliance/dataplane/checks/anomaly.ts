/**
 * A per-flow statistical baseline: bytes per window as an exponentially weighted mean and variance, and
 * the usual gap between packets. A window far from the baseline (`zScore` deviations and `minRatio`
 * times the mean) or a silence far longer than the usual gap is an anomaly, alerted or dropped per the
 * profile. Anomalous windows stay out of the baseline, or a sustained attack would become normal.
 */
import { Action, type CompiledProfile } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const ANOMALY = reasonIndex("anomaly");

/** Weight of a new window in the bytes-per-window baseline. */
const WINDOW_WEIGHT = 0.1;
/** Weight of a new gap in the inter-arrival baseline. */
const GAP_WEIGHT = 0.02;
/** Gaps longer than this are silences, not inter-arrival samples. */
const MAX_GAP_SAMPLE_MS = 1000;
/** A silence this many times the usual inter-arrival gap (and at least MIN_SILENCE_MS) is an anomaly. */
const SILENCE_FACTOR = 50;
const MIN_SILENCE_MS = 250;
const MAX_WINDOWS_COUNTED = 0xffff;

export class AnomalyDetector {
  private windowStart = new Float64Array(0);
  private windowBytes = new Float64Array(0);
  private windowsSeen = new Uint16Array(0);
  private meanBytes = new Float64Array(0);
  private varBytes = new Float64Array(0);
  private meanGap = new Float64Array(0);
  /** 1 while the last closed window was anomalous (with action drop, the flow stays dropped). */
  private anomalous = new Uint8Array(0);
  private readonly events: SecurityEvents;

  constructor(events: SecurityEvents) {
    this.events = events;
  }

  allocate(maxFlows: number): void {
    this.windowStart = new Float64Array(maxFlows);
    this.windowBytes = new Float64Array(maxFlows);
    this.windowsSeen = new Uint16Array(maxFlows);
    this.meanBytes = new Float64Array(maxFlows);
    this.varBytes = new Float64Array(maxFlows);
    this.meanGap = new Float64Array(maxFlows);
    this.anomalous = new Uint8Array(maxFlows);
  }

  open(id: number, now: number): void {
    this.windowStart[id] = now;
    this.windowBytes[id] = 0;
    this.windowsSeen[id] = 0;
    this.meanBytes[id] = 0;
    this.varBytes[id] = 0;
    this.meanGap[id] = 0;
    this.anomalous[id] = 0;
  }

  /** Learns the gap, closes the window when it is over, and judges both. */
  check(id: number, profile: CompiledProfile, gap: number, now: number): number {
    if (profile.anomaly === Action.off) return 0;
    const warm = this.windowsSeen[id] >= profile.anomalyWarmup;
    let finding: string | null = null;
    if (warm && gap > MIN_SILENCE_MS && gap > SILENCE_FACTOR * this.meanGap[id]) {
      finding = `silence of ${Math.round(gap)} ms`;
    }
    if (gap < MAX_GAP_SAMPLE_MS) this.meanGap[id] += GAP_WEIGHT * (gap - this.meanGap[id]);
    const elapsed = now - this.windowStart[id];
    if (elapsed >= profile.anomalyWindowMs) {
      const surge = this.closeWindow(id, profile, elapsed, warm);
      if (surge !== null) finding = surge;
      this.windowStart[id] = now;
      this.windowBytes[id] = 0;
    }
    if (profile.anomaly === Action.drop) {
      if (finding !== null || this.anomalous[id] !== 0) return this.events.drop(ANOMALY, id, finding);
    } else if (finding !== null) {
      this.events.alert(ANOMALY, id, finding);
    }
    return 0;
  }

  /** The packet is forwarded: it counts in the current window. */
  commit(id: number, profile: CompiledProfile, bytes: number): void {
    if (profile.anomaly !== Action.off) this.windowBytes[id] += bytes;
  }

  /** Folds a finished window into the baseline; returns the finding when it was anomalous. */
  private closeWindow(id: number, profile: CompiledProfile, elapsed: number, warm: boolean): string | null {
    // Normalise to a full window so a late-closing window does not look like a surge.
    const value = (this.windowBytes[id] * profile.anomalyWindowMs) / elapsed;
    const mean = this.meanBytes[id];
    const variance = this.varBytes[id];
    let finding: string | null = null;
    this.anomalous[id] = 0;
    if (warm) {
      const deviation = Math.abs(value - mean) / Math.sqrt(variance + 1);
      const ratio = value > mean ? value / (mean + 1) : mean / (value + 1);
      if (deviation > profile.anomalyZ && ratio > profile.anomalyRatio) {
        this.anomalous[id] = 1;
        const perSecond = 8000 / profile.anomalyWindowMs;
        finding = `bitrate ${Math.round(value * perSecond)} bit/s against a baseline of ${Math.round(mean * perSecond)} bit/s`;
      }
    }
    if (this.windowsSeen[id] === 0) {
      this.meanBytes[id] = value;
    } else if (this.anomalous[id] === 0) {
      const diff = value - mean;
      this.meanBytes[id] = mean + WINDOW_WEIGHT * diff;
      this.varBytes[id] = (1 - WINDOW_WEIGHT) * (variance + WINDOW_WEIGHT * diff * diff);
    }
    if (this.windowsSeen[id] < MAX_WINDOWS_COUNTED) this.windowsSeen[id]++;
    return finding;
  }
}
