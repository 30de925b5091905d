/**
 * One real `stream-intel-appliance` process, driven through its public contract only: flags, UDP
 * 6081, `/healthz`, `/metrics`, signals. The lab's fleet, the daemon tests, the fuzzer and the
 * benchmark all start their appliances here. Whatever happens to the process that started them, no
 * appliance outlives it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { APPLIANCE_NODE_FLAGS } from "../../../contracts/appliance-runtime.ts";
import { GENEVE_PORT, HEALTH_PORT } from "../../../contracts/gwlb.ts";
import { parsePrometheus, type Sample, sum } from "./prometheus.ts";

export const APPLIANCE_BIN = fileURLToPath(new URL("../../bin/stream-intel-appliance.ts", import.meta.url));

export interface ApplianceOptions {
  address: string;
  policyFile: string;
  workers?: number;
  drainSeconds?: number;
  healthPort?: number;
  /** `--socket-buffer` (default 8 MiB); null leaves the daemon's own default. */
  socketBuffer?: number | null;
  extraArgs?: string[];
  /** The executable to run (default: the TypeScript entry point; the tests also run the bundle). */
  entry?: string;
  /** Options for node itself, before the entry point (default: the appliance's, APPLIANCE_NODE_FLAGS). */
  nodeArgs?: readonly string[];
  /** `--io-backend` (default: the daemon's own, auto). */
  ioBackend?: "auto" | "native" | "dgram";
  /** What runs node (default: this process's node), e.g. `[qemu-aarch64, -L, sysroot, arm64 node]`. */
  launcher?: readonly string[];
  /** Appends stdout and stderr to this file; without it their lines are kept in `output`. */
  logFile?: string;
  /** How errors name this appliance (default "appliance"). */
  name?: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const proc of live) proc.kill("SIGKILL");
    });
  }
  live.add(child);
  child.once("exit", () => live.delete(child));
}

function daemonArgs(options: ApplianceOptions, healthPort: number): string[] {
  const socketBuffer = options.socketBuffer === undefined ? 8 << 20 : options.socketBuffer;
  return [
    "--geneve",
    `${options.address}:${GENEVE_PORT}`,
    "--health",
    `${options.address}:${healthPort}`,
    "--policy",
    options.policyFile,
    "--workers",
    String(options.workers ?? 1),
    "--drain-seconds",
    String(options.drainSeconds ?? 1),
    "--emf-interval",
    "0",
    ...(socketBuffer === null ? [] : ["--socket-buffer", String(socketBuffer)]),
    ...(options.ioBackend ? ["--io-backend", options.ioBackend] : []),
    ...(options.extraArgs ?? []),
  ];
}

export class ApplianceProcess {
  readonly proc: ChildProcess;
  readonly address: string;
  /** Base URL of the health server: `/healthz` and `/metrics` hang off it. */
  readonly serverUrl: string;
  /** stdout and stderr lines, when they do not go to a log file. */
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly name: string;
  private readonly logFile: string | undefined;

  constructor(options: ApplianceOptions) {
    this.address = options.address;
    this.name = options.name ?? "appliance";
    this.logFile = options.logFile;
    const healthPort = options.healthPort ?? HEALTH_PORT;
    this.serverUrl = `http://${options.address}:${healthPort}`;
    const [command, ...launcherArgs] = options.launcher ?? [process.execPath];
    this.proc = spawn(
      command,
      [
        ...launcherArgs,
        ...(options.nodeArgs ?? APPLIANCE_NODE_FLAGS),
        options.entry ?? APPLIANCE_BIN,
        ...daemonArgs(options, healthPort),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    if (options.logFile) {
      const log = createWriteStream(options.logFile, { flags: "a" });
      this.proc.stdout?.pipe(log);
      this.proc.stderr?.pipe(log);
    } else {
      const collect = (chunk: Buffer) => this.output.push(...chunk.toString().split("\n").filter(Boolean));
      this.proc.stdout?.on("data", collect);
      this.proc.stderr?.on("data", collect);
    }
    this.exited = once(this.proc, "exit").then(([code]) => code as number | null);
    track(this.proc);
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async health(): Promise<{ status: number; body: { healthy: boolean; status: string } }> {
    const response = await fetch(`${this.serverUrl}/healthz`);
    return { status: response.status, body: (await response.json()) as { healthy: boolean; status: string } };
  }

  async metrics(timeoutMs?: number): Promise<Sample[]> {
    const signal = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
    const response = await fetch(`${this.serverUrl}/metrics`, { signal });
    return parsePrometheus(await response.text());
  }

  /** Sum of every sample of `name` whose labels include `labels`. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sum(await this.metrics(), name, labels);
  }

  /** Where to look when something went wrong: the output so far, or the log file. */
  private logs(): string {
    return this.logFile
      ? `see its log in ${this.logFile}`
      : `${this.name} output:\n${this.output.join("\n")}`;
  }

  async waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(
          `${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) waiting for ${what}; ${this.logs()}`,
        );
      try {
        if (await condition()) return;
      } catch {
        // not up yet: the next round asks again
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`timed out waiting for ${what} after ${timeoutMs} ms; ${this.logs()}`);
  }

  waitHealthy(timeoutMs?: number): Promise<void> {
    return this.waitFor(async () => (await this.health()).status === 200, "/healthz 200", timeoutMs);
  }

  /** SIGKILL: the instance is gone, as when a host fails. */
  kill(): void {
    if (this.running) this.proc.kill("SIGKILL");
  }

  /** SIGTERM: the daemon drains (503, keeps forwarding) and exits 0. Resolves with its exit code. */
  terminate(): Promise<number | null> {
    if (this.running) this.proc.kill("SIGTERM");
    return this.exited;
  }

  /** SIGKILL, and wait until the process is gone. */
  async stop(): Promise<void> {
    this.kill();
    await this.exited;
  }
}
