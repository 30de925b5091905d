/**
 * Which policy flow entry a flow runs under: default deny for a new 5-tuple (`flow_not_allowed`), the
 * per-source new-flow rate (`new_flow_rate`), and re-matching live flows when the policy changes (each
 * on its next packet, so a whitelist rotation needs no restart). Fragments are matched here too: they
 * never open a flow.
 */

import type { InnerPacket } from "../../wire/ip.ts";
import { type CompiledLimits, type CompiledPolicy, classify } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import { NO_FLOW, type SecurityEvents } from "../security-events.ts";

const NOT_ALLOWED = reasonIndex("flow_not_allowed");
const NEW_FLOW_RATE = reasonIndex("new_flow_rate");
const FRAGMENT = reasonIndex("ip_fragment");

/** Sources whose new-flow buckets are kept at once; past it, idle buckets are forgotten first. */
const MAX_SOURCES_TRACKED = 65_536;
/** A bucket untouched this long is full again, so forgetting it changes nothing. */
const SOURCE_IDLE_MS = 10_000;
/** When the bucket map is full, buckets idle this long go first. */
const SOURCE_IDLE_WHEN_FULL_MS = 1000;

interface SourceBucket {
  tokens: number;
  last: number;
}

export class FlowAdmission {
  /** Per flow: the policy generation it was matched under, and the index of its flow entry. */
  generation = new Uint32Array(0);
  entry = new Int16Array(0);
  private readonly sources = new Map<number | string, SourceBucket>();
  private pending: SourceBucket | null = null;
  private readonly events: SecurityEvents;

  constructor(events: SecurityEvents) {
    this.events = events;
  }

  allocate(maxFlows: number): void {
    this.generation = new Uint32Array(maxFlows);
    this.entry = new Int16Array(maxFlows);
  }

  /**
   * May this packet open a new flow? Returns its flow entry (>= 0), or -(verdict) with the drop counted.
   * Nothing is spent until `open`.
   */
  check(policy: CompiledPolicy, packet: InnerPacket, now: number): number {
    const entry = classify(policy, packet);
    if (entry < 0) return -this.events.drop(NOT_ALLOWED, NO_FLOW, null);
    const bucket = this.bucketOf(policy.limits, packet, now);
    if (bucket.tokens < 1) return -this.events.drop(NEW_FLOW_RATE, NO_FLOW, null);
    this.pending = bucket;
    return entry;
  }

  /** The flow got its id: it runs under `entry` and its source spends a new-flow token. */
  open(id: number, policy: CompiledPolicy, entry: number): void {
    if (this.pending) this.pending.tokens -= 1;
    this.pending = null;
    this.generation[id] = policy.generation;
    this.entry[id] = entry;
  }

  /**
   * The flow entry of a live flow under the current policy, re-matched when the policy changed since it
   * was matched; -1 when the policy no longer allows it (the caller removes it and drops the packet).
   */
  current(id: number, policy: CompiledPolicy, packet: InnerPacket): number {
    if (this.generation[id] === policy.generation) return this.entry[id];
    const entry = classify(policy, packet);
    if (entry < 0) return -1;
    this.entry[id] = entry;
    this.generation[id] = policy.generation;
    return entry;
  }

  /** Counts the drop of a live flow the policy no longer allows. */
  refuseLive(): number {
    return this.events.drop(NOT_ALLOWED, NO_FLOW, "no longer allowed by the policy");
  }

  /**
   * A fragment: 0 when its flow entry allows fragments, else the drop verdict. A later fragment has no
   * ports, so it is matched without them and may only follow an entry that allows fragments at all.
   */
  fragment(policy: CompiledPolicy, packet: InnerPacket): number {
    const entry = classify(policy, packet, packet.isLaterFragment);
    if (entry < 0) return this.events.drop(NOT_ALLOWED, NO_FLOW, null);
    if (!policy.profiles[policy.flows[entry].profile].allowFragments)
      return this.events.drop(FRAGMENT, NO_FLOW, null);
    return 0;
  }

  /** Forgets buckets that have been idle long enough to be full again. */
  sweep(now: number): void {
    if (this.sources.size <= MAX_SOURCES_TRACKED / 2) return;
    for (const [key, bucket] of this.sources) {
      if (now - bucket.last > SOURCE_IDLE_MS) this.sources.delete(key);
    }
  }

  private bucketOf(limits: CompiledLimits, packet: InnerPacket, now: number): SourceBucket {
    const key =
      packet.family === 4
        ? packet.src[3]
        : `${packet.src[0]}:${packet.src[1]}:${packet.src[2]}:${packet.src[3]}`;
    let bucket = this.sources.get(key);
    if (bucket === undefined) {
      if (this.sources.size >= MAX_SOURCES_TRACKED) this.forgetIdleSources(now);
      bucket = { tokens: limits.newFlowBurst, last: now };
      this.sources.set(key, bucket);
    } else {
      bucket.tokens = Math.min(
        limits.newFlowBurst,
        bucket.tokens + (now - bucket.last) * limits.newFlowsPerMs,
      );
      bucket.last = now;
    }
    return bucket;
  }

  private forgetIdleSources(now: number): void {
    for (const [key, bucket] of this.sources) {
      if (now - bucket.last > SOURCE_IDLE_WHEN_FULL_MS) this.sources.delete(key);
    }
    if (this.sources.size >= MAX_SOURCES_TRACKED) this.sources.clear();
  }
}
