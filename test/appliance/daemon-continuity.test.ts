/**
 * The continuity rules, each played against a real appliance process over UDP on loopback: what comes
 * back to the GWLB side, what /metrics counts and what the security log says.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ApplianceProcess } from "../../appliance/lab/appliances/appliance-process.ts";
import { defaultPolicy } from "../../appliance/lab/appliances/policy-file.ts";
import { patSection, psiPacket } from "../../appliance/lab/media/mpegts.ts";
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
} from "../../appliance/lab/media/packets.ts";
import { buildGeneve, EtherType } from "../../appliance/wire/geneve.ts";
import { buildIpv4Udp } from "../../appliance/wire/ip.ts";
import { PrometheusMetric } from "../../contracts/appliance-metrics.ts";
import type { PolicyInput } from "../../contracts/policy.ts";
import { applianceSuite } from "../support/appliance-suite.ts";

const APPLIANCE = "127.0.21.2";
const GWLB = "127.0.21.1";

/** The stream's next datagram, carrying these TS packets padded with null packets to seven. */
function nextRtp(stream: CleanStream, ts: Buffer[]): Buffer {
  const padding = Array.from({ length: 7 - ts.length }, () => esPacket(0x1fff, 0));
  const fields = { sequence: stream.sequence++, timestamp: stream.timestamp, ssrc: stream.ssrc };
  return geneveUdp(DEFAULT_FLOW, rtpPacket(fields, Buffer.concat([...ts, ...padding])));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("stream-intel-appliance: continuity rules over real sockets", () => {
  const { gwlb, launch, policyFile, writePolicy } = applianceSuite(GWLB, { tempPrefix: "si-continuity-" });
  let sent = 0;
  afterEach(() => {
    sent = 0;
  });

  async function start(change: (policy: PolicyInput) => void = () => {}): Promise<ApplianceProcess> {
    const policy = defaultPolicy();
    change(policy);
    writePolicy(policy);
    const appliance = launch({ address: APPLIANCE, policyFile });
    await appliance.waitHealthy();
    return appliance;
  }

  async function send(datagrams: Buffer[]): Promise<void> {
    for (const d of datagrams) await gwlb.send(d, APPLIANCE);
    sent += datagrams.length;
  }

  /** Waits until the appliance has inspected everything sent, then a little for returns in flight. */
  async function settle(proc: ApplianceProcess): Promise<void> {
    await proc.waitFor(
      async () => (await proc.metric(PrometheusMetric.packetsReceived)) === sent,
      "every datagram inspected",
    );
    await sleep(100);
  }

  const back = (datagrams: Buffer[]) =>
    datagrams.filter((d) => gwlb.received.some((r) => r.equals(d))).length;
  const dropped = (proc: ApplianceProcess, reason: string) =>
    proc.metric(PrometheusMetric.packetsDropped, { reason });
  const alerted = (proc: ApplianceProcess, reason: string) =>
    proc.metric(PrometheusMetric.alerts, { reason });
  const logged = (proc: ApplianceProcess, reason: string) =>
    proc.output.some((l) => l.includes('"event":"security"') && l.includes(`"reason":"${reason}"`));

  it("an encoder restart with the same SSRC and a reset sequence costs probationPackets - 1 packets", async () => {
    const proc = await start();
    const stream = new CleanStream();
    const old = Array.from({ length: 30 }, () => stream.next());
    await send(old);
    stream.sequence = 3; // back by about a thousand
    const restarted = Array.from({ length: 30 }, () => stream.next());
    await send(restarted);
    await settle(proc);
    expect(back(old)).toBe(30);
    expect(back(restarted)).toBe(30 - 7);
    expect(restarted.slice(7).every((d) => gwlb.received.some((r) => r.equals(d)))).toBe(true);
    expect(await alerted(proc, "rtp_resync")).toBe(1);
    expect(await dropped(proc, "rtp_seq_stale")).toBe(7);
    expect(logged(proc, "rtp_resync")).toBe(true);
  });

  it("a new SSRC replacing a silent one is handed the flow; the old SSRC is then refused", async () => {
    const proc = await start();
    const before = new CleanStream();
    await send(Array.from({ length: 20 }, () => before.next()));
    await sleep(200); // the pinned SSRC falls silent for longer than handoverSilenceMs
    const after = new CleanStream(DEFAULT_FLOW, 0x5eed5eed, 40_000, new TsProgram([0x200, 0x201], 2));
    const handedOver = Array.from({ length: 30 }, () => after.next());
    await send(handedOver);
    const stale = [before.next()];
    await send(stale);
    await settle(proc);
    expect(back(handedOver)).toBe(30 - 7);
    expect(back(stale)).toBe(0);
    expect(await alerted(proc, "rtp_ssrc_handover")).toBe(1);
    expect(logged(proc, "rtp_ssrc_handover")).toBe(true);
  });

  it("a second SSRC interleaved with the live one never gets a packet through", async () => {
    // A long silence gap, so that a scheduling hiccup on a busy test machine cannot look like one.
    const proc = await start((p) => {
      p.profiles["rtp-mpegts"].rtp!.handoverSilenceMs = 5000;
    });
    const live = new CleanStream();
    const hijacker = new CleanStream(DEFAULT_FLOW, 0x0badc0de, 9_000);
    const liveSent: Buffer[] = [];
    const hijackSent: Buffer[] = [];
    await send([live.next()]);
    for (let i = 0; i < 100; i++) {
      hijackSent.push(hijacker.next());
      liveSent.push(live.next());
      await send([hijackSent.at(-1)!, liveSent.at(-1)!]);
    }
    await settle(proc);
    expect(back(liveSent)).toBe(100);
    expect(back(hijackSent)).toBe(0);
    expect(await dropped(proc, "rtp_ssrc_changed")).toBe(100);
  });

  it("learns the PIDs of a new PMT version under unexpectedPid: drop", async () => {
    const proc = await start();
    const stream = new CleanStream();
    await send(Array.from({ length: 12 }, () => stream.next()));
    const rtp = (ts: Buffer[]) => nextRtp(stream, ts);
    const reconfigured = [
      rtp([pmtPacket(2, [0x700, 0x701], 5)]),
      rtp([esPacket(0x700, 0), esPacket(0x701, 0)]),
    ];
    await send(reconfigured);
    await settle(proc);
    expect(back(reconfigured)).toBe(2);
    expect(await dropped(proc, "ts_unexpected_pid")).toBe(0);
  });

  it("drops PAT/PMT sections whose CRC or lengths lie, each under its reason", async () => {
    const proc = await start();
    const stream = new CleanStream();
    await send(Array.from({ length: 12 }, () => stream.next()));
    const rtp = (ts: Buffer) => nextRtp(stream, [ts]);
    const badCrc = patSection(1, PMT_PID, 1);
    badCrc[badCrc.length - 2] ^= 0x40;
    const lying = pmtPacket(3, [0x100, 0x101], 1);
    lying[5 + 1] = 0xb0; // section_length 5: shorter than any PMT can be
    lying[5 + 2] = 0x05;
    const forged = [rtp(psiPacket(0, 2, badCrc)), rtp(lying)];
    await send(forged);
    await settle(proc);
    expect(back(forged)).toBe(0);
    expect(await dropped(proc, "ts_psi_crc")).toBe(1);
    expect(await dropped(proc, "ts_psi_length")).toBe(1);
  });

  it("GENEVE: drops an unknown version, an unknown critical option and a control packet; carries an unknown option byte for byte", async () => {
    const proc = await start();
    const inner = buildIpv4Udp({ ...DEFAULT_FLOW, srcPort: 47000, payload: new CleanStream().rtp() });
    const geneve = (options = gwlbOptions(), flags: { oam?: boolean; critical?: boolean } = {}) =>
      buildGeneve({ protocolType: EtherType.ipv4, options, inner, ...flags });
    const version1 = geneve();
    version1[0] |= 0x40;
    const critical = geneve(
      [...gwlbOptions(), { optionClass: 0xfff0, type: 0x81, data: Buffer.alloc(4, 1) }],
      {
        critical: true,
      },
    );
    const control = geneve(gwlbOptions(), { oam: true });
    const unknownKept = geneve([
      { optionClass: 0xfff0, type: 0x01, data: Buffer.from("keep me!") },
      ...gwlbOptions(),
    ]);
    await send([version1, critical, control, unknownKept]);
    await settle(proc);
    expect(gwlb.received).toHaveLength(1);
    expect(gwlb.received[0].equals(unknownKept)).toBe(true);
    expect(await dropped(proc, "geneve_unknown_version")).toBe(1);
    expect(await dropped(proc, "geneve_critical_option")).toBe(1);
    expect(await dropped(proc, "geneve_control_packet")).toBe(1);
  });
});
