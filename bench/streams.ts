/**
 * Streams per receive loop: the largest count of 10 Mbit/s streams one receive loop carries with no
 * loss and p99 added latency < 1 ms over the batched C echo (the ceiling).
 */
import { percentiles } from "../appliance/lab/sink/sink.ts";
import { log, STREAM_COUNTS, STREAM_REPEATS, streamsPps } from "./config.ts";
import { type Bench, type Running, withAppliance, withCEcho } from "./contestants.ts";
import { type Step, step } from "./steps.ts";

export interface StreamsResult {
  streams: number;
  pps: number;
  /** Worst loss of the appliance's repetitions. */
  loss: number;
  /** Medians over the repetitions, µs. */
  p99: number;
  echoP99: number;
  addedP99: number;
  /** This count and every smaller one passed. */
  ok: boolean;
}

const median = (values: number[]) => percentiles(values).p50;

/** STREAM_REPEATS pairs of back-to-back steps (C echo, appliance) at one count, compared by medians. */
async function measureCount(bench: Bench, echo: Running, appliance: Running, streams: number) {
  const load = { rate: streamsPps(streams), flows: streams };
  const echoSteps: Step[] = [];
  const applianceSteps: Step[] = [];
  for (let i = 0; i < STREAM_REPEATS; i++) {
    echoSteps.push(await step(bench, echo, load));
    applianceSteps.push(await step(bench, appliance, load));
  }
  const p99 = median(applianceSteps.map((s) => s.latencyMicros.p99));
  const echoP99 = median(echoSteps.map((s) => s.latencyMicros.p99));
  const loss = Math.max(...applianceSteps.map((s) => s.loss));
  const ok = loss === 0 && p99 - echoP99 < 1000;
  log(
    `streams: ${streams} × 10 Mbit/s = ${load.rate} pps → loss ${(loss * 100).toFixed(3)}%, p99 ${applianceSteps.map((s) => s.latencyMicros.p99).join("/")} µs vs C echo ${echoSteps.map((s) => s.latencyMicros.p99).join("/")} µs: median added ${p99 - echoP99} µs ${ok ? "ok" : "over"}`,
  );
  return { streams, pps: load.rate, loss, p99, echoP99, addedP99: p99 - echoP99, ok };
}

/**
 * On a shared two-core host the p99 of a single step wanders by a millisecond or more from run to run
 * for the echo as much as for the appliance, so each count is measured as pairs (both processes up
 * throughout) and the medians are compared. The answer is the largest count for which that count and
 * every smaller one pass (a lucky step above a failed one does not count).
 */
export async function streamsPerWorker(bench: Bench): Promise<{ largest: number; results: StreamsResult[] }> {
  const results: StreamsResult[] = [];
  await withCEcho(bench, (echo) =>
    // As the instances run: one receive loop with a CPU of its own (--cpu-affinity auto).
    withAppliance(
      bench,
      async (_, appliance) => {
        // An instance serves for days: the first seconds after start (code still being optimised)
        // are not its steady state, so a warm-up pair runs first and is not counted.
        const warmUp = { rate: streamsPps(STREAM_COUNTS[0]), flows: STREAM_COUNTS[0] };
        await step(bench, echo, warmUp);
        await step(bench, appliance, warmUp);
        let passing = true;
        for (const streams of STREAM_COUNTS) {
          const result = await measureCount(bench, echo, appliance, streams);
          passing &&= result.ok;
          results.push({ ...result, ok: passing });
          if (!passing && streams >= 250) break; // nothing above a failed count can count
        }
      },
      { affinity: true },
    ),
  );
  const largest = results.filter((r) => r.ok).reduce((m, r) => Math.max(m, r.streams), 0);
  return { largest, results };
}
