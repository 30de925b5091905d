/**
 * In-process cost of the inspector as the flow table grows: `node bench/flow-scaling.ts N` creates N
 * flows, then times full inspection of packets spread round-robin over all of them, and prints JSON
 * (nanoseconds per packet, memory per flow). Run once per size, each in a fresh process, by run.ts.
 * `node bench/flow-scaling.ts N PACKETS` times PACKETS packets instead of 2,000,000.
 */
import { readFileSync } from "node:fs";
import { compilePolicy } from "../appliance/dataplane/compiled-policy.ts";
import { DROP_BASE, SLOTS_PER_WORKER } from "../appliance/dataplane/counters.ts";
import { Inspector } from "../appliance/dataplane/inspector.ts";
import { amazonOptions, buildGeneve, EtherType } from "../appliance/wire/geneve.ts";
import { buildIpv4Udp } from "../appliance/wire/ip.ts";
import { parsePolicy } from "../contracts/policy.ts";

const flows = Number(process.argv[2] ?? 10_000);
/** Timed packets; a second count lets an instruction counter (callgrind) subtract the set-up. */
const PACKETS = Number(process.argv[3] ?? 2_000_000);
const TS = 7;

const policy = parsePolicy(
  readFileSync(new URL("../appliance/policy.default.json", import.meta.url), "utf8"),
);
policy.limits.maxFlows = Math.ceil(flows * 1.05) + 16;
policy.limits.newFlowBurstPerSource = 10_000_000;
policy.limits.newFlowsPerSecondPerSource = 10_000_000;
policy.limits.flowIdleSeconds = 3600;
const counters = new Float64Array(SLOTS_PER_WORKER);

const payload = Buffer.alloc(12 + TS * 188, 0x55);
payload[0] = 0x80;
payload[1] = 33;
payload.writeUInt32BE(0x51000000, 8);
for (let i = 0; i < TS; i++) payload.set([0x47, 0x01, 0x00, 0x10], 12 + i * 188);
const inner = buildIpv4Udp({ src: "10.0.1.10", dst: "10.0.11.20", srcPort: 1024, dstPort: 5000, payload });
inner.writeUInt16BE(0, 26);
const packet = buildGeneve({
  protocolType: EtherType.ipv4,
  options: amazonOptions({ endpointId: 1n, attachmentId: 2n, flowCookie: 3 }),
  inner,
});
const UDP = 40 + 20;
const RTP = UDP + 8;
const sequence = new Uint16Array(flows);
const cc = new Uint8Array(flows);

/** Rewrites the one template buffer into flow `f`'s next packet (ports select the flow). */
function next(f: number): Buffer {
  packet.writeUInt16BE(1024 + (f % 60_000), UDP);
  packet.writeUInt16BE(5000 + Math.floor(f / 60_000), UDP + 2);
  const seq = sequence[f]++;
  packet.writeUInt16BE(seq, RTP + 2);
  packet.writeUInt32BE((seq * 900) >>> 0, RTP + 4);
  let c = cc[f];
  for (let i = 0; i < TS; i++) {
    packet[RTP + 12 + i * 188 + 3] = 0x10 | c;
    c = (c + 1) & 0x0f;
  }
  cc[f] = c;
  return packet;
}

const before = process.memoryUsage();
const inspector = new Inspector(counters, () => {});
inspector.setPolicy(compilePolicy(policy, 1));
let now = 0;
for (let f = 0; f < flows; f++) {
  now += 0.001;
  inspector.inspect(next(f), packet.length, now);
}
const created = inspector.flowCount;
const after = process.memoryUsage();
let forwarded = 0;
const start = process.hrtime.bigint();
for (let i = 0, f = 0; i < PACKETS; i++) {
  now += 0.001;
  if (inspector.inspect(next(f), packet.length, now) === 0) forwarded++;
  f = f + 1 === flows ? 0 : f + 1;
}
const nanos = Number(process.hrtime.bigint() - start) / PACKETS;
let dropped = 0;
for (let i = DROP_BASE; i < SLOTS_PER_WORKER; i++) dropped += counters[i];
console.log(
  JSON.stringify({
    flows: created,
    nsPerPacket: nanos,
    forwarded,
    dropped,
    bytesPerFlow: (after.rss - before.rss) / created,
    typedArrayBytesPerFlow: (after.arrayBuffers - before.arrayBuffers) / created,
  }),
);
