/**
 * What both receive loops (native-loop.ts, dgram-loop.ts) share: the contract the worker drives them
 * through, the largest datagram they take, and how they count what they did in the shared counters.
 */
import { Counter, DROP_BASE, HISTOGRAM_BASE, PROCESSING_BUCKETS, reasonIndex } from "../counters.ts";
import type { Inspector } from "../inspector.ts";

/**
 * Largest GENEVE datagram taken (one native receive slot): GWLB's 8,500-byte inner MTU plus the GENEVE
 * header and up to 252 bytes of options fits with room to spare. Larger ones are `datagram_oversize`
 * drops on both backends, so the two behave the same.
 */
export const MAX_DATAGRAM_BYTES = 9216;

export type IoBackend = "native" | "dgram";

export interface LoopOptions {
  host: string;
  port: number;
  reusePort: boolean;
  socketBufferBytes: number;
  returnPort: number;
  raw: boolean;
}

export interface LoopContext {
  inspector: Inspector;
  counters: Float64Array;
  /** Something went wrong that the operator should read about (rate-limited by the loop). */
  onError(message: string): void;
}

export interface ListeningInfo {
  address: string;
  port: number;
  receiveBuffer: number;
  sendBuffer: number;
}

export interface ReceiveLoop {
  readonly backend: IoBackend;
  close(done: () => void): void;
}

const OVERSIZE = DROP_BASE + reasonIndex("datagram_oversize");
const BUCKET_BOUNDS_MS = PROCESSING_BUCKETS.map((s) => s * 1000);
const LAST_BUCKET = BUCKET_BOUNDS_MS.length;

/** What `inspectDatagram` decided. */
export const Verdict = { oversize: -1, drop: 0, forward: 1 } as const;

/**
 * One received datagram through the inspector: `Verdict.forward` to return it, `drop` when the
 * inspector refused it (or threw: never by design, but the loop must survive a bug), `oversize` when it
 * was too large to inspect whole (counted as received and dropped).
 */
export function inspectDatagram(
  context: LoopContext,
  buf: Buffer,
  length: number,
  now: number,
  report: (message: string) => void,
): number {
  if (length > MAX_DATAGRAM_BYTES) {
    countOversize(context.counters, length);
    return Verdict.oversize;
  }
  try {
    return context.inspector.inspect(buf, length, now) === 0 ? Verdict.forward : Verdict.drop;
  } catch (error) {
    context.counters[Counter.sendErrors]++;
    report(`inspect threw: ${(error as Error).stack ?? error}`);
    return Verdict.drop;
  }
}

/** A datagram too large to inspect whole: received, counted, never returned. */
function countOversize(counters: Float64Array, length: number): void {
  counters[Counter.received]++;
  counters[Counter.bytesReceived] += length;
  counters[OVERSIZE]++;
}

/** One datagram's processing time (inspection plus its share of the send) into the histogram. */
export function recordProcessing(counters: Float64Array, elapsedMs: number): void {
  counters[Counter.processingSum] += elapsedMs;
  counters[Counter.processingCount]++;
  let bucket = 0;
  while (bucket < LAST_BUCKET && elapsedMs > BUCKET_BOUNDS_MS[bucket]) bucket++;
  counters[HISTOGRAM_BASE + bucket]++;
}
