import { beforeEach, describe, expect, it } from "vitest";
import { Counter, SLOTS_PER_WORKER } from "../../appliance/dataplane/counters.ts";
import { Inspector, type SecurityEvent } from "../../appliance/dataplane/inspector.ts";
import { DEFAULT_POLICY_TEXT } from "../../appliance/lab/appliances/policy-file.ts";
import {
  CleanStream,
  DEFAULT_FLOW,
  esPacket,
  geneveUdp,
  INNER_OFFSET,
  pmtPacket,
  rtpPacket,
  TsProgram,
  VIDEO_PID,
} from "../../appliance/lab/media/packets.ts";
import type { DropReason } from "../../contracts/appliance-metrics.ts";
import type { PolicyInput } from "../../contracts/policy.ts";
import { InspectorHarness, verdictName } from "../support/inspector-harness.ts";

describe("Inspector", () => {
  let harness: InspectorHarness;
  let counters: Float64Array;
  let events: SecurityEvent[];
  let inspector: Inspector;
  let now: number;

  const load = (policy: PolicyInput | string) => harness.load(policy);
  const inspect = (datagram: Buffer) => {
    harness.now = now;
    return harness.inspect(datagram);
  };
  const dropped = (reason: DropReason) => harness.dropped(reason);
  const alerts = (reason: DropReason) => harness.alerts(reason);
  /** Sends `count` packets of a stream 1.1 ms apart (about 7 Mbit/s) and returns the verdicts. */
  const play = (stream: CleanStream, count: number) => {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      out.push(inspect(stream.next()));
      now += 1.1;
    }
    return out;
  };

  beforeEach(() => {
    harness = new InspectorHarness();
    counters = harness.counters;
    events = harness.events;
    inspector = harness.inspector;
    now = harness.now;
  });

  it("forwards a clean RTP/MPEG-TS stream and keeps one flow for it", () => {
    const verdicts = play(new CleanStream(), 500);
    expect(new Set(verdicts)).toEqual(new Set(["forward"]));
    expect(inspector.flowCount).toBe(1);
    expect(counters[Counter.flowsCreated]).toBe(1);
    expect(alerts("ts_continuity")).toBe(0);
  });

  it("drops everything when no policy has been loaded", () => {
    const bare = new Inspector(new Float64Array(SLOTS_PER_WORKER), () => {});
    const packet = new CleanStream().next();
    expect(verdictName(bare.inspect(packet, packet.length, now))).toBe("no_policy");
  });

  it("denies flows outside the policy: unlisted source, wrong port, wrong direction", () => {
    expect(inspect(new CleanStream({ ...DEFAULT_FLOW, src: "192.0.2.7" }).next())).toBe("flow_not_allowed");
    expect(inspect(new CleanStream({ ...DEFAULT_FLOW, dstPort: 6000 }).next())).toBe("flow_not_allowed");
    expect(inspect(new CleanStream({ ...DEFAULT_FLOW, src: "10.0.11.20", dst: "10.0.1.10" }).next())).toBe(
      "flow_not_allowed",
    );
    expect(dropped("flow_not_allowed")).toBe(3);
    // Denied traffic must not occupy the flow table.
    expect(inspector.flowCount).toBe(0);
    expect(events.map((e) => e.reason)).toEqual(["flow_not_allowed", "flow_not_allowed", "flow_not_allowed"]);
    expect(events[0].flow).toBe("udp 192.0.2.7:40000 > 10.0.11.20:5000");
  });

  it("accepts a flow first seen mid-stream, as after a failover", () => {
    const stream = new CleanStream(DEFAULT_FLOW, 0xcafe, 54_321);
    stream.program.payload(); // not starting on PAT/PMT
    expect(play(stream, 50).every((v) => v === "forward")).toBe(true);
  });

  it("drops RTP with a wrong version, a wrong payload type, or a header that does not fit", () => {
    const program = new TsProgram();
    expect(
      inspect(
        geneveUdp(
          DEFAULT_FLOW,
          rtpPacket({ sequence: 1, timestamp: 1, ssrc: 1, version: 1 }, program.payload()),
        ),
      ),
    ).toBe("rtp_version");
    expect(
      inspect(
        geneveUdp(
          DEFAULT_FLOW,
          rtpPacket({ sequence: 1, timestamp: 1, ssrc: 1, payloadType: 96 }, program.payload()),
        ),
      ),
    ).toBe("rtp_payload_type");
    expect(inspect(geneveUdp(DEFAULT_FLOW, Buffer.from([0x80, 33, 0, 1])))).toBe("rtp_malformed");
    const csrcOverrun = rtpPacket({ sequence: 1, timestamp: 1, ssrc: 1 }, Buffer.alloc(8));
    csrcOverrun[0] |= 0x0f; // 15 CSRCs = 60 bytes that are not there
    expect(inspect(geneveUdp(DEFAULT_FLOW, csrcOverrun))).toBe("rtp_malformed");
  });

  it("pins the SSRC: a second source on the same flow is a hijack, the original stream carries on", () => {
    const stream = new CleanStream();
    play(stream, 20);
    const hijacker = new CleanStream(DEFAULT_FLOW, 0x66666666, stream.sequence + 1);
    expect(play(hijacker, 5)).toEqual(Array(5).fill("rtp_ssrc_changed"));
    expect(play(stream, 20).every((v) => v === "forward")).toBe(true);
  });

  it("drops replays, accepts a late packet once, drops packets older than the window", () => {
    const stream = new CleanStream();
    const packets = Array.from({ length: 100 }, () => stream.next());
    // 0..49 in order, skipping 40
    for (let i = 0; i < 50; i++) if (i !== 40) expect(inspect(packets[i])).toBe("forward");
    expect(inspect(packets[45])).toBe("rtp_seq_replay");
    expect(inspect(packets[40])).toBe("forward"); // late but new
    expect(inspect(packets[40])).toBe("rtp_seq_replay");
    for (let i = 50; i < 100; i++) expect(inspect(packets[i])).toBe("forward");
    expect(inspect(packets[10])).toBe("rtp_seq_stale"); // 89 behind, window is 64
  });

  it("drops a wild sequence jump until the stream shows it really continues from there", () => {
    const stream = new CleanStream();
    play(stream, 10);
    stream.sequence = (stream.sequence + 20_000) & 0xffff;
    // probationPackets (8) in sequence at the new position: the eighth is followed.
    expect(play(stream, 8)).toEqual([...Array(7).fill("rtp_seq_jump"), "forward"]);
    expect(play(stream, 10).every((v) => v === "forward")).toBe(true);
    expect(alerts("rtp_resync")).toBe(1);
  });

  it("drops a timestamp that leaps more than the profile allows", () => {
    const stream = new CleanStream();
    play(stream, 5);
    stream.timestamp += 90_000 * 60;
    expect(inspect(stream.next())).toBe("rtp_timestamp_jump");
  });

  it("checks the transport stream: misaligned payload, lost sync, transport errors", () => {
    const stream = new CleanStream();
    play(stream, 5);
    const rtp = (payload: Buffer) =>
      geneveUdp(
        DEFAULT_FLOW,
        rtpPacket({ sequence: stream.sequence++, timestamp: stream.timestamp, ssrc: stream.ssrc }, payload),
      );
    expect(inspect(rtp(Buffer.alloc(188 * 7 - 5, 0x47)))).toBe("ts_misaligned");
    const garbage = stream.program.payload();
    garbage[188 * 3] = 0x00;
    expect(inspect(rtp(garbage))).toBe("ts_sync_lost");
    const tei = stream.program.payload();
    tei[188 + 1] |= 0x80;
    expect(inspect(rtp(tei))).toBe("ts_transport_error");
  });

  it("alerts on a continuity-counter gap but still forwards (upstream loss is not an attack)", () => {
    const stream = new CleanStream();
    play(stream, 5);
    stream.program.payload(); // skip one RTP packet's worth of TS: every PID jumps
    stream.sequence++;
    expect(inspect(stream.next())).toBe("forward");
    expect(alerts("ts_continuity")).toBe(1);
    expect(events.at(-1)).toMatchObject({ kind: "alert", reason: "ts_continuity" });
  });

  it("drops PIDs the PMT does not list once the PMT is known, and learns PMT updates", () => {
    const stream = new CleanStream();
    play(stream, 3); // PAT + PMT seen
    const send = (payload: Buffer) =>
      inspect(
        geneveUdp(
          DEFAULT_FLOW,
          rtpPacket({ sequence: stream.sequence++, timestamp: stream.timestamp, ssrc: stream.ssrc }, payload),
        ),
      );
    const withPid = (pid: number, cc: number) =>
      Buffer.concat(Array.from({ length: 7 }, (_, i) => esPacket(pid, cc + i)));
    expect(send(withPid(0x1abc, 0))).toBe("ts_unexpected_pid");
    // The PMT's new version adds the PID: from then on it is part of the program.
    const update = Buffer.concat([
      pmtPacket(5, [VIDEO_PID, 0x1abc], 1),
      ...Array.from({ length: 6 }, () => esPacket(0x1fff, 0)),
    ]);
    expect(send(update)).toBe("forward");
    expect(send(withPid(0x1abc, 0))).toBe("forward");
  });

  it("enforces the per-flow packet rate ceiling (flood) without touching other flows", () => {
    const flood = new CleanStream();
    const verdicts: string[] = [];
    for (let i = 0; i < 6000; i++) {
      verdicts.push(inspect(flood.next()));
      now += 0.01; // 100k packets/s against a ceiling of 8k/s with a 0.5 s burst
    }
    // Buckets hold 0.5 s of the ceilings (4000 packets, 40 Mbit = ~3640 of these packets) and refill
    // for the 60 ms the flood lasts; everything beyond is dropped.
    const forwarded = verdicts.filter((v) => v === "forward").length;
    expect(forwarded).toBeGreaterThan(3600);
    expect(forwarded).toBeLessThan(4500);
    expect(dropped("rate_packets") + dropped("rate_bits")).toBe(6000 - forwarded);
    const bystander = new CleanStream({ ...DEFAULT_FLOW, srcPort: 40002 });
    expect(play(bystander, 20).every((v) => v === "forward")).toBe(true);
  });

  it("applies custom rules: the default policy drops oversized packets toward MediaLive", () => {
    const stream = new CleanStream();
    const big = geneveUdp(
      DEFAULT_FLOW,
      rtpPacket(
        { sequence: 1, timestamp: 1, ssrc: stream.ssrc },
        Buffer.concat([stream.program.payload(), stream.program.payload()]),
      ),
    );
    expect(inspect(big)).toBe("custom_rule");
    expect(events.at(-1)).toMatchObject({ reason: "custom_rule", detail: "media-oversize" });
  });

  it("drops low TTL and IP options; survives malformed GENEVE and IP", () => {
    expect(inspect(new CleanStream({ ...DEFAULT_FLOW, ttl: 1 }).next())).toBe("ip_ttl_low");
    const good = new CleanStream().next();
    expect(inspect(good.subarray(0, 5))).toBe("geneve_malformed");
    const badVersion = Buffer.from(good);
    badVersion[0] |= 0x40;
    expect(inspect(badVersion)).toBe("geneve_unknown_version");
    const badChecksum = Buffer.from(good);
    badChecksum[INNER_OFFSET + 10] ^= 0xff; // the inner IPv4 header checksum
    expect(inspect(badChecksum)).toBe("ip_checksum");
    const truncatedInner = good.subarray(0, good.length - 10);
    expect(inspect(truncatedInner)).toBe("ip_malformed");
    const noOptions = geneveUdp(DEFAULT_FLOW, Buffer.alloc(20), []);
    expect(inspect(noOptions)).toBe("gwlb_options_missing");
  });

  it("re-evaluates live flows when the policy changes (whitelist rotation without a restart)", () => {
    const stream = new CleanStream();
    play(stream, 10);
    const policy = JSON.parse(DEFAULT_POLICY_TEXT);
    policy.sets.mediaconnect = ["10.0.2.0/24"];
    load(policy);
    expect(inspect(stream.next())).toBe("flow_not_allowed");
    expect(inspector.flowCount).toBe(0);
    const moved = new CleanStream({ ...DEFAULT_FLOW, src: "10.0.2.10" });
    expect(play(moved, 5).every((v) => v === "forward")).toBe(true);
  });

  it("bounds the flow table and evicts idle flows", () => {
    const policy = JSON.parse(DEFAULT_POLICY_TEXT);
    policy.limits.maxFlows = 10;
    policy.limits.flowIdleSeconds = 5;
    load(policy);
    for (let port = 0; port < 10; port++)
      inspect(new CleanStream({ ...DEFAULT_FLOW, srcPort: 30000 + port }).next());
    expect(inspector.flowCount).toBe(10);
    expect(inspect(new CleanStream({ ...DEFAULT_FLOW, srcPort: 31000 }).next())).toBe("flow_table_full");
    now += 6000;
    inspector.sweep(now);
    expect(inspector.flowCount).toBe(0);
    expect(counters[Counter.flowsEvicted]).toBe(10);
    expect(inspect(new CleanStream({ ...DEFAULT_FLOW, srcPort: 31000 }).next())).toBe("forward");
  });

  it("limits how fast one source may open new flows", () => {
    const policy = JSON.parse(DEFAULT_POLICY_TEXT);
    policy.limits.newFlowBurstPerSource = 5;
    policy.limits.newFlowsPerSecondPerSource = 1;
    load(policy);
    const verdicts = Array.from({ length: 8 }, (_, i) =>
      inspect(new CleanStream({ ...DEFAULT_FLOW, srcPort: 20000 + i }).next()),
    );
    expect(verdicts).toEqual([...Array(5).fill("forward"), ...Array(3).fill("new_flow_rate")]);
    // another source is not affected
    expect(inspect(new CleanStream({ ...DEFAULT_FLOW, src: "10.0.1.11" }).next())).toBe("forward");
  });

  it("flags a sudden bitrate surge against the flow's own baseline", () => {
    const stream = new CleanStream();
    for (let i = 0; i < 12_000; i++) {
      inspect(stream.next());
      now += 2; // 500 packets/s for 24 s: the baseline
    }
    expect(alerts("anomaly")).toBe(0);
    for (let i = 0; i < 3_500; i++) {
      inspect(stream.next());
      now += 0.3; // ~3300 packets/s: under the rate ceiling, far above the baseline
    }
    expect(alerts("anomaly")).toBeGreaterThan(0);
    expect(events.find((e) => e.reason === "anomaly")?.detail).toMatch(/^bitrate/);
  });

  it("handles IPv6 flows when the policy names IPv6 prefixes", () => {
    const policy = JSON.parse(DEFAULT_POLICY_TEXT);
    policy.sets.mediaconnect.push("fd00:1::/64");
    policy.sets.medialive.push("fd00:11::/64");
    load(policy);
    const stream = new CleanStream({ src: "fd00:1::10", dst: "fd00:11::20", srcPort: 40000, dstPort: 5001 });
    expect(play(stream, 20).every((v) => v === "forward")).toBe(true);
    expect(
      inspect(
        new CleanStream({ src: "fd00:2::10", dst: "fd00:11::20", srcPort: 40000, dstPort: 5001 }).next(),
      ),
    ).toBe("flow_not_allowed");
  });

  it("samples security events under a flood but counts every drop", () => {
    for (let i = 0; i < 1000; i++) inspect(new CleanStream({ ...DEFAULT_FLOW, src: "198.51.100.1" }).next());
    expect(dropped("flow_not_allowed")).toBe(1000);
    expect(events.length).toBe(10); // securityEventsPerSecond in the default policy
    expect(counters[Counter.eventsSuppressed]).toBe(990);
  });
});
