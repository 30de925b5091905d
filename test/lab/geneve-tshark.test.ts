/**
 * The emulator's GENEVE checked by an independent dissector: tshark decodes what `encapsulate` makes
 * (from a pcap with the outer Ethernet/IPv4/UDP:6081 headers a capture would show), and its reading of
 * the header, the three Amazon options and the inner packet must be ours.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { encapsulate } from "../../appliance/lab/gwlb/emulator.ts";
import { SyntheticStream } from "../../appliance/lab/media/synthetic-stream.ts";
import { amazonOptions } from "../../appliance/wire/geneve.ts";
import { buildIpv4Udp } from "../../appliance/wire/ip.ts";

/** A classic pcap (LINKTYPE_ETHERNET) of UDP datagrams from 127.0.0.1:40000 to 127.0.0.11:6081. */
function pcap(datagrams: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const records = datagrams.map((datagram, i) => {
    const ip = buildIpv4Udp({
      src: "127.0.0.1",
      dst: "127.0.0.11",
      srcPort: 40000,
      dstPort: 6081,
      payload: datagram,
    });
    const ethernet = Buffer.concat([
      Buffer.from("020000000002020000000001", "hex"),
      Buffer.from([0x08, 0x00]),
      ip,
    ]);
    const record = Buffer.alloc(16);
    record.writeUInt32LE(1_700_000_000 + i, 0);
    record.writeUInt32LE(ethernet.length, 8);
    record.writeUInt32LE(ethernet.length, 12);
    return Buffer.concat([record, ethernet]);
  });
  return Buffer.concat([header, ...records]);
}

describe("emulator GENEVE against tshark", () => {
  it("decodes as GENEVE with the Amazon option class, our option values and our inner packet", () => {
    const flow = {
      src: "10.0.1.10",
      dst: "10.0.11.20",
      srcPort: 30001,
      dstPort: 5003,
      label: "stream-1",
      attack: false,
      options: amazonOptions({
        endpointId: 0x0e1a2b3c4d5e6f70n,
        attachmentId: 0x0a77ac4e00000001n,
        flowCookie: 0x51000007,
      }),
    };
    const stream = new SyntheticStream({ bitrate: 4_000_000, ssrc: 0x1234 });
    const { datagram } = encapsulate(flow, stream.next(0));
    const file = path.join(mkdtempSync(path.join(tmpdir(), "si-tshark-")), "geneve.pcap");
    writeFileSync(file, pcap([datagram]));
    const fields = [
      "geneve.version",
      "geneve.proto_type",
      "geneve.vni",
      "geneve.option.class",
      "geneve.option.type",
      "geneve.option.length",
      "ip.src",
      "ip.dst",
      "udp.dstport",
      "rtp.p_type",
      "rtp.ssrc",
    ];
    const out = execFileSync(
      "tshark",
      [
        "-r",
        file,
        "-d",
        "udp.port==5003,rtp",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "aggregator=,",
        ...fields.flatMap((f) => ["-e", f]),
      ],
      { encoding: "utf8" },
    ).trim();
    const values = Object.fromEntries(out.split("|").map((v, i) => [fields[i], v]));
    expect(values["geneve.version"]).toBe("0");
    expect(values["geneve.proto_type"]).toBe("0x0800");
    expect(values["geneve.vni"]).toBe("0x000000");
    expect(values["geneve.option.class"]).toBe("0x0108,0x0108,0x0108");
    expect(values["geneve.option.type"]).toBe("0x01,0x02,0x03");
    expect(values["ip.src"]).toBe("127.0.0.1,10.0.1.10");
    expect(values["ip.dst"]).toBe("127.0.0.11,10.0.11.20");
    expect(values["udp.dstport"]).toBe("6081,5003");
    expect(values["rtp.p_type"]).toBe("33");
    expect(values["rtp.ssrc"]).toBe("0x00001234");
    // The verbose tree names the class and shows the values we put in.
    const tree = execFileSync("tshark", ["-r", file, "-V", "-O", "geneve"], { encoding: "utf8" });
    expect(tree).toMatch(/Amazon/);
    expect(tree.toLowerCase()).toContain("0e1a2b3c4d5e6f70");
    expect(tree.toLowerCase()).toContain("51000007");
  });
});
