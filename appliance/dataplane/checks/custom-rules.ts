/**
 * The policy's custom rules, in order: `allow` ends the list, `drop` drops (`custom_rule`), `alert`
 * counts and goes on. Per flow: which rules' 5-tuple conditions hold (a bit each), worked out when the
 * flow is matched, so a packet only tests the packet-level conditions (length, RTP payload type).
 */
import { type InnerPacket, IpProtocol } from "../../wire/ip.ts";
import { RTP_PAYLOAD_TYPE_END, rtpPayloadType } from "../../wire/rtp.ts";
import { type CompiledPolicy, RuleActionCode, ruleMaskFor } from "../compiled-policy.ts";
import { RULE_BASE, reasonIndex } from "../counters.ts";
import type { SecurityEvents } from "../security-events.ts";

const CUSTOM_RULE = reasonIndex("custom_rule");

export class CustomRules {
  private mask = new Uint32Array(0);
  private readonly events: SecurityEvents;
  private readonly counters: Float64Array;

  constructor(events: SecurityEvents, counters: Float64Array) {
    this.events = events;
    this.counters = counters;
  }

  allocate(maxFlows: number): void {
    this.mask = new Uint32Array(maxFlows);
  }

  /** Works out which rules can apply to the flow (on opening, and whenever it is matched anew). */
  match(id: number, policy: CompiledPolicy, packet: InnerPacket): void {
    this.mask[id] = ruleMaskFor(policy, packet);
  }

  check(policy: CompiledPolicy, buf: Buffer, packet: InnerPacket, id: number): number {
    const mask = this.mask[id];
    if (mask === 0) return 0;
    const rules = policy.rules;
    for (let i = 0; i < rules.length; i++) {
      if ((mask & (1 << i)) === 0) continue;
      const rule = rules[i];
      if (packet.length < rule.minLength || packet.length > rule.maxLength) continue;
      if (rule.payloadTypes !== null) {
        if (packet.protocol !== IpProtocol.udp || packet.payloadLength < RTP_PAYLOAD_TYPE_END) continue;
        if (!rule.payloadTypes[rtpPayloadType(buf, packet.payloadOffset)]) continue;
      }
      this.counters[RULE_BASE + i]++;
      if (rule.action === RuleActionCode.allow) return 0;
      if (rule.action === RuleActionCode.drop) return this.events.drop(CUSTOM_RULE, id, rule.name);
      this.events.alert(CUSTOM_RULE, id, rule.name);
    }
    return 0;
  }
}
