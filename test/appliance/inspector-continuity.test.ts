/**
 * The discontinuities live video has (an encoder restart, a source failover, a reconfiguration), which
 * must be followed, against what only an attacker does (two streams interleaved on one 5-tuple, replays,
 * forged PSI, GENEVE a tunnel endpoint must not pass on).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultPolicy } from "../../appliance/lab/appliances/policy-file.ts";
import { patSection, pmtSection, psiPacket } from "../../appliance/lab/media/mpegts.ts";
import {
  CleanStream,
  DEFAULT_FLOW,
  esPacket,
  geneveUdp,
  gwlbOptions,
  PMT_PID,
  pmtPacket,
  rtpPacket,
  TsProgram,
  VIDEO_PID,
} from "../../appliance/lab/media/packets.ts";
import { buildGeneve, EtherType } from "../../appliance/wire/geneve.ts";
import { buildIpv4Udp } from "../../appliance/wire/ip.ts";
import { InspectorHarness, type Verdict } from "../support/inspector-harness.ts";

const PROBATION = 8; // the default policy's probationPackets
const SILENCE_MS = 50; // and handoverSilenceMs

const forwarded = (verdicts: Verdict[]) => verdicts.filter((v) => v === "forward").length;

describe("RTP sequence: a restart is followed (RFC 3550 A.1, both directions)", () => {
  for (const [name, jump] of [
    ["back by thousands (same SSRC, sequence reset)", -20_000],
    ["back beyond the replay window", -100],
    ["forward past maxSeqJump", 30_000],
  ] as const) {
    it(`a jump ${name} costs probationPackets - 1 packets, then the stream flows`, () => {
      const h = new InspectorHarness();
      const stream = new CleanStream();
      h.play(() => stream.next(), 50);
      stream.sequence = (stream.sequence + jump + 0x10000) & 0xffff;
      const verdicts = h.play(() => stream.next(), 100);
      expect(verdicts.slice(0, PROBATION - 1).every((v) => v !== "forward")).toBe(true);
      expect(verdicts.slice(PROBATION - 1).every((v) => v === "forward")).toBe(true);
      expect(h.alerts("rtp_resync")).toBe(1);
      expect(h.events.find((e) => e.reason === "rtp_resync")).toMatchObject({ kind: "alert" });
    });
  }

  it("keeps dropping replays after a resync, of the new position and of the old", () => {
    const h = new InspectorHarness();
    const stream = new CleanStream();
    const old = Array.from({ length: 40 }, () => stream.next());
    for (const p of old) h.inspect(p);
    stream.sequence = 40_000;
    const fresh = Array.from({ length: 20 }, () => stream.next());
    expect(forwarded(fresh.map((p) => h.inspect(p)))).toBe(20 - (PROBATION - 1));
    expect(h.inspect(fresh[15])).toBe("rtp_seq_replay");
    // So are the probation packets it dropped: they are behind the position it now follows.
    expect(h.inspect(fresh[3])).toBe("rtp_seq_replay");
    // The old stream's packets, one by one between live ones, can never win a probation back.
    for (const p of old.slice(0, 20)) {
      expect(h.inspect(p)).not.toBe("forward");
      expect(h.inspect(stream.next())).toBe("forward");
    }
  });

  it("after a restart back to 0, the old stream's packets replayed are no forward step from the new position", () => {
    const h = new InspectorHarness();
    const stream = new CleanStream(DEFAULT_FLOW, 0x11223344, 60);
    const old = Array.from({ length: 40 }, () => stream.next());
    for (const p of old) expect(h.inspect(p)).toBe("forward");
    stream.sequence = 0; // the encoder restarts its output, keeping its SSRC and its clock
    expect(forwarded(h.play(() => stream.next(), 20))).toBe(20 - (PROBATION - 1));
    // Sequences 60-99 are less than maxSeqJump ahead of the new position: taken as a step, one would
    // move the flow there and strand the live stream behind it.
    for (const p of old) {
      expect(h.inspect(p)).not.toBe("forward");
      expect(h.inspect(stream.next())).toBe("forward");
    }
    expect(h.alerts("rtp_resync")).toBe(1);
  });

  it("once the restarted stream reaches the numbers it left, they are its own again", () => {
    const h = new InspectorHarness();
    const stream = new CleanStream(DEFAULT_FLOW, 0x11223344, 200);
    h.play(() => stream.next(), 100); // highest 299
    stream.sequence = 0;
    h.play(() => stream.next(), 400); // resynced at 7, through 299, on to 399
    expect(h.alerts("rtp_resync")).toBe(1);
    stream.sequence = (stream.sequence + 100) & 0xffff; // 100 packets lost upstream
    expect(h.inspect(stream.next())).toBe("forward");
  });

  it("never follows a spoofed position interleaved with the live stream (same SSRC)", () => {
    const h = new InspectorHarness();
    const live = new CleanStream();
    const spoof = new CleanStream(DEFAULT_FLOW, live.ssrc, (live.sequence + 30_000) & 0xffff);
    h.play(() => live.next(), 10);
    for (let i = 0; i < 200; i++) {
      expect(h.inspect(spoof.next())).toBe("rtp_seq_jump");
      expect(h.inspect(live.next())).toBe("forward");
    }
    expect(h.alerts("rtp_resync")).toBe(0);
  });
});

describe("SSRC: handover versus hijack", () => {
  it("a new SSRC that replaces a silent one takes the pin within 100 ms of its packets", () => {
    const h = new InspectorHarness();
    const before = new CleanStream();
    h.play(() => before.next(), 50, 2);
    const after = new CleanStream(DEFAULT_FLOW, 0x5eed0001, 12, new TsProgram([0x200, 0x201], 3));
    const verdicts = h.play(() => after.next(), 200, 2); // 2 ms apart: 100 ms = 50 packets
    const firstForwarded = verdicts.indexOf("forward");
    expect(firstForwarded).toBeGreaterThanOrEqual(PROBATION - 1);
    expect(firstForwarded).toBeLessThanOrEqual(SILENCE_MS / 2 + 1);
    expect(verdicts.slice(firstForwarded).every((v) => v === "forward")).toBe(true);
    expect(h.alerts("rtp_ssrc_handover")).toBe(1);
    expect(h.events.find((e) => e.reason === "rtp_ssrc_handover")?.detail).toMatch(/SSRC/);
    // The old SSRC is now the stranger.
    expect(h.inspect(before.next())).toBe("rtp_ssrc_changed");
  });

  it("a newcomer interleaved with the live pinned SSRC is dropped however long it keeps going", () => {
    const h = new InspectorHarness();
    const live = new CleanStream();
    const hijacker = new CleanStream(DEFAULT_FLOW, 0x0badc0de, 5);
    h.play(() => live.next(), 5);
    for (let i = 0; i < 500; i++) {
      expect(h.inspect(hijacker.next())).toBe("rtp_ssrc_changed");
      h.now += 1;
      expect(h.inspect(live.next())).toBe("forward");
      h.now += 1;
    }
    expect(h.alerts("rtp_ssrc_handover")).toBe(0);
  });

  it("a hijacker in the natural pauses of a bursty stream never takes the pin", () => {
    const h = new InspectorHarness();
    const live = new CleanStream();
    const hijacker = new CleanStream(DEFAULT_FLOW, 0x0badc0de, 5);
    // A low-rate contribution: a burst of three packets per 80 ms frame. Once its cadence is known (a
    // few frames), in every pause the hijacker sends a run longer than probation, its last packets well
    // past handoverSilenceMs after the stream's.
    for (let frame = 0; frame < 200; frame++) {
      for (let i = 0; i < 3; i++) {
        expect(h.inspect(live.next())).toBe("forward");
        h.now += 1;
      }
      if (frame < 3) {
        h.now += 77;
        continue;
      }
      for (let i = 0; i < PROBATION + 2; i++) {
        h.now += 7;
        expect(h.inspect(hijacker.next())).toBe("rtp_ssrc_changed");
      }
      h.now += 80 - 3 - 7 * (PROBATION + 2);
    }
    expect(h.alerts("rtp_ssrc_handover")).toBe(0);
  });

  it("a bursty stream that really stops is still handed over, once silent for four of its pauses", () => {
    const h = new InspectorHarness();
    const before = new CleanStream();
    for (let frame = 0; frame < 50; frame++) {
      h.play(() => before.next(), 3, 1);
      h.now += 77;
    }
    // Its last packet came 78 ms before this; its pauses are 78 ms (the largest gap fades a little
    // over the burst's two short ones).
    const after = new CleanStream(DEFAULT_FLOW, 0x5eed0002, 40);
    const verdicts = h.play(() => after.next(), 200, 5);
    const silenceAtHandover = 78 + 5 * verdicts.indexOf("forward");
    expect(silenceAtHandover).toBeGreaterThanOrEqual(4 * 78 * 0.97);
    expect(silenceAtHandover).toBeLessThanOrEqual(4 * 78 + 5);
    expect(h.alerts("rtp_ssrc_handover")).toBe(1);
  });

  it("property: for any interleaving of two SSRCs, none of the second is delivered while the first is live", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ who: fc.constantFrom(0, 1), gapMs: fc.double({ min: 0, max: 80, noNaN: true }) }),
          {
            minLength: 1,
            maxLength: 400,
          },
        ),
        (schedule) => {
          const h = new InspectorHarness();
          const first = new CleanStream();
          const second = new CleanStream(DEFAULT_FLOW, 0x22222222, 30_000);
          h.inspect(first.next()); // the first SSRC is pinned
          let firstLast = h.now;
          let secondPinned = false;
          for (const step of schedule) {
            h.now += step.gapMs;
            if (step.who === 0) {
              if (h.inspect(first.next()) === "forward" && !secondPinned) firstLast = h.now;
            } else {
              const verdict = h.inspect(second.next());
              if (verdict === "forward") {
                // Delivered only once the first had been silent for the handover gap.
                expect(h.now - firstLast).toBeGreaterThanOrEqual(SILENCE_MS);
                secondPinned = true;
              }
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("property: for any restart point and kind, the restart costs at most the bound", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.boolean(),
        // Where the new sequence starts, from the old highest: anywhere but back into the replay
        // window, whose sequence numbers the flow has just seen (those are replays, whoever sends them).
        fc.integer({ min: 1, max: 0x10000 - 65 }),
        (restartAt, startSeq, newSsrc, offset) => {
          const h = new InspectorHarness();
          const stepMs = 2.6; // a 4 Mbit/s stream of 1,316-byte payloads
          const before = new CleanStream(DEFAULT_FLOW, 0x11223344, startSeq);
          expect(forwarded(h.play(() => before.next(), restartAt, stepMs))).toBe(restartAt);
          const after = new CleanStream(
            DEFAULT_FLOW,
            newSsrc ? 0x99887766 : 0x11223344,
            (before.sequence - 1 + offset) & 0xffff,
            new TsProgram([0x300, 0x301], 7),
          );
          const verdicts = h.play(() => after.next(), 200, stepMs);
          const lost = verdicts.indexOf("forward");
          expect(lost).toBeGreaterThanOrEqual(0);
          expect(verdicts.slice(lost).every((v) => v === "forward")).toBe(true);
          // Same SSRC: the probation (none when the new position is a forward step the flow accepts
          // anyway); new SSRC: the handover silence, 100 ms at most.
          if (newSsrc) expect(lost * stepMs).toBeLessThanOrEqual(100);
          else expect(lost).toBeLessThanOrEqual(PROBATION);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("MPEG-TS: restart and reconfiguration", () => {
  /** Sends RTP packets of `payloads` on the flow of `stream`, in sequence. */
  const sender = (h: InspectorHarness, stream: CleanStream) => (payload: Buffer) =>
    h.inspect(
      geneveUdp(
        DEFAULT_FLOW,
        rtpPacket({ sequence: stream.sequence++, timestamp: stream.timestamp, ssrc: stream.ssrc }, payload),
      ),
    );
  const seven = (...packets: Buffer[]) =>
    Buffer.concat([...packets, ...Array.from({ length: 7 - packets.length }, () => esPacket(0x1fff, 0))]);

  it("learns the PIDs of a new PMT version and forgets the ones it dropped (unexpectedPid: drop)", () => {
    const h = new InspectorHarness();
    const stream = new CleanStream();
    h.play(() => stream.next(), 12); // PAT + PMT v0 (video 0x100, audio 0x101) seen
    const send = sender(h, stream);
    expect(send(seven(esPacket(0x400, 0)))).toBe("ts_unexpected_pid");
    expect(send(seven(pmtPacket(3, [0x400, 0x401], 1)))).toBe("forward");
    expect(send(seven(esPacket(0x400, 0), esPacket(0x401, 0)))).toBe("forward");
    expect(send(seven(esPacket(VIDEO_PID, 5)))).toBe("ts_unexpected_pid");
  });

  it("keeps learning across many reconfigurations (slots are reused)", () => {
    const h = new InspectorHarness();
    const stream = new CleanStream();
    h.play(() => stream.next(), 12);
    const send = sender(h, stream);
    for (let version = 1; version <= 20; version++) {
      const pid = 0x400 + version * 2;
      expect(send(seven(pmtPacket(version, [pid, pid + 1], version & 0x1f))), `v${version}`).toBe("forward");
      expect(send(seven(esPacket(pid, 0), esPacket(pid + 1, 0))), `v${version}`).toBe("forward");
    }
  });

  /** A flow under continuity: drop whose PAT and PMT have been seen, and how to send on it. */
  const strict = () => {
    const policy = defaultPolicy();
    policy.profiles["rtp-mpegts"].mpegts!.continuity = "drop";
    const h = new InspectorHarness(policy);
    const stream = new CleanStream();
    h.play(() => stream.next(), 12);
    return sender(h, stream);
  };

  it("a new PAT version starts the program over; continuity restarts with it", () => {
    const send = strict();
    const newPmt = 0x1100;
    expect(
      send(
        seven(
          psiPacket(0, 9, patSection(1, newPmt, 4)),
          psiPacket(newPmt, 0, pmtSection(1, [[0x1b, 0x500]], 0)),
          esPacket(0x500, 6),
          esPacket(0x500, 7),
        ),
      ),
    ).toBe("forward");
    expect(send(seven(esPacket(VIDEO_PID, 3)))).toBe("ts_unexpected_pid");
    expect(send(seven(esPacket(0x500, 9)))).toBe("ts_continuity");
  });

  it("a counter jump flagged by discontinuity_indicator is no continuity error", () => {
    const send = strict();
    const jumped = esPacket(VIDEO_PID, 0);
    jumped[3] = 0x30 | 9; // adaptation field + payload, CC 9
    jumped[4] = 1;
    jumped[5] = 0x80; // discontinuity_indicator
    expect(send(seven(jumped))).toBe("forward");
    expect(send(seven(esPacket(VIDEO_PID, 2)))).toBe("ts_continuity");
  });

  it("an encoder restart (new SSRC, sequence, PIDs, counters) passes continuity: drop and unexpectedPid: drop", () => {
    const policy = defaultPolicy();
    policy.profiles["rtp-mpegts"].mpegts!.continuity = "drop";
    const h = new InspectorHarness(policy);
    const before = new CleanStream();
    h.play(() => before.next(), 30, 2);
    const after = new CleanStream(DEFAULT_FLOW, 0x7777, 4, new TsProgram([0x600, 0x601], 9));
    after.program.payload(); // mid-GOP: the new PAT/PMT come 10 packets later
    const verdicts = h.play(() => after.next(), 100, 2);
    const first = verdicts.indexOf("forward");
    expect(verdicts.slice(first).every((v) => v === "forward")).toBe(true);
    expect(h.dropped("ts_unexpected_pid") + h.dropped("ts_continuity")).toBe(0);
  });
});

describe("PAT/PMT sections that lie", () => {
  const withSection = (pid: number, section: Buffer) => {
    const stream = new CleanStream();
    return { stream, packet: psiPacket(pid, 0, section) };
  };
  const sendOne = (h: InspectorHarness, stream: CleanStream, ts: Buffer) =>
    h.inspect(
      geneveUdp(
        DEFAULT_FLOW,
        rtpPacket(
          { sequence: stream.sequence++, timestamp: stream.timestamp, ssrc: stream.ssrc },
          Buffer.concat([ts, ...Array.from({ length: 6 }, () => esPacket(0x1fff, 0))]),
        ),
      ),
    );

  it("drops a PAT whose CRC_32 is wrong (ts_psi_crc)", () => {
    const h = new InspectorHarness();
    const section = patSection(1, PMT_PID);
    section[section.length - 1] ^= 0x01;
    const { stream, packet } = withSection(0, section);
    expect(sendOne(h, stream, packet)).toBe("ts_psi_crc");
  });

  it("drops a PMT whose section_length or ES_info_length lies (ts_psi_length)", () => {
    const h = new InspectorHarness();
    const stream = new CleanStream();
    h.play(() => stream.next(), 12);
    const tooLong = psiPacket(PMT_PID, 4, pmtSection(1, [[0x1b, VIDEO_PID]], 1));
    tooLong[5 + 1] = 0xb3; // section_length 0x3ff + … = beyond 1021
    tooLong[5 + 2] = 0xff;
    expect(sendOne(h, stream, tooLong)).toBe("ts_psi_length");
    // An ES_info_length running into the CRC, with a CRC that matches the lie.
    const body = pmtSection(1, [[0x1b, VIDEO_PID]], 1);
    body[12 + 4] = 0x09; // ES_info_length 9: past the section
    body.writeUInt32BE(crc32(body.subarray(0, body.length - 4)), body.length - 4);
    expect(sendOne(h, stream, psiPacket(PMT_PID, 5, body))).toBe("ts_psi_length");
    expect(h.dropped("ts_psi_length")).toBe(2);
  });

  it("with psiErrors: alert, counts it and forwards", () => {
    const policy = defaultPolicy();
    policy.profiles["rtp-mpegts"].mpegts!.psiErrors = "alert";
    const h = new InspectorHarness(policy);
    const section = patSection(1, PMT_PID);
    section[9] ^= 0xff;
    const { stream, packet } = withSection(0, section);
    expect(sendOne(h, stream, packet)).toBe("forward");
    expect(h.alerts("ts_psi_crc")).toBe(1);
  });
});

describe("GENEVE (RFC 8926 §3.4-3.5)", () => {
  const inner = buildIpv4Udp({ ...DEFAULT_FLOW, payload: new CleanStream().rtp() });
  const datagram = (options = gwlbOptions(), flags: { oam?: boolean; critical?: boolean } = {}) =>
    buildGeneve({ protocolType: EtherType.ipv4, options, inner, ...flags });

  it("drops a version other than 0", () => {
    const h = new InspectorHarness();
    for (const version of [1, 2, 3]) {
      const d = datagram();
      d[0] = (d[0] & 0x3f) | (version << 6);
      expect(h.inspect(d)).toBe("geneve_unknown_version");
    }
  });

  it("drops an unknown option with the critical bit, forwards an unknown one without it", () => {
    const h = new InspectorHarness();
    const critical = { optionClass: 0x0103, type: 0x80 | 0x11, data: Buffer.alloc(4, 0xab) };
    expect(h.inspect(datagram([...gwlbOptions(), critical], { critical: true }))).toBe(
      "geneve_critical_option",
    );
    // A critical type within Amazon's own class that this appliance does not know is just as unknown.
    const amazonUnknown = { optionClass: 0x0108, type: 0x84, data: Buffer.alloc(4) };
    expect(h.inspect(datagram([amazonUnknown, ...gwlbOptions()], { critical: true }))).toBe(
      "geneve_critical_option",
    );
    const plain = { optionClass: 0x0103, type: 0x11, data: Buffer.alloc(8, 0xcd) };
    expect(h.inspect(datagram([plain, ...gwlbOptions()]))).toBe("forward");
  });

  it("never forwards an O-bit control packet as data", () => {
    const h = new InspectorHarness();
    expect(h.inspect(datagram(gwlbOptions(), { oam: true }))).toBe("geneve_control_packet");
  });
});

/** CRC-32/MPEG-2, computed independently of the appliance's table-driven one. */
function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}
