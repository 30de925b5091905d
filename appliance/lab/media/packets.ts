/**
 * Packets built byte by byte with the wire codec, for the appliance tests and the fuzzer: what GWLB
 * sends for a MediaConnect → MediaLive RTP/MPEG-TS flow, and the pieces to bend it the way an attacker
 * or a broken encoder does. Counters advance per call rather than with time (the lab's
 * SyntheticStream is the timed stream).
 */
import { amazonOptions, buildGeneve, EtherType, type GeneveOption } from "../../wire/geneve.ts";
import { buildIpv4Udp, buildIpv6Udp } from "../../wire/ip.ts";
import { ContinuityCounters, esPacket, patSection, pmtSection, psiPacket } from "./mpegts.ts";
import { RTP_HEADER_LENGTH, type RtpHeaderFields, writeRtpHeader } from "./rtp.ts";

export { esPacket };

export const PMT_PID = 0x1000;
export const VIDEO_PID = 0x100;
export const AUDIO_PID = 0x101;

export function patPacket(cc: number, pmtPid = PMT_PID, version = 0): Buffer {
  return psiPacket(0, cc, patSection(1, pmtPid, version));
}

/** PMT listing `pids` (the first is video and carries the PCR, the rest audio). */
export function pmtPacket(
  cc: number,
  pids: readonly number[] = [VIDEO_PID, AUDIO_PID],
  version = 0,
  pmtPid = PMT_PID,
): Buffer {
  return psiPacket(
    pmtPid,
    cc,
    pmtSection(
      1,
      pids.map((pid, i) => [i === 0 ? 0x1b : 0x0f, pid] as const),
      version,
    ),
  );
}

/** A TS program: PAT and PMT first in every N-th RTP packet, video and audio with running counters. */
export class TsProgram {
  private readonly cc = new ContinuityCounters();
  private count = 0;
  readonly esPids: readonly number[];
  readonly version: number;

  constructor(esPids: readonly number[] = [VIDEO_PID, AUDIO_PID], version = 0) {
    this.esPids = esPids;
    this.version = version;
  }

  /** Seven TS packets (one RTP payload); PSI every 10th call. */
  payload(): Buffer {
    const packets: Buffer[] = [];
    if (this.count++ % 10 === 0) {
      packets.push(patPacket(this.cc.next(0)), pmtPacket(this.cc.next(PMT_PID), this.esPids, this.version));
    }
    while (packets.length < 7) {
      const pid = packets.length % 3 === 2 && this.esPids.length > 1 ? this.esPids[1] : this.esPids[0];
      packets.push(esPacket(pid, this.cc.next(pid)));
    }
    return Buffer.concat(packets);
  }
}

type RtpFields = Omit<RtpHeaderFields, "marker">;

export function rtpPacket(fields: RtpFields, payload: Buffer): Buffer {
  const header = Buffer.alloc(RTP_HEADER_LENGTH);
  writeRtpHeader(header, fields);
  return Buffer.concat([header, payload]);
}

export interface FlowAddress {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  ttl?: number;
}

export const DEFAULT_FLOW: FlowAddress = {
  src: "10.0.1.10",
  dst: "10.0.11.20",
  srcPort: 40000,
  dstPort: 5000,
};

export function gwlbOptions(flowCookie = 0x0badf00d): GeneveOption[] {
  return amazonOptions({ endpointId: 0x0e1234567890abcdn, attachmentId: 0x0a0000000000beefn, flowCookie });
}

/** The GENEVE datagram GWLB sends for this inner UDP payload, and how long its inner packet is. */
export function gwlbDatagram(
  flow: FlowAddress,
  payload: Buffer,
  options: GeneveOption[],
): { datagram: Buffer; innerLength: number } {
  const v6 = flow.src.includes(":");
  const address = { src: flow.src, dst: flow.dst, srcPort: flow.srcPort, dstPort: flow.dstPort };
  const inner = (v6 ? buildIpv6Udp : buildIpv4Udp)({ ...address, ttl: flow.ttl, payload });
  return {
    datagram: buildGeneve({ protocolType: v6 ? EtherType.ipv6 : EtherType.ipv4, options, inner }),
    innerLength: inner.length,
  };
}

/** The GENEVE datagram GWLB sends for this inner UDP payload. */
export function geneveUdp(
  flow: FlowAddress,
  payload: Buffer,
  options: GeneveOption[] = gwlbOptions(),
): Buffer {
  return gwlbDatagram(flow, payload, options).datagram;
}

/** A clean RTP/MPEG-TS stream on one flow: each call returns the next GENEVE datagram. */
export class CleanStream {
  sequence: number;
  timestamp: number;
  readonly ssrc: number;
  readonly flow: FlowAddress;
  readonly program: TsProgram;

  constructor(
    flow: FlowAddress = DEFAULT_FLOW,
    ssrc = 0x11223344,
    sequence = 1000,
    program: TsProgram = new TsProgram(),
  ) {
    this.flow = flow;
    this.ssrc = ssrc;
    this.sequence = sequence;
    this.timestamp = 90_000;
    this.program = program;
  }

  rtp(): Buffer {
    const packet = rtpPacket(
      { sequence: this.sequence, timestamp: this.timestamp, ssrc: this.ssrc },
      this.program.payload(),
    );
    this.sequence = (this.sequence + 1) & 0xffff;
    this.timestamp = (this.timestamp + 900) >>> 0;
    return packet;
  }

  next(): Buffer {
    return geneveUdp(this.flow, this.rtp());
  }
}

/** Where the inner packet starts in a datagram from `geneveUdp` with the three GWLB options. */
export const INNER_OFFSET = 8 + (4 + 8) + (4 + 8) + (4 + 4);
