import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TS_HEADER_FIELDS } from "../../appliance/dataplane/checks/transport-stream.ts";
import { compilePolicy } from "../../appliance/dataplane/compiled-policy.ts";
import { SLOTS_PER_WORKER } from "../../appliance/dataplane/counters.ts";
import { Inspector } from "../../appliance/dataplane/inspector.ts";
import { DEFAULT_POLICY_TEXT } from "../../appliance/lab/appliances/policy-file.ts";
import { CleanStream, DEFAULT_FLOW, gwlbOptions } from "../../appliance/lab/media/packets.ts";
import {
  AMAZON_OPTION_CLASS,
  AmazonOption,
  buildGeneve,
  decodeGeneve,
  EtherType,
  GeneveHeader,
  GeneveStatus,
  parseGeneve,
} from "../../appliance/wire/geneve.ts";
import { buildIpv4Udp, decodeIpUdp } from "../../appliance/wire/ip.ts";
import { TS_LAYOUT } from "../../appliance/wire/mpegts.ts";
import { DROP_REASONS } from "../../contracts/appliance-metrics.ts";
import { parsePolicy } from "../../contracts/policy.ts";

const policy = parsePolicy(DEFAULT_POLICY_TEXT);

describe("GENEVE codec", () => {
  it("reads the three GWLB options in any order and counts others without touching them", () => {
    const [endpoint, attachment, cookie] = gwlbOptions(0xfeedbeef);
    // Type 0x05: the critical bit (0x80) is clear, so a receiver that does not know it carries it on.
    const vendor = { optionClass: 0x0103, type: 0x05, data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) };
    const inner = buildIpv4Udp({ ...DEFAULT_FLOW, payload: Buffer.from("x") });
    const datagram = buildGeneve({
      protocolType: EtherType.ipv4,
      options: [cookie, vendor, attachment, endpoint],
      inner,
    });
    const header = new GeneveHeader();
    expect(parseGeneve(datagram, datagram.length, header)).toBe(GeneveStatus.ok);
    expect(header.flowCookie).toBe(0xfeedbeef);
    expect(header.otherOptions).toBe(1);
    expect(datagram.readBigUInt64BE(header.endpointIdOffset)).toBe(0x0e1234567890abcdn);
    expect(datagram.readBigUInt64BE(header.attachmentIdOffset)).toBe(0x0a0000000000beefn);
    expect(header.innerOffset).toBe(8 + (4 + 4) + (4 + 8) + (4 + 8) + (4 + 8));
    const decoded = decodeGeneve(datagram);
    expect(decoded.options.map((o) => [o.optionClass, o.type])).toEqual([
      [AMAZON_OPTION_CLASS, AmazonOption.flowCookie],
      [0x0103, 0x05],
      [AMAZON_OPTION_CLASS, AmazonOption.attachmentId],
      [AMAZON_OPTION_CLASS, AmazonOption.endpointId],
    ]);
    expect(decodeIpUdp(decoded.inner)).toMatchObject({ src: "10.0.1.10", dst: "10.0.11.20", dstPort: 5000 });
  });

  it("round-trips header fields and option bytes", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            optionClass: fc.integer({ min: 0, max: 0xffff }),
            type: fc.integer({ min: 0, max: 255 }),
            data: fc
              .uint8Array({ maxLength: 28 })
              .map((a) => Buffer.from(a.subarray(0, a.length - (a.length % 4)))),
          }),
          { maxLength: 6 },
        ),
        fc.integer({ min: 0, max: 0xffffff }),
        fc.uint8Array({ maxLength: 200 }),
        fc.boolean(),
        (options, vni, inner, oam) => {
          const datagram = buildGeneve({
            protocolType: EtherType.ipv6,
            vni,
            oam,
            options,
            inner: Buffer.from(inner),
          });
          const decoded = decodeGeneve(datagram);
          expect(decoded.vni).toBe(vni);
          expect(decoded.oam).toBe(oam);
          expect(decoded.options).toEqual(options);
          expect(decoded.inner.equals(Buffer.from(inner))).toBe(true);
        },
      ),
    );
  });

  it("rejects option lengths that run past the header, and headers longer than the datagram", () => {
    const datagram = new CleanStream().next();
    const header = new GeneveHeader();
    const lying = Buffer.from(datagram);
    lying[8 + 3] = 0x1f; // first option claims 124 bytes of data
    expect(parseGeneve(lying, lying.length, header)).toBe(GeneveStatus.malformed);
    const tooLong = Buffer.from(datagram.subarray(0, 20));
    expect(parseGeneve(tooLong, tooLong.length, header)).toBe(GeneveStatus.malformed);
    expect(parseGeneve(Buffer.alloc(0), 0, header)).toBe(GeneveStatus.malformed);
    const ethernet = Buffer.from(datagram);
    ethernet.writeUInt16BE(0x6558, 2);
    expect(parseGeneve(ethernet, ethernet.length, header)).toBe(GeneveStatus.unsupportedProtocol);
  });
});

describe("MPEG-TS header", () => {
  it("is read by the transport stream check at the offsets and bits wire/mpegts.ts names", () => {
    for (const [field, value] of Object.entries(TS_HEADER_FIELDS))
      expect(value, field).toBe(TS_LAYOUT[field as keyof typeof TS_LAYOUT]);
  });
});

describe("hostile input never escapes the inspector", () => {
  const inspector = new Inspector(new Float64Array(SLOTS_PER_WORKER), () => {});
  inspector.setPolicy(compilePolicy(policy, 1));
  let now = 0;
  const verdictOf = (buf: Buffer) => {
    now += 0.5;
    return inspector.inspect(buf, buf.length, now);
  };

  it("survives random byte strings up to a 9000-byte jumbo", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 9000 }), (bytes) => {
        const verdict = verdictOf(Buffer.from(bytes));
        expect(verdict).toBeGreaterThanOrEqual(0);
        expect(verdict).toBeLessThanOrEqual(DROP_REASONS.length);
      }),
      { numRuns: 3000 },
    );
  });

  it("survives structure-aware mutations of valid datagrams (flipped bytes, truncation, lying lengths)", () => {
    const stream = new CleanStream();
    const seeds = Array.from({ length: 40 }, () => stream.next());
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: seeds.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.option(fc.nat(), { nil: undefined }),
        (seed, flips, cut) => {
          const datagram = Buffer.from(seeds[seed]);
          for (const [position, value] of flips) datagram[position % datagram.length] = value;
          const mutated = cut === undefined ? datagram : datagram.subarray(0, cut % (datagram.length + 1));
          const verdict = verdictOf(mutated);
          expect(verdict).toBeGreaterThanOrEqual(0);
          expect(verdict).toBeLessThanOrEqual(DROP_REASONS.length);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("never alters a datagram it forwards (inspection is read-only)", () => {
    const stream = new CleanStream({ ...DEFAULT_FLOW, srcPort: 41000 });
    fc.assert(
      fc.property(fc.constant(null), () => {
        const datagram = stream.next();
        const copy = Buffer.from(datagram);
        expect(verdictOf(datagram)).toBe(0);
        expect(datagram.equals(copy)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
