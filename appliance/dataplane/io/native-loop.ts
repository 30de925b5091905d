/**
 * The batched receive loop on the native addon: when the socket is readable, one recvmmsg fills up to
 * BATCH slots; each datagram is inspected in place through a Buffer view of its slot (made once, here)
 * and its verdict marked; the allowed ones leave in one sendmmsg. Nothing is allocated per datagram.
 *
 * It runs inside the worker's event loop (libuv polls the socket), so the loop's timers (heartbeat,
 * flow sweep) and messages (policy, close) run between wake-ups exactly as with dgram: a wake-up takes
 * at most ROUNDS batches before it yields, even when the socket never runs dry.
 */
import os from "node:os";
import { performance } from "node:perf_hooks";
import { Counter } from "../counters.ts";
import type { NativeIo } from "./native-addon.ts";
import {
  inspectDatagram,
  type ListeningInfo,
  type LoopContext,
  type LoopOptions,
  MAX_DATAGRAM_BYTES,
  type ReceiveLoop,
  recordProcessing,
  Verdict,
} from "./receive-loop.ts";

/** Datagrams per recvmmsg/sendmmsg (the batched C echo in the benchmark uses the same). */
export const BATCH = 64;
/** Batches per wake-up before the event loop gets its turn (about 2–6 ms at full load). */
const ROUNDS = 16;
const ERROR_REPORT_MS = 1000;

const errnoNames = new Map(Object.entries(os.constants.errno).map(([name, code]) => [code, name]));
const errnoName = (code: number) => errnoNames.get(code) ?? `errno ${code}`;

/** The socket and the memory it shares with the addon: BATCH receive slots, their lengths and verdicts. */
function openBatchSocket(io: NativeIo, options: LoopOptions) {
  const data = new ArrayBuffer(BATCH * MAX_DATAGRAM_BYTES);
  const lengths = new Int32Array(BATCH);
  const verdicts = new Uint8Array(BATCH);
  const stats = new Float64Array(2);
  const slots = Array.from({ length: BATCH }, (_, i) =>
    Buffer.from(data, i * MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES),
  );
  const handle = io.open({
    host: options.host,
    port: options.port,
    ipv6: options.host.includes(":"),
    reusePort: options.reusePort,
    receiveBuffer: options.socketBufferBytes,
    sendBuffer: options.socketBufferBytes,
    returnPort: options.returnPort,
    raw: options.raw,
    slotBytes: MAX_DATAGRAM_BYTES,
    data,
    lengths,
    verdicts,
    stats,
  });
  return { handle, lengths, verdicts, stats, slots };
}

/** context.onError at most once per ERROR_REPORT_MS: a failing socket fails for every batch. */
function rateLimited(onError: (message: string) => void): (message: string) => void {
  let lastReport = Number.NEGATIVE_INFINITY;
  return (message) => {
    const now = performance.now();
    if (now - lastReport < ERROR_REPORT_MS) return;
    lastReport = now;
    onError(message);
  };
}

export function startNativeLoop(
  io: NativeIo,
  options: LoopOptions,
  context: LoopContext,
): { loop: ReceiveLoop; info: ListeningInfo } {
  const { counters } = context;
  const { handle, lengths, verdicts, stats, slots } = openBatchSocket(io, options);
  const elapsed = new Float64Array(BATCH);
  const report = rateLimited((message) => context.onError(message));
  let failedBytesSeen = 0;

  const onReadable = () => {
    for (let round = 0; round < ROUNDS; round++) {
      const n = io.receive(handle);
      if (n <= 0) {
        if (n < 0) report(`recvmmsg: ${errnoName(-n)}`);
        return;
      }
      let marked = 0;
      let t = performance.now();
      for (let i = 0; i < n; i++) {
        const length = lengths[i];
        const forward = inspectDatagram(context, slots[i], length, t, report) === Verdict.forward;
        verdicts[i] = forward ? 1 : 0;
        if (forward) {
          marked++;
          counters[Counter.forwarded]++;
          counters[Counter.bytesForwarded] += length;
        }
        const next = performance.now();
        elapsed[i] = next - t;
        t = next;
      }
      let share = 0;
      if (marked > 0) {
        const failed = io.send(handle, n);
        share = (performance.now() - t) / n;
        if (failed > 0) {
          counters[Counter.sendErrors] += failed;
          counters[Counter.forwarded] -= failed;
          counters[Counter.bytesForwarded] -= stats[0] - failedBytesSeen;
          failedBytesSeen = stats[0];
          report(`sendmmsg: ${failed} datagram(s) not sent: ${errnoName(stats[1])}`);
        }
      }
      for (let i = 0; i < n; i++) recordProcessing(counters, elapsed[i] + share);
      if (n < BATCH) return;
    }
  };
  io.poll(handle, onReadable);
  const info = io.info(handle);
  return {
    loop: {
      backend: "native",
      close(done) {
        io.close(handle);
        done();
      },
    },
    info: {
      address: info.address,
      port: info.port,
      receiveBuffer: info.receiveBuffer,
      sendBuffer: info.sendBuffer,
    },
  };
}
