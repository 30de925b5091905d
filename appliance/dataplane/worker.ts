/**
 * One receive loop: a UDP socket on the GENEVE port (SO_REUSEPORT when there are several, so the kernel
 * keeps each GWLB flow, whose outer source port is fixed, on one loop), the inspector, and the way back.
 * The socket I/O is the native addon's batched loop (io/native-loop.ts) or Node's dgram (io/dgram-loop.ts),
 * as the control thread decided. Runs in a worker thread; talks to the control thread only through
 * messages and the shared counters.
 */
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import type { Policy } from "../../contracts/policy.ts";
import { compilePolicy } from "./compiled-policy.ts";
import { Counter, IoBackendCode, SenderCode, workerCounters } from "./counters.ts";
import { Inspector, type SecurityEvent } from "./inspector.ts";
import { startDgramLoop } from "./io/dgram-loop.ts";
import { loadNativeIo } from "./io/native-addon.ts";
import { startNativeLoop } from "./io/native-loop.ts";
import type { IoBackend, ListeningInfo, LoopContext, LoopOptions, ReceiveLoop } from "./io/receive-loop.ts";
import type { SenderKind } from "./sender.ts";

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
  backend: IoBackend;
  sender: SenderKind;
}

export type ToWorker = { type: "policy"; policy: Policy; generation: number } | { type: "close" };
export type FromWorker =
  | {
      type: "listening";
      address: string;
      port: number;
      receiveBuffer: number;
      sendBuffer: number;
      backend: IoBackend;
      sender: SenderKind;
    }
  | { type: "policy-applied"; generation: number; flows: number }
  | { type: "event"; event: SecurityEvent }
  | { type: "error"; message: string }
  | { type: "closed" };

const HEARTBEAT_MS = 100;
const SWEEP_MS = 250;

export function runWorker(options: WorkerOptions): void {
  const port = parentPort;
  if (!port) throw new Error("the data plane must run in a worker thread");
  const post = (message: FromWorker) => port.postMessage(message);
  const counters = workerCounters(options.counters, options.index);
  const inspector = new Inspector(counters, (event) => post({ type: "event", event }));
  const context: LoopContext = {
    inspector,
    counters,
    onError: (message) => post({ type: "error", message }),
  };
  const loopOptions: LoopOptions = {
    host: options.host,
    port: options.port,
    reusePort: options.reusePort,
    socketBufferBytes: options.socketBufferBytes,
    returnPort: options.returnPort,
    raw: options.sender === "raw",
  };
  const listening = (info: ListeningInfo, backend: IoBackend) => {
    counters[Counter.ioBackend] = IoBackendCode[backend];
    counters[Counter.sender] = SenderCode[options.sender];
    counters[Counter.bound] = 1;
    post({ type: "listening", ...info, backend, sender: options.sender });
  };

  let loop: ReceiveLoop;
  if (options.backend === "native") {
    const native = loadNativeIo();
    // The control thread loaded it a moment ago; a failure here is a broken install, not a fallback.
    if (!native.io) throw new Error(native.reason, { cause: native.cause });
    const started = startNativeLoop(native.io, loopOptions, context);
    loop = started.loop;
    listening(started.info, "native");
  } else {
    loop = startDgramLoop(loopOptions, context, (info) => listening(info, "dgram"));
  }

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
      loop.close(() => {
        post({ type: "closed" });
        port.close();
      });
    }
  });
}

if (workerData?.role === "dataplane") runWorker(workerData as WorkerOptions);
