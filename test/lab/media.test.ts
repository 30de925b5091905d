import { describe, expect, it } from "vitest";
import { TsMuxer } from "../../appliance/lab/media/mpegts.ts";
import { RtpPacketizer } from "../../appliance/lab/media/rtp.ts";
import { SyntheticStream } from "../../appliance/lab/media/synthetic-stream.ts";
import { StreamStats } from "../../appliance/lab/sink/sink.ts";
import { readPat, readPmt, TS_PACKET_SIZE, tsPid } from "../../appliance/wire/mpegts.ts";

describe("lab media", () => {
  it("muxes PAT and PMT with valid CRCs, a PCR after them, and per-PID continuity counters", () => {
    const muxer = new TsMuxer();
    const first = muxer.nextPackets(7, 27_000_000, true);
    const pids = new Uint16Array(16);
    expect(readPat(first, 0, pids)).toBe(1);
    expect(pids[0]).toBe(0x1000);
    expect(readPmt(first, TS_PACKET_SIZE, pids)).toBe(3); // PCR PID + video + audio
    expect([...pids.subarray(0, 3)]).toEqual([0x100, 0x100, 0x101]);
    expect(first[2 * TS_PACKET_SIZE + 3] & 0x20).toBe(0x20); // adaptation field on the first video packet
    expect(first[2 * TS_PACKET_SIZE + 5] & 0x10).toBe(0x10); // PCR flag
    const counters = new Map<number, number>();
    for (let n = 0; n < 50; n++) {
      const chunk = muxer.nextPackets(7, 0, n % 10 === 0);
      for (let at = 0; at < chunk.length; at += TS_PACKET_SIZE) {
        expect(chunk[at]).toBe(0x47);
        const pid = tsPid(chunk, at);
        const cc = chunk[at + 3] & 0x0f;
        if (counters.has(pid)) expect(cc).toBe((counters.get(pid)! + 1) & 0x0f);
        counters.set(pid, cc);
      }
    }
  });

  it("numbers RTP packets across the 16-bit wrap", () => {
    const rtp = new RtpPacketizer({ ssrc: 7, sequence: 65534 });
    const seqs = [0, 1, 2].map(() => rtp.packet(Buffer.alloc(4), 0).readUInt16BE(2));
    expect(seqs).toEqual([65534, 65535, 0]);
  });

  it("paces a synthetic stream for its bitrate", () => {
    const stream = new SyntheticStream({ bitrate: 10_000_000, ssrc: 1 });
    expect(stream.packetIntervalMs).toBeCloseTo((7 * 188 * 8 * 1000) / 10_000_000, 6);
    expect(stream.next(0).length).toBe(12 + 7 * 188);
  });

  it("sink statistics: loss, duplicates and reordering from sequence numbers, across the wrap", () => {
    const stats = new StreamStats("s");
    const rtp = new RtpPacketizer({ ssrc: 1, sequence: 65530 });
    const packets = Array.from({ length: 12 }, () => rtp.packet(new TsMuxer().nextPackets(1, 0, false), 0));
    const order = [0, 1, 2, 4, 3, 3, 5, 6, 8, 9, 10, 11]; // 7 lost, 3/4 swapped, 3 duplicated
    for (const i of order) stats.receive(packets[i], 1);
    expect(stats.received).toBe(11);
    expect(stats.duplicates).toBe(1);
    expect(stats.reordered).toBe(1);
    expect(stats.lost).toBe(1);
  });
});
