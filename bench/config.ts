/**
 * The benchmark's settings: command-line flags, the sweep's loads, and which cores the systems under
 * test and the load generator get.
 */
import { execFileSync } from "node:child_process";
import os from "node:os";
import { parseArgs } from "node:util";
import pc from "picocolors";

export interface Config {
  quick: boolean;
  stepSeconds: number;
  /** Offered loads of the main sweep, packets/s; 0 = the generator's maximum. */
  rates: number[];
  skipMemory: boolean;
  /** Run every contestant on loopback even where namespaces are available. */
  loopback: boolean;
  /** Steer each veth's receive work to its receiver's core (RPS; costly on VMs, see docs/benchmark.md). */
  rps: boolean;
  /** Core of the systems under test, cores of the generator (taskset lists), or null: nothing pinned. */
  sutCpu: string | null;
  loadCpus: string | null;
}

export const FLOWS = 16;
export const STREAM_COUNTS = [50, 100, 150, 200, 250, 300, 350];
export const STREAM_REPEATS = 3;
export const LOSSLESS = 0.001;
/** A step the generator actually offered: it sent at least this share of the rate asked of it. */
export const OFFERED_IN_FULL = 0.95;
/** Packets/s of `streams` 10 Mbit/s MPEG-TS streams, 7 TS packets per RTP packet. */
export const streamsPps = (streams: number) => Math.round((streams * 10_000_000) / (188 * 7 * 8));

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function readConfig(argv = process.argv.slice(2)): Config {
  const { values: flags } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      rates: { type: "string" },
      seconds: { type: "string" },
      "skip-memory": { type: "boolean", default: false },
      loopback: { type: "boolean", default: false },
      rps: { type: "boolean", default: false },
    },
  });
  const quick = flags.quick ?? false;
  // The system under test gets one core to itself and the load generator the others, so that neither
  // steals the other's time slices. Without taskset, or with one core, nothing is pinned.
  const cpus = os.cpus().length;
  const pinned = cpus > 1 && hasTaskset();
  return {
    quick,
    stepSeconds: flags.seconds ? Number(flags.seconds) : quick ? 2.5 : 4,
    rates: flags.rates
      ? flags.rates.split(",").map(Number)
      : quick
        ? [50_000, 100_000, 200_000, 300_000, 0]
        : [50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 350_000, 400_000, 0],
    skipMemory: flags["skip-memory"] ?? false,
    loopback: flags.loopback ?? false,
    rps: flags.rps ?? false,
    sutCpu: pinned ? String(cpus - 1) : null,
    loadCpus: pinned ? (cpus > 2 ? `0-${cpus - 2}` : "0") : null,
  };
}

/**
 * Every thread of `pid` on `cpus` (taskset -a); a no-op when nothing is pinned. A process that is gone
 * already is left to the caller, which finds it exited.
 */
export function pin(pid: number | undefined, cpus: string | null): void {
  if (pid === undefined || cpus === null) return;
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
  } catch {
    log(`could not pin ${pid} to ${cpus}`);
  }
}

export const log = (line: string) =>
  process.stderr.write(`${pc.dim(new Date().toISOString().slice(11, 19))} ${line}\n`);
