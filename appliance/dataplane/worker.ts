/**
 * One receive loop: a UDP socket on the GENEVE port (SO_REUSEPORT when there are several, so the kernel
 * keeps each GWLB flow, whose outer source port is fixed, on one loop), the inspector, and the sender.
 * Runs in a worker thread; talks to the control thread only through messages and the shared counters.
 */
import dgram from "node:dgram";
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import type { Policy } from "../../contracts/policy.ts";
import { compilePolicy } from "./compiled-policy.ts";
import { Counter, HISTOGRAM_BASE, PROCESSING_BUCKETS, workerCounters } from "./counters.ts";
import { Inspector, type SecurityEvent } from "./inspector.ts";
import { literalLookup, UdpSocketSender } from "./sender.ts";

export interface WorkerOptions {
  role: "dataplane";
  index: number;
  host: string;
  port: number;
  /** Port the GWLB listens on for returned datagrams (6081). */
  returnPort: number;
  reusePort: boolean;
  socketBufferBytes: number;
  counters: SharedArrayBuffer;
}

export type ToWorker = { type: "policy"; policy: Policy; generation: number } | { type: "close" };
export type FromWorker =
  | { type: "listening"; address: string; port: number; receiveBuffer: number; sendBuffer: number }
  | { type: "policy-applied"; generation: number; flows: number }
  | { type: "event"; event: SecurityEvent }
  | { type: "error"; message: string }
  | { type: "closed" };

const HEARTBEAT_MS = 100;
const SWEEP_MS = 250;
const BUCKET_BOUNDS_MS = PROCESSING_BUCKETS.map((s) => s * 1000);

export function runWorker(options: WorkerOptions): void {
  const port = parentPort;
  if (!port) throw new Error("the data plane must run in a worker thread");
  const post = (message: FromWorker) => port.postMessage(message);
  const counters = workerCounters(options.counters, options.index);
  const inspector = new Inspector(counters, (event) => post({ type: "event", event }));
  const socket = dgram.createSocket({
    type: options.host.includes(":") ? "udp6" : "udp4",
    reusePort: options.reusePort,
    recvBufferSize: options.socketBufferBytes,
    sendBufferSize: options.socketBufferBytes,
    lookup: literalLookup,
  } as dgram.SocketOptions);
  const sender = new UdpSocketSender(socket, counters);
  const returnPort = options.returnPort;
  const histogram = HISTOGRAM_BASE;
  const lastBucket = BUCKET_BOUNDS_MS.length;

  socket.on("message", (msg, rinfo) => {
    const start = performance.now();
    try {
      if (inspector.inspect(msg, msg.length, start) === 0) sender.send(msg, rinfo.address, returnPort);
    } catch (error) {
      // Never reached by design; if a bug slips through, the loop survives and the packet is dropped.
      counters[Counter.sendErrors]++;
      post({ type: "error", message: `inspect threw: ${(error as Error).stack ?? error}` });
    }
    const elapsed = performance.now() - start;
    counters[Counter.processingSum] += elapsed;
    counters[Counter.processingCount]++;
    let bucket = 0;
    while (bucket < lastBucket && elapsed > BUCKET_BOUNDS_MS[bucket]) bucket++;
    counters[histogram + bucket]++;
  });
  socket.on("error", (error) => post({ type: "error", message: `socket: ${error.message}` }));
  socket.bind({ address: options.host, port: options.port, exclusive: true }, () => {
    counters[Counter.bound] = 1;
    post({
      type: "listening",
      address: socket.address().address,
      port: socket.address().port,
      receiveBuffer: socket.getRecvBufferSize(),
      sendBuffer: socket.getSendBufferSize(),
    });
  });

  const heartbeat = setInterval(() => {
    counters[Counter.heartbeat] = Date.now();
  }, HEARTBEAT_MS);
  const sweeper = setInterval(() => inspector.sweep(performance.now()), SWEEP_MS);
  counters[Counter.heartbeat] = Date.now();

  port.on("message", (message: ToWorker) => {
    if (message.type === "policy") {
      inspector.setPolicy(compilePolicy(message.policy, message.generation));
      post({ type: "policy-applied", generation: message.generation, flows: inspector.flowCount });
    } else if (message.type === "close") {
      clearInterval(heartbeat);
      clearInterval(sweeper);
      counters[Counter.bound] = 0;
      socket.close(() => {
        post({ type: "closed" });
        port.close();
      });
    }
  });
}

if (workerData?.role === "dataplane") runWorker(workerData as WorkerOptions);
