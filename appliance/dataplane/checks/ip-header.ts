/** The inner IP header against the flow's profile: TTL / hop-limit floor and IP options. No per-flow state. */
import type { InnerPacket } from "../../wire/ip.ts";
import type { CompiledProfile } from "../compiled-policy.ts";
import { reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const TTL_LOW = reasonIndex("ip_ttl_low");
const OPTIONS = reasonIndex("ip_options");

export class IpHeaderCheck {
  private readonly events: SecurityEvents;

  constructor(events: SecurityEvents) {
    this.events = events;
  }

  check(packet: InnerPacket, profile: CompiledProfile, id: number): number {
    if (packet.ttl < profile.minTtl) return this.events.drop(TTL_LOW, id, null);
    if (packet.hasOptions && !profile.allowOptions) return this.events.drop(OPTIONS, id, null);
    return 0;
  }
}
