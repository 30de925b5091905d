/**
 * The benchmark's load generator, run as separate processes so it never shares a thread with what it
 * measures:
 *   node bench/blaster.ts send    '{"target":"127.0.30.3","from":"127.0.30.1","rate":50000,"seconds":3,"flows":16}'
 *   node bench/blaster.ts receive '{"bind":"127.0.30.1","seconds":4,"tsPerPacket":7}'
 * `send` paces datagrams at `rate` per second (0 = as fast as it can); `receive` listens on :6081 (where
 * GWLB gets returns), measures one-way latency from the stamp in each datagram and prints JSON. Both move
 * 64 datagrams per system call through the appliance's native addon, so the generator is not the limit.
 */
import dgram from "node:dgram";
import { loadNativeIo } from "../appliance/dataplane/io/native-addon.ts";
import { BATCH } from "../appliance/dataplane/io/native-loop.ts";
import { MAX_DATAGRAM_BYTES } from "../appliance/dataplane/io/receive-loop.ts";
import { layout, Traffic } from "./traffic.ts";

export interface SendOptions {
  target: string;
  from: string;
  rate: number;
  seconds: number;
  flows: number;
  tsPerPacket?: number;
  basePort?: number;
}

export interface ReceiveOptions {
  bind: string;
  seconds: number;
  tsPerPacket?: number;
  /** Only packets sent after this many seconds count towards latency (warm-up). */
  warmupSeconds?: number;
}

export interface SendReport {
  sent: number;
  seconds: number;
  errors: number;
}

export interface ReceiveReport {
  received: number;
  firstAt: number;
  lastAt: number;
  latencyMicros: { p50: number; p99: number; p999: number; max: number; samples: number };
}

const BUFFER = 32 << 20;
const now = () => Number(process.hrtime.bigint());

/**
 * A socket with a batch of slots on the appliance's own native addon: the generator sends and receives
 * 64 datagrams per system call, so that it can offer several times what one receive loop takes.
 */
function batchSocket(options: { host: string; port: number; connectHost?: string; connectPort?: number }) {
  const native = loadNativeIo();
  if (!native.io)
    throw new Error(`the load generator needs the native addon (npm run build:native): ${native.reason}`);
  const io = native.io;
  const data = new ArrayBuffer(BATCH * MAX_DATAGRAM_BYTES);
  const lengths = new Int32Array(BATCH);
  const verdicts = new Uint8Array(BATCH).fill(1);
  const handle = io.open({
    ...options,
    ipv6: false,
    reusePort: false,
    receiveBuffer: BUFFER,
    sendBuffer: BUFFER,
    returnPort: 6081,
    raw: false,
    slotBytes: MAX_DATAGRAM_BYTES,
    data,
    lengths,
    verdicts,
    stats: new Float64Array(2),
  });
  const slots = Array.from({ length: BATCH }, (_, i) =>
    Buffer.from(data, i * MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES),
  );
  return { io, handle, slots, lengths };
}

async function send(options: SendOptions): Promise<SendReport> {
  const traffic = new Traffic({
    flows: options.flows,
    tsPerPacket: options.tsPerPacket,
    basePort: options.basePort,
  });
  const { io, handle, slots, lengths } = batchSocket({
    host: options.from,
    port: 0,
    connectHost: options.target,
    connectPort: 6081,
  });
  let sent = 0;
  let errors = 0;
  const start = now();
  const end = start + options.seconds * 1e9;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const t = now();
      if (t >= end) return resolve();
      const due = options.rate > 0 ? Math.floor(((t - start) / 1e9) * options.rate) - sent : 1024;
      let todo = Math.min(due, 1024);
      while (todo > 0) {
        const count = Math.min(todo, BATCH);
        const stamp = now();
        for (let i = 0; i < count; i++) {
          const packet = traffic.nextPacket(stamp);
          slots[i].set(packet);
          lengths[i] = packet.length;
        }
        errors += io.send(handle, count);
        sent += count;
        todo -= count;
      }
      // Sleep between small batches rather than spin: a spinning sender would steal the core the
      // system under test needs (two cores for three processes here).
      if (options.rate > 0 && due < 1024) setTimeout(tick, 1);
      else setImmediate(tick);
    };
    tick();
  });
  const seconds = (now() - start) / 1e9;
  await new Promise((resolve) => setTimeout(resolve, 50));
  io.close(handle);
  return { sent, seconds, errors };
}

async function receive(options: ReceiveOptions): Promise<ReceiveReport> {
  const stamp = layout(options.tsPerPacket ?? 7).stamp;
  // 0.1 µs to 100 ms in 1 µs buckets, plus an overflow bucket.
  const histogram = new Uint32Array(100_001);
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  let samples = 0;
  let max = 0;
  const warmupUntil = now() + (options.warmupSeconds ?? 0) * 1e9;
  const { io, handle, slots, lengths } = batchSocket({ host: options.bind, port: 6081 });
  io.poll(handle, () => {
    for (;;) {
      const n = io.receive(handle);
      if (n <= 0) return;
      const t = now();
      if (received === 0) firstAt = t;
      lastAt = t;
      received += n;
      for (let i = 0; i < n; i++) {
        if (lengths[i] < stamp + 8) continue;
        const sentAt = slots[i].readDoubleLE(stamp);
        if (sentAt < warmupUntil) continue;
        const micros = (t - sentAt) / 1000;
        if (micros > max) max = micros;
        histogram[Math.min(100_000, Math.max(0, Math.floor(micros)))]++;
        samples++;
      }
    }
  });
  process.send?.({ ready: true });
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  io.close(handle);
  const percentile = (p: number) => {
    const target = Math.ceil(p * samples);
    let seen = 0;
    for (let i = 0; i < histogram.length; i++) {
      seen += histogram[i];
      if (seen >= target) return i + 1;
    }
    return max;
  };
  return {
    received,
    firstAt,
    lastAt,
    latencyMicros: samples
      ? { p50: percentile(0.5), p99: percentile(0.99), p999: percentile(0.999), max, samples }
      : { p50: 0, p99: 0, p999: 0, max: 0, samples: 0 },
  };
}

async function echo(options: { bind: string; returnPort?: number }): Promise<void> {
  // The ceiling for this runtime: receive a datagram and send it back, nothing else.
  const socket = dgram.createSocket({ type: "udp4", recvBufferSize: BUFFER, sendBufferSize: BUFFER });
  const port = options.returnPort ?? 6081;
  socket.on("message", (msg, rinfo) => socket.send(msg, port, rinfo.address));
  await new Promise<void>((resolve) => socket.bind(6081, options.bind, resolve));
  process.send?.({ ready: true });
}

const [role, json] = process.argv.slice(2);
if (role) {
  const options = JSON.parse(json ?? "{}");
  if (role === "send") process.stdout.write(`${JSON.stringify(await send(options))}\n`);
  else if (role === "receive") process.stdout.write(`${JSON.stringify(await receive(options))}\n`);
  else if (role === "echo") await echo(options);
  else throw new Error(`unknown role ${role}: send | receive | echo`);
}
