/**
 * The load generator's packet templates: one GWLB-shaped GENEVE datagram per flow, carrying RTP/MPEG-TS
 * that passes every check of the default profile, made once at start-up by the same builders the
 * appliance's tests use (appliance/wire, appliance/lab/media). The C generator (bench/generator.c)
 * rewrites only what changes from packet to packet, at the offsets found here, so no header layout
 * is typed twice.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_PIDS, patSection, pmtSection, psiPacket, TsMuxer } from "../appliance/lab/media/mpegts.ts";
import { RTP_HEADER_LENGTH, RtpPacketizer } from "../appliance/lab/media/rtp.ts";
import { amazonOptions, buildGeneve, EtherType } from "../appliance/wire/geneve.ts";
import { buildIpv4Udp, UDP_LAYOUT } from "../appliance/wire/ip.ts";
import { TS_LAYOUT, TS_PACKET_SIZE, TS_SYNC_BYTE } from "../appliance/wire/mpegts.ts";
import { RTP_LAYOUT } from "../appliance/wire/rtp.ts";

// The fields the generator advances, within their headers, as wire/ names them: the RTP sequence
// number and timestamp, the TS continuity_counter (the low nibble of the control byte), and the UDP
// checksum (zeroed: the checksum is optional over IPv4, and the generator changes the payload).
const RTP_SEQUENCE = RTP_LAYOUT.sequence;
const RTP_TIMESTAMP = RTP_LAYOUT.timestamp;
const TS_CONTINUITY = TS_LAYOUT.control;
const UDP_CHECKSUM_BEFORE_PAYLOAD = UDP_LAYOUT.headerLength - UDP_LAYOUT.checksum;

/** RTP timestamp advance per packet (90 kHz clock). */
export const TIMESTAMP_STEP = 900;
/** Every this many datagrams of a flow, its first two TS packets are PAT and PMT. */
export const PSI_EVERY = 100;
/** Bytes at the end of the last TS packet that carry the send time, flow and packet number. */
const STAMP_BYTES = 16;

/** Where the generator writes, in every datagram of a template set. */
export interface TemplateLayout {
  size: number;
  sequence: number;
  timestamp: number;
  ts: number;
  tsPackets: number;
  continuity: number;
  stamp: number;
}

/** The flow's addresses: consecutive source ports spread over the two MediaConnect subnets. */
function flowPacket(flow: number, tsPackets: number, basePort: number) {
  const subnet = flow % 2 === 0 ? 1 : 2;
  const payload = Buffer.alloc(RTP_HEADER_LENGTH + tsPackets * TS_PACKET_SIZE, 0x55);
  new RtpPacketizer({ ssrc: 0x5100_0000 + flow, sequence: (flow * 7919) & 0xffff }).writeHeader(payload, 0);
  // Video only (the generator puts PAT and PMT in place of the first two when they are due).
  new TsMuxer({ audioEvery: 2 ** 31 }).nextPackets(tsPackets, 0, false, payload.subarray(RTP_HEADER_LENGTH));
  const inner = buildIpv4Udp({
    src: `10.0.${subnet}.${10 + ((flow >>> 1) % 240)}`,
    dst: `10.0.1${subnet}.20`,
    srcPort: basePort + (flow % 40_000),
    dstPort: 5000 + (flow % 100),
    payload,
  });
  // Checksum "none": the generator rewrites the payload of every packet.
  inner.writeUInt16BE(0, inner.length - payload.length - UDP_CHECKSUM_BEFORE_PAYLOAD);
  const options = amazonOptions({
    endpointId: 0x0e00n + BigInt(flow),
    attachmentId: 0xa0n,
    flowCookie: flow,
  });
  const datagram = buildGeneve({ protocolType: EtherType.ipv4, options, inner });
  return { datagram, rtp: datagram.length - payload.length };
}

export interface TemplateFiles {
  templates: string;
  psi: string;
  flows: number;
  layout: TemplateLayout;
}

/** Writes `flows` templates of `tsPackets` TS packets each, and the PAT/PMT pair, into `dir`. */
export function writeTemplates(
  dir: string,
  flows: number,
  tsPackets: number,
  basePort = 20_000,
): TemplateFiles {
  const first = flowPacket(0, tsPackets, basePort);
  const size = first.datagram.length;
  const all = Buffer.alloc(flows * size);
  first.datagram.copy(all, 0);
  for (let flow = 1; flow < flows; flow++)
    flowPacket(flow, tsPackets, basePort).datagram.copy(all, flow * size);
  const ts = first.rtp + RTP_HEADER_LENGTH;
  const layout: TemplateLayout = {
    size,
    sequence: first.rtp + RTP_SEQUENCE,
    timestamp: first.rtp + RTP_TIMESTAMP,
    ts,
    tsPackets,
    continuity: TS_CONTINUITY,
    // At the end of the last TS packet: in a PSI packet (a 1-TS datagram) that is stuffing after the section.
    stamp: size - STAMP_BYTES,
  };
  if (all[ts] !== TS_SYNC_BYTE) throw new Error("template: the first TS packet is not where it was computed");
  const name = `${flows}x${tsPackets}-${basePort}`; // a set per 5-tuple range: sets never overwrite each other
  const templates = path.join(dir, `templates-${name}.bin`);
  const psi = path.join(dir, "psi.bin");
  writeFileSync(templates, all);
  const pmt = psiPacket(DEFAULT_PIDS.pmt, 0, pmtSection(1, [[0x1b, DEFAULT_PIDS.video]]));
  writeFileSync(psi, Buffer.concat([psiPacket(0, 0, patSection(1, DEFAULT_PIDS.pmt)), pmt]));
  return { templates, psi, flows, layout };
}

/** Datagram size for `tsPackets` TS packets per RTP packet. */
export const datagramBytes = (tsPackets: number) => flowPacket(0, tsPackets, 20_000).datagram.length;
