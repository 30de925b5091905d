/**
 * Benchmark traffic: GWLB-shaped GENEVE datagrams carrying RTP/MPEG-TS that passes every check of the
 * default profile, generated at a steady rate without allocating per packet. Each datagram carries its
 * send time (CLOCK_MONOTONIC, shared by every process on the host) inside a TS payload, so a separate
 * receiver process can measure one-way latency.
 */

import { patSection, pmtSection, psiPacket } from "../appliance/lab/media/mpegts.ts";
import { amazonOptions, buildGeneve, EtherType } from "../appliance/wire/geneve.ts";
import { buildIpv4Udp } from "../appliance/wire/ip.ts";
import { TS_PACKET_SIZE } from "../appliance/wire/mpegts.ts";

export const VIDEO_PID = 0x100;
const PMT_PID = 0x1000;
const GENEVE_AND_OPTIONS = 8 + 32;
const IP_UDP = 28;
const RTP = 12;
const PSI_EVERY = 100;
// A buffer must not be rewritten while a send may still hold it: a sender batches at most 1024 sends,
// and consecutive packets of one flow are `flows` sends apart.
const MAX_BATCH = 1024;

export interface TrafficOptions {
  flows: number;
  /** Inner packet size target: the TS packets per RTP packet follow from it (7 for ~1,400-byte GENEVE). */
  tsPerPacket?: number;
  /** First source port; flows use consecutive ports and spread over the MediaConnect subnets. */
  basePort?: number;
}

const PAT = psiPacket(0, 0, patSection(1, PMT_PID));
const PMT = psiPacket(PMT_PID, 0, pmtSection(1, [[0x1b, VIDEO_PID]]));

/** Datagram layout offsets, the same for every flow. */
export function layout(tsPerPacket: number) {
  const rtp = GENEVE_AND_OPTIONS + IP_UDP;
  const ts = rtp + RTP;
  return {
    rtp,
    ts,
    stamp: ts + (tsPerPacket - 1) * TS_PACKET_SIZE + 8,
    size: ts + tsPerPacket * TS_PACKET_SIZE,
  };
}

export class Traffic {
  readonly flows: number;
  readonly tsPerPacket: number;
  readonly size: number;
  private readonly rings: Buffer[][];
  private readonly sequence: Uint16Array;
  private readonly timestamp: Uint32Array;
  private readonly count: Uint32Array;
  private readonly cc: Uint8Array; // 3 PIDs per flow: PAT, PMT, video
  private readonly offsets: ReturnType<typeof layout>;
  private readonly ring: number;
  private next = 0;

  constructor(options: TrafficOptions) {
    this.flows = options.flows;
    this.tsPerPacket = options.tsPerPacket ?? 7;
    this.offsets = layout(this.tsPerPacket);
    this.size = this.offsets.size;
    this.sequence = new Uint16Array(this.flows);
    this.timestamp = new Uint32Array(this.flows);
    this.count = new Uint32Array(this.flows);
    this.cc = new Uint8Array(this.flows * 3);
    const basePort = options.basePort ?? 20_000;
    this.ring = Math.ceil(MAX_BATCH / this.flows) + 1;
    this.rings = [];
    for (let flow = 0; flow < this.flows; flow++) {
      const subnet = flow % 2 === 0 ? 1 : 2;
      const host = 10 + ((flow >>> 1) % 240);
      const payload = Buffer.alloc(RTP + this.tsPerPacket * TS_PACKET_SIZE, 0x55);
      payload[0] = 0x80;
      payload[1] = 33;
      payload.writeUInt32BE((0x5100_0000 + flow) >>> 0, 8);
      const inner = buildIpv4Udp({
        src: `10.0.${subnet}.${host}`,
        dst: `10.0.1${subnet}.20`,
        srcPort: basePort + (flow % 40_000),
        dstPort: 5000 + (flow % 100),
        payload,
      });
      inner.writeUInt16BE(0, 26); // UDP checksum "none": the payload is rewritten for every packet
      const options = amazonOptions({
        endpointId: 0x0e00n + BigInt(flow),
        attachmentId: 0xa0n,
        flowCookie: flow,
      });
      const template = buildGeneve({ protocolType: EtherType.ipv4, options, inner });
      this.rings.push(Array.from({ length: this.ring }, () => Buffer.from(template)));
      this.sequence[flow] = (flow * 7919) & 0xffff;
    }
  }

  /** The next datagram, round-robin over the flows; valid for the next MAX_BATCH calls. */
  nextPacket(nowNs: number): Buffer {
    const flow = this.next;
    this.next = flow + 1 === this.flows ? 0 : flow + 1;
    const n = this.count[flow]++;
    const buf = this.rings[flow][n % this.ring];
    const o = this.offsets;
    const sequence = this.sequence[flow]++;
    buf[o.rtp + 2] = sequence >>> 8;
    buf[o.rtp + 3] = sequence & 0xff;
    buf.writeUInt32BE(this.timestamp[flow], o.rtp + 4);
    this.timestamp[flow] = (this.timestamp[flow] + 900) >>> 0;
    const ccBase = flow * 3;
    for (let i = 0; i < this.tsPerPacket; i++) {
      const at = o.ts + i * TS_PACKET_SIZE;
      let slot = 2;
      if (n % PSI_EVERY === 0 && i < 2) {
        (i === 0 ? PAT : PMT).copy(buf, at);
        slot = i;
      } else {
        buf[at] = 0x47;
        buf[at + 1] = VIDEO_PID >>> 8;
        buf[at + 2] = VIDEO_PID & 0xff;
      }
      const cc = this.cc[ccBase + slot];
      buf[at + 3] = 0x10 | cc;
      this.cc[ccBase + slot] = (cc + 1) & 0x0f;
    }
    buf.writeDoubleLE(nowNs, o.stamp);
    return buf;
  }

  sentAt(buf: Buffer): number {
    return buf.readDoubleLE(this.offsets.stamp);
  }
}
