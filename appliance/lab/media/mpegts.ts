/**
 * A small MPEG-TS multiplexer for synthetic contribution streams: one program with PAT and PMT
 * (with valid CRC32) repeated every 100 ms of stream time, a video PID carrying PCR in its adaptation
 * field, an audio PID, and correct per-PID continuity counters. Enough structure for every check the
 * appliance runs; the elementary stream bytes themselves are filler.
 */
import { crc32Mpeg, TS_LAYOUT, TS_PACKET_SIZE, TS_SYNC_BYTE } from "../../wire/mpegts.ts";

export const DEFAULT_PIDS = { pmt: 0x1000, video: 0x100, audio: 0x101 } as const;

function section(body: number[]): Buffer {
  const out = Buffer.from([...body, 0, 0, 0, 0]);
  out.writeUInt32BE(crc32Mpeg(out, 0, out.length - 4), out.length - 4);
  return out;
}

/** The 4-byte TS header at `out[at]`: payload present, an adaptation field only when asked for. */
function writeTsHeader(
  out: Buffer,
  at: number,
  pid: number,
  cc: number,
  flags: { unitStart?: boolean; adaptation?: boolean } = {},
): void {
  const L = TS_LAYOUT;
  out[at + L.sync] = TS_SYNC_BYTE;
  out[at + L.flagsPid] = (flags.unitStart ? L.payloadUnitStartFlag : 0) | (pid >>> 8);
  out[at + L.pidLow] = pid & 0xff;
  out[at + L.control] =
    (flags.adaptation ? L.adaptationFieldFlag : 0) | L.payloadFlag | (cc & L.continuityMask);
}

/** A PSI packet (pointer field 0, section, 0xFF stuffing). */
export function psiPacket(pid: number, cc: number, body: Buffer): Buffer {
  const packet = Buffer.alloc(TS_PACKET_SIZE, 0xff);
  writeTsHeader(packet, 0, pid, cc, { unitStart: true });
  packet[4] = 0;
  body.copy(packet, 5);
  return packet;
}

/** An elementary-stream packet of filler bytes. */
export function esPacket(pid: number, cc: number, fill = 0xaa): Buffer {
  const packet = Buffer.alloc(TS_PACKET_SIZE, fill);
  writeTsHeader(packet, 0, pid, cc);
  return packet;
}

/** Per-PID continuity counters, each starting at 0. */
export class ContinuityCounters {
  private readonly cc = new Map<number, number>();

  next(pid: number): number {
    const cc = ((this.cc.get(pid) ?? 15) + 1) & 0x0f;
    this.cc.set(pid, cc);
    return cc;
  }
}

/** version_number (5 bits) and current_next_indicator = 1, as PAT and PMT carry it. */
function versionByte(version: number): number {
  return 0xc1 | ((version & 0x1f) << 1);
}

export function patSection(programNumber: number, pmtPid: number, version = 0): Buffer {
  return section([
    0x00,
    0xb0,
    13,
    0x00,
    0x01,
    versionByte(version),
    0x00,
    0x00,
    programNumber >>> 8,
    programNumber & 0xff,
    0xe0 | (pmtPid >>> 8),
    pmtPid & 0xff,
  ]);
}

/** PMT listing `streams` ([stream_type, pid]); the first stream carries the PCR. */
export function pmtSection(
  programNumber: number,
  streams: readonly (readonly [number, number])[],
  version = 0,
): Buffer {
  const loop = streams.flatMap(([type, pid]) => [type, 0xe0 | (pid >>> 8), pid & 0xff, 0xf0, 0x00]);
  const length = 9 + loop.length + 4;
  const pcrPid = streams[0][1];
  return section([
    0x02,
    0xb0 | (length >>> 8),
    length & 0xff,
    programNumber >>> 8,
    programNumber & 0xff,
    versionByte(version),
    0x00,
    0x00,
    0xe0 | (pcrPid >>> 8),
    pcrPid & 0xff,
    0xf0,
    0x00,
    ...loop,
  ]);
}

export interface TsMuxerOptions {
  programNumber?: number;
  pids?: { pmt: number; video: number; audio: number };
  /** Every Nth TS packet is audio (the rest video). */
  audioEvery?: number;
  /** version_number of the PAT and PMT (an encoder bumps it when it restarts or reconfigures). */
  psiVersion?: number;
}

export class TsMuxer {
  readonly pids: { pmt: number; video: number; audio: number };
  private readonly pat: Buffer;
  private readonly pmt: Buffer;
  private readonly cc = new ContinuityCounters();
  private count = 0;
  private readonly audioEvery: number;

  constructor(options: TsMuxerOptions = {}) {
    const program = options.programNumber ?? 1;
    this.pids = options.pids ?? DEFAULT_PIDS;
    this.audioEvery = options.audioEvery ?? 10;
    const version = options.psiVersion ?? 0;
    this.pat = patSection(program, this.pids.pmt, version);
    this.pmt = pmtSection(
      program,
      [
        [0x1b, this.pids.video],
        [0x0f, this.pids.audio],
      ],
      version,
    );
  }

  /**
   * `count` TS packets into `out` (allocated when omitted). PAT+PMT are inserted when `psiDue` says so
   * (the caller knows stream time); a PCR rides on the first video packet after them.
   */
  nextPackets(
    count: number,
    pcr27MHz: number,
    psiDue: boolean,
    out = Buffer.alloc(count * TS_PACKET_SIZE),
  ): Buffer {
    let i = 0;
    let pcrPending = false;
    if (psiDue && count >= 3) {
      psiPacket(0, this.cc.next(0), this.pat).copy(out, 0);
      psiPacket(this.pids.pmt, this.cc.next(this.pids.pmt), this.pmt).copy(out, TS_PACKET_SIZE);
      i = 2;
      pcrPending = true;
    }
    for (; i < count; i++) {
      const at = i * TS_PACKET_SIZE;
      const audio = this.count++ % this.audioEvery === this.audioEvery - 1;
      const pid = audio ? this.pids.audio : this.pids.video;
      const cc = this.cc.next(pid);
      if (!audio && pcrPending) {
        // Adaptation field with a PCR (48 bits: 33-bit base at 90 kHz, 6 reserved, 9-bit extension).
        writeTsHeader(out, at, pid, cc, { adaptation: true });
        out[at + 4] = 7;
        out[at + 5] = 0x10;
        const base = Math.floor(pcr27MHz / 300) % 2 ** 33;
        const extension = Math.floor(pcr27MHz) % 300;
        out[at + 6] = Math.floor(base / 2 ** 25) & 0xff;
        out[at + 7] = Math.floor(base / 2 ** 17) & 0xff;
        out[at + 8] = Math.floor(base / 2 ** 9) & 0xff;
        out[at + 9] = Math.floor(base / 2) & 0xff;
        out[at + 10] = ((base & 1) << 7) | 0x7e | (extension >>> 8);
        out[at + 11] = extension & 0xff;
        out.fill(0xa5, at + 12, at + TS_PACKET_SIZE);
        pcrPending = false;
      } else {
        writeTsHeader(out, at, pid, cc);
        out.fill(audio ? 0x5a : 0xa5, at + 4, at + TS_PACKET_SIZE);
      }
    }
    return out;
  }
}
