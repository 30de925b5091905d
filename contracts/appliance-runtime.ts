/**
 * Options the appliance's `node` must be started with. V8 reads them only when the process starts
 * (`v8.setFlagsFromString` does not reach the heaps of worker threads, where the receive loops run), so
 * every launcher passes them: the systemd unit, the bin's shebang, the lab, the tests and the benchmark.
 *
 * `--single-threaded-gc`: by default V8 splits each young-generation collection across helper threads
 * and the collecting thread waits for all of them. When a helper waits for a CPU (behind the
 * generator here, behind other processes on an instance, or behind the loop itself on one core), the
 * receive loop stalls for a scheduler time slice: p99 5.6–7.5 ms at 50k packets/s against 1.3–2.4 ms
 * with the collections on the loop's own thread, which cost it about 0.8 ms every 110 ms at that load
 * (`npm run bench`; README "Benchmark"). The data plane keeps its state in typed arrays, so the
 * old-generation marking that also moves onto the main thread has little to walk.
 */
export const APPLIANCE_NODE_FLAGS = ["--single-threaded-gc"] as const;

/** Flags of APPLIANCE_NODE_FLAGS this process was started without (`--single-threaded` implies all). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  if (execArgv.includes("--single-threaded")) return [];
  return APPLIANCE_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
