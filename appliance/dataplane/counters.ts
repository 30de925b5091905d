/**
 * Counters a receive loop shares with the control thread: one Float64Array slice per worker inside a
 * SharedArrayBuffer. Each slice has one writer (its worker), so no atomics are needed; the control
 * thread only reads (an aligned 64-bit read is never torn on the platforms we ship to).
 */
import { DROP_REASONS } from "../../contracts/appliance-metrics.ts";
import { MAX_RULES } from "../../contracts/policy.ts";

export const Counter = {
  received: 0,
  bytesReceived: 1,
  forwarded: 2,
  bytesForwarded: 3,
  sendErrors: 4,
  flowsCreated: 5,
  flowsEvicted: 6,
  activeFlows: 7,
  eventsSuppressed: 8,
  /** Date.now() of the loop's last timer tick: a stale value means the loop is stuck. */
  heartbeat: 9,
  policyGeneration: 10,
  processingSum: 11,
  processingCount: 12,
  bound: 13,
  /** The loop's I/O backend (IoBackendCode), set when it is listening. */
  ioBackend: 14,
  /** How the loop returns datagrams (SenderCode), set when it is listening. */
  sender: 15,
} as const;

/** Values of Counter.ioBackend (0 = not listening yet). */
export const IoBackendCode = { native: 1, dgram: 2 } as const;
/** Values of Counter.sender. */
export const SenderCode = { udp: 1, raw: 2 } as const;

/** Upper bounds, in seconds, of the processing-time histogram (one inspect + send call). */
export const PROCESSING_BUCKETS = [
  1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2,
] as const;

export const DROP_BASE = 16;
export const ALERT_BASE = DROP_BASE + DROP_REASONS.length;
export const RULE_BASE = ALERT_BASE + DROP_REASONS.length;
export const HISTOGRAM_BASE = RULE_BASE + MAX_RULES;
/** Slots per worker: the histogram has one more bucket than bounds (+Inf). */
export const SLOTS_PER_WORKER = HISTOGRAM_BASE + PROCESSING_BUCKETS.length + 1;

export function allocateCounters(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(workers * SLOTS_PER_WORKER * Float64Array.BYTES_PER_ELEMENT);
}

export function workerCounters(buffer: SharedArrayBuffer, worker: number): Float64Array {
  return new Float64Array(
    buffer,
    worker * SLOTS_PER_WORKER * Float64Array.BYTES_PER_ELEMENT,
    SLOTS_PER_WORKER,
  );
}

/** Index of a drop reason in DROP_REASONS (and so in the counter arrays). */
export function reasonIndex(reason: (typeof DROP_REASONS)[number]): number {
  return DROP_REASONS.indexOf(reason);
}

/**
 * A status -> reason table as a plain array of reason indexes (index = status, 0 for ok), the form the
 * per-packet path reads.
 */
export function reasonIndexes(table: Readonly<Record<number, (typeof DROP_REASONS)[number]>>): number[] {
  const indexes = [0];
  for (const [status, reason] of Object.entries(table)) indexes[Number(status)] = reasonIndex(reason);
  return indexes;
}
