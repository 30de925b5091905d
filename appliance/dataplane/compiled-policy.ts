/**
 * A validated policy turned into flat numbers the per-packet path can test without allocating:
 * CIDRs as masked words, port ranges as integer pairs, check actions as small integers.
 */
import { maskWord, parseCidr } from "../../contracts/cidr.ts";
import type { Policy, PortRange, Profile, Protocol } from "../../contracts/policy.ts";
import { type InnerPacket, IpProtocol } from "../wire/ip.ts";

export const Action = { off: 0, alert: 1, drop: 2 } as const;
export const RuleActionCode = { allow: 0, drop: 1, alert: 2 } as const;

const ACTION_CODE = { off: Action.off, alert: Action.alert, drop: Action.drop } as const;

export interface AddressMatcher {
  /** IPv4: network and mask pairs. */
  readonly v4: Uint32Array;
  /** IPv6: 8 words per CIDR (4 network, 4 mask). */
  readonly v6: Uint32Array;
}

export interface CompiledProfile {
  readonly name: string;
  readonly minTtl: number;
  readonly allowOptions: boolean;
  readonly allowFragments: boolean;
  readonly rtp: boolean;
  readonly payloadTypes: Uint8Array;
  readonly pinSsrc: boolean;
  readonly maxSeqJump: number;
  readonly reorderWindow: number;
  readonly maxTimestampJump: number;
  readonly probationPackets: number;
  readonly handoverSilenceMs: number;
  readonly mpegts: boolean;
  readonly continuity: number;
  readonly transportError: number;
  readonly unexpectedPid: number;
  readonly psiErrors: number;
  readonly rate: boolean;
  readonly packetsPerMs: number;
  readonly bitsPerMs: number;
  readonly burstPackets: number;
  readonly burstBits: number;
  readonly anomaly: number;
  readonly anomalyWindowMs: number;
  readonly anomalyWarmup: number;
  readonly anomalyZ: number;
  readonly anomalyRatio: number;
}

export interface CompiledFlow {
  readonly name: string;
  readonly src: AddressMatcher;
  readonly dst: AddressMatcher;
  /** IP protocol number, or -1 for any. */
  readonly protocol: number;
  /** Inclusive port range pairs; null = every port. */
  readonly dstPorts: Int32Array | null;
  readonly profile: number;
}

export interface CompiledRule {
  readonly name: string;
  readonly src: AddressMatcher | null;
  readonly dst: AddressMatcher | null;
  readonly protocol: number;
  readonly srcPorts: Int32Array | null;
  readonly dstPorts: Int32Array | null;
  readonly minLength: number;
  readonly maxLength: number;
  /** 128 flags, or null when the rule does not look at RTP. */
  readonly payloadTypes: Uint8Array | null;
  readonly action: number;
}

export interface CompiledLimits {
  readonly maxFlows: number;
  readonly flowIdleMs: number;
  readonly newFlowsPerMs: number;
  readonly newFlowBurst: number;
  readonly securityEventsPerSecond: number;
}

export interface CompiledPolicy {
  readonly generation: number;
  readonly profiles: readonly CompiledProfile[];
  readonly flows: readonly CompiledFlow[];
  readonly rules: readonly CompiledRule[];
  readonly limits: CompiledLimits;
}

const PROTOCOL_NUMBER: Record<Protocol, number> = {
  udp: IpProtocol.udp,
  tcp: IpProtocol.tcp,
  icmp: IpProtocol.icmp,
  icmpv6: IpProtocol.icmpv6,
  any: -1,
};

function compileAddresses(refs: readonly string[], sets: Policy["sets"]): AddressMatcher {
  const v4: number[] = [];
  const v6: number[] = [];
  const expanded = refs.flatMap((ref) => (ref.startsWith("@") ? (sets[ref.slice(1)] ?? []) : [ref]));
  for (const text of expanded) {
    const cidr = parseCidr(text);
    if (cidr.family === 4) {
      v4.push(cidr.words[3], maskWord(cidr.prefix, 0));
    } else {
      v6.push(...cidr.words);
      for (let i = 0; i < 4; i++) v6.push(maskWord(cidr.prefix, i));
    }
  }
  return { v4: Uint32Array.from(v4), v6: Uint32Array.from(v6) };
}

function compilePorts(ranges: readonly PortRange[] | undefined): Int32Array | null {
  if (!ranges) return null;
  return Int32Array.from(ranges.flatMap((r) => [r.from, r.to]));
}

function payloadTypeFlags(types: readonly number[]): Uint8Array {
  const flags = new Uint8Array(128);
  for (const t of types) flags[t] = 1;
  return flags;
}

function compileProfile(name: string, profile: Profile): CompiledProfile {
  const rate = profile.rate;
  const anomaly = profile.anomaly;
  return {
    name,
    minTtl: profile.ip.minTtl,
    allowOptions: profile.ip.allowOptions,
    allowFragments: profile.ip.allowFragments,
    rtp: profile.rtp !== undefined,
    payloadTypes: payloadTypeFlags(profile.rtp?.payloadTypes ?? []),
    pinSsrc: profile.rtp?.pinSsrc ?? false,
    maxSeqJump: profile.rtp?.maxSeqJump ?? 0,
    reorderWindow: profile.rtp?.reorderWindow ?? 0,
    maxTimestampJump: profile.rtp?.maxTimestampJump ?? 0,
    probationPackets: profile.rtp?.probationPackets ?? 2,
    handoverSilenceMs: profile.rtp?.handoverSilenceMs ?? 0,
    mpegts: profile.mpegts !== undefined,
    continuity: ACTION_CODE[profile.mpegts?.continuity ?? "off"],
    transportError: ACTION_CODE[profile.mpegts?.transportError ?? "off"],
    unexpectedPid: ACTION_CODE[profile.mpegts?.unexpectedPid ?? "off"],
    psiErrors: ACTION_CODE[profile.mpegts?.psiErrors ?? "off"],
    rate: rate !== undefined,
    packetsPerMs: rate ? rate.maxPacketsPerSecond / 1000 : 0,
    bitsPerMs: rate ? rate.maxBitsPerSecond / 1000 : 0,
    burstPackets: rate ? Math.max(1, rate.maxPacketsPerSecond * rate.burstSeconds) : 0,
    burstBits: rate ? Math.max(12_000 * 8, rate.maxBitsPerSecond * rate.burstSeconds) : 0,
    anomaly: ACTION_CODE[anomaly?.action ?? "off"],
    anomalyWindowMs: anomaly?.windowMs ?? 1000,
    anomalyWarmup: anomaly?.warmupWindows ?? 0,
    anomalyZ: anomaly?.zScore ?? 0,
    anomalyRatio: anomaly?.minRatio ?? 1,
  };
}

export function compilePolicy(policy: Policy, generation: number): CompiledPolicy {
  const profileNames = Object.keys(policy.profiles);
  const profiles = profileNames.map((name) => compileProfile(name, policy.profiles[name]));
  const flows = policy.flows.map((flow) => ({
    name: flow.name,
    src: compileAddresses(flow.src, policy.sets),
    dst: compileAddresses(flow.dst, policy.sets),
    protocol: PROTOCOL_NUMBER[flow.protocol],
    dstPorts: compilePorts(flow.dstPorts),
    profile: profileNames.indexOf(flow.profile),
  }));
  const rules = policy.rules.map((rule) => ({
    name: rule.name,
    src: rule.match.src ? compileAddresses(rule.match.src, policy.sets) : null,
    dst: rule.match.dst ? compileAddresses(rule.match.dst, policy.sets) : null,
    protocol: rule.match.protocol ? PROTOCOL_NUMBER[rule.match.protocol] : -1,
    srcPorts: compilePorts(rule.match.srcPorts),
    dstPorts: compilePorts(rule.match.dstPorts),
    minLength: rule.match.minLength ?? 0,
    maxLength: rule.match.maxLength ?? 0x7fffffff,
    payloadTypes: rule.match.rtpPayloadTypes ? payloadTypeFlags(rule.match.rtpPayloadTypes) : null,
    action: RuleActionCode[rule.action],
  }));
  const limits = policy.limits;
  return {
    generation,
    profiles,
    flows,
    rules,
    limits: {
      maxFlows: limits.maxFlows,
      flowIdleMs: limits.flowIdleSeconds * 1000,
      newFlowsPerMs: limits.newFlowsPerSecondPerSource / 1000,
      newFlowBurst: limits.newFlowBurstPerSource,
      securityEventsPerSecond: limits.securityEventsPerSecond,
    },
  };
}

export function addressMatches(matcher: AddressMatcher, family: number, words: Uint32Array): boolean {
  if (family === 4) {
    const v4 = matcher.v4;
    const address = words[3];
    for (let i = 0; i < v4.length; i += 2) {
      if ((address & v4[i + 1]) >>> 0 === v4[i]) return true;
    }
    return false;
  }
  const v6 = matcher.v6;
  for (let i = 0; i < v6.length; i += 8) {
    if (
      (words[0] & v6[i + 4]) >>> 0 === v6[i] &&
      (words[1] & v6[i + 5]) >>> 0 === v6[i + 1] &&
      (words[2] & v6[i + 6]) >>> 0 === v6[i + 2] &&
      (words[3] & v6[i + 7]) >>> 0 === v6[i + 3]
    ) {
      return true;
    }
  }
  return false;
}

export function portMatches(ranges: Int32Array | null, port: number): boolean {
  if (ranges === null) return true;
  for (let i = 0; i < ranges.length; i += 2) {
    if (port >= ranges[i] && port <= ranges[i + 1]) return true;
  }
  return false;
}

/**
 * The first flow entry that admits this packet's 5-tuple, or -1 (default deny). With `ignorePorts`
 * the ports are not compared: a later fragment has none.
 */
export function classify(policy: CompiledPolicy, packet: InnerPacket, ignorePorts = false): number {
  const flows = policy.flows;
  for (let i = 0; i < flows.length; i++) {
    const flow = flows[i];
    if (flow.protocol !== -1 && flow.protocol !== packet.protocol) continue;
    if (!ignorePorts && !portMatches(flow.dstPorts, packet.dstPort)) continue;
    if (!addressMatches(flow.src, packet.family, packet.src)) continue;
    if (!addressMatches(flow.dst, packet.family, packet.dst)) continue;
    return i;
  }
  return -1;
}

/** Bit i set = rule i's 5-tuple conditions hold for this flow; packet-level conditions are checked per packet. */
export function ruleMaskFor(policy: CompiledPolicy, packet: InnerPacket): number {
  let mask = 0;
  const rules = policy.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i];
    if (rule.protocol !== -1 && rule.protocol !== packet.protocol) continue;
    if (!portMatches(rule.srcPorts, packet.srcPort) || !portMatches(rule.dstPorts, packet.dstPort)) continue;
    if (rule.src && !addressMatches(rule.src, packet.family, packet.src)) continue;
    if (rule.dst && !addressMatches(rule.dst, packet.family, packet.dst)) continue;
    mask |= 1 << i;
  }
  return mask >>> 0;
}
