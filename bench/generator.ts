/**
 * Drives the C load generator (bench/generator.c): builds it, writes its packet templates once per
 * flow count and size, and runs one step of it, pinned to the generator's cores. Each flow's packet
 * count lives in a state file per target, so that every flow is one continuous RTP/MPEG-TS stream for
 * the whole run, whatever the steps.
 */
import { type ChildProcess, execFile, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { GENEVE_PORT } from "../contracts/gwlb.ts";
import { PSI_EVERY, type TemplateFiles, TIMESTAMP_STEP, writeTemplates } from "./template.ts";

/** `bench/<name>.c`, compiled for this host into a temporary directory. */
export function buildC(name: string): string {
  const out = path.join(mkdtempSync(path.join(tmpdir(), `si-bench-${name}-`)), name);
  execFileSync("cc", ["-O2", "-Wall", "-o", out, fileURLToPath(new URL(`./${name}.c`, import.meta.url))], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  return out;
}

// A run interrupted mid-step (SIGINT, a crash) stops its generator too.
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface GeneratorStep {
  /** Address the generator sends from and receives returns on (the GENEVE port). */
  bind: string;
  target: string;
  /** Datagrams per second, 0 = as fast as it can. */
  rate: number;
  seconds: number;
  flows: number;
  tsPackets?: number;
  /** First inner source port (the flows' 5-tuples follow from it). */
  basePort?: number;
  warmupSeconds?: number;
  /** How long returns are still read after the last send. */
  drainSeconds?: number;
}

export interface GeneratorReport {
  sent: number;
  errors: number;
  seconds: number;
  received: number;
  /** Returns that were not, byte for byte, a datagram this generator sent. */
  mismatched: number;
  /** Returns of datagrams an earlier step sent (not counted in `received`). */
  late: number;
  /** ns since the step's start of the first and the last return. */
  firstAt: number;
  lastAt: number;
  latencyMicros: { p50: number; p99: number; p999: number; max: number; samples: number };
}

/**
 * Each datagram size has 5-tuples of its own: a flow that changed its TS packets per datagram mid-stream
 * would jump its continuity counters (and, with a fresh state, restart its RTP sequence: stale drops).
 */
const defaultBasePort = (tsPackets: number) => (tsPackets === 7 ? 20_000 : 30_000 + 100 * tsPackets);

export class Generator {
  readonly binary: string;
  readonly dir: string;
  private readonly cpus: string | null;
  private readonly templateSets = new Map<string, TemplateFiles>();

  /** `cpus`: a taskset list to pin the generator to, or null. */
  constructor(cpus: string | null, binary = buildC("generator")) {
    this.binary = binary;
    this.cpus = cpus;
    this.dir = mkdtempSync(path.join(tmpdir(), "si-bench-traffic-"));
  }

  /** Templates for at least `flows` flows (the first `flows` of a larger set are the same flows). */
  templates(flows: number, tsPackets: number, basePort: number): TemplateFiles {
    const key = `${tsPackets}:${basePort}`;
    const known = this.templateSets.get(key);
    if (known && known.flows >= flows) return known;
    const made = writeTemplates(this.dir, flows, tsPackets, basePort);
    this.templateSets.set(key, made);
    return made;
  }

  args(step: GeneratorStep): string[] {
    const tsPackets = step.tsPackets ?? 7;
    const basePort = step.basePort ?? defaultBasePort(tsPackets);
    const files = this.templates(step.flows, tsPackets, basePort);
    const l = files.layout;
    const state = path.join(this.dir, `state-${step.target}-${tsPackets}-${basePort}.bin`);
    const options: Record<string, string | number> = {
      bind: step.bind,
      target: step.target,
      port: GENEVE_PORT,
      templates: files.templates,
      psi: files.psi,
      flows: step.flows,
      size: l.size,
      "seq-offset": l.sequence,
      "timestamp-offset": l.timestamp,
      "ts-offset": l.ts,
      "ts-packets": l.tsPackets,
      "cc-offset": l.continuity,
      "stamp-offset": l.stamp,
      "psi-every": PSI_EVERY,
      "timestamp-step": TIMESTAMP_STEP,
      state,
      rate: step.rate,
      seconds: step.seconds,
      warmup: step.warmupSeconds ?? 0.5,
      drain: step.drainSeconds ?? 0.5,
    };
    return Object.entries(options).flatMap(([k, v]) => [`--${k}`, String(v)]);
  }

  /** One step: sends for `seconds`, reads returns until `drainSeconds` after, reports. */
  run(step: GeneratorStep): Promise<GeneratorReport> {
    const argv = [this.binary, ...this.args(step)];
    const [command, ...args] = this.cpus ? ["taskset", "-c", this.cpus, ...argv] : argv;
    return new Promise((resolve, reject) => {
      const child = execFile(command, args, { encoding: "utf8" }, (error, stdout, stderr) => {
        running.delete(child);
        if (error) reject(new Error(`generator failed: ${stderr.trim() || error.message}`, { cause: error }));
        else resolve(JSON.parse(stdout) as GeneratorReport);
      });
      running.add(child);
    });
  }
}
