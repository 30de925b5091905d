/**
 * Per-flow ceilings: a token bucket of packets and one of bits, refilled at the profile's rates and
 * `burstSeconds` deep (`rate_packets`, `rate_bits`). Only forwarded packets spend tokens.
 */
import type { CompiledProfile } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const PACKETS = reasonIndex("rate_packets");
const BITS = reasonIndex("rate_bits");

export class RateLimiter {
  private packets = new Float64Array(0);
  private bits = new Float64Array(0);
  private readonly events: SecurityEvents;

  constructor(events: SecurityEvents) {
    this.events = events;
  }

  allocate(maxFlows: number): void {
    this.packets = new Float64Array(maxFlows);
    this.bits = new Float64Array(maxFlows);
  }

  open(id: number, profile: CompiledProfile): void {
    this.packets[id] = profile.burstPackets;
    this.bits[id] = profile.burstBits;
  }

  /** Refills the buckets for the `gap` ms since the flow's last packet; drops when one cannot pay. */
  check(id: number, profile: CompiledProfile, gap: number, bytes: number): number {
    if (!profile.rate) return 0;
    const packets = Math.min(profile.burstPackets, this.packets[id] + gap * profile.packetsPerMs);
    const bits = Math.min(profile.burstBits, this.bits[id] + gap * profile.bitsPerMs);
    this.packets[id] = packets;
    this.bits[id] = bits;
    if (packets < 1) return this.events.drop(PACKETS, id, null);
    if (bits < bytes * 8) return this.events.drop(BITS, id, null);
    return 0;
  }

  /** The packet is forwarded: it spends its tokens. */
  commit(id: number, profile: CompiledProfile, bytes: number): void {
    if (!profile.rate) return;
    this.packets[id] -= 1;
    this.bits[id] -= bytes * 8;
  }
}
