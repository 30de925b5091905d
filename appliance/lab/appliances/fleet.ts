/**
 * The appliances of the lab: real `stream-intel-appliance` processes, one per loopback address, driven
 * only through their process contract (flags, signals, /healthz, /metrics). Their logs go to files in
 * the run directory. Whatever happens to the lab, no appliance outlives it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { APPLIANCE_NODE_FLAGS } from "../../../contracts/appliance-runtime.ts";
import { applianceAddress, GENEVE_PORT, HEALTH_PORT } from "../addressing.ts";

const BIN = fileURLToPath(new URL("../../bin/stream-intel-appliance.ts", import.meta.url));
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    out.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return out;
}

export interface ApplianceHandle {
  index: number;
  address: string;
  healthUrl: string;
  metricsUrl: string;
  process: ChildProcess | null;
  exitCode: number | null;
  starts: number;
}

export class Fleet {
  readonly appliances: ApplianceHandle[];
  private readonly policyFile: string;
  private readonly logDir: string;
  private readonly drainSeconds: number;

  constructor(options: {
    count: number;
    policyFile: string;
    logDir: string;
    drainSeconds: number;
    /** Loopback address of appliance `index` (default applianceAddress). */
    address?: (index: number) => string;
  }) {
    this.policyFile = options.policyFile;
    this.logDir = options.logDir;
    this.drainSeconds = options.drainSeconds;
    this.appliances = Array.from({ length: options.count }, (_, index) => {
      const address = (options.address ?? applianceAddress)(index);
      return {
        index,
        address,
        healthUrl: `http://${address}:${HEALTH_PORT}/healthz`,
        metricsUrl: `http://${address}:${HEALTH_PORT}/metrics`,
        process: null,
        exitCode: null,
        starts: 0,
      };
    });
    installExitHook();
  }

  start(index: number): void {
    const appliance = this.appliances[index];
    appliance.starts++;
    const log = createWriteStream(path.join(this.logDir, `appliance-${index + 1}.log`), { flags: "a" });
    const child = spawn(
      process.execPath,
      [
        ...APPLIANCE_NODE_FLAGS,
        BIN,
        "--geneve",
        `${appliance.address}:${GENEVE_PORT}`,
        "--health",
        `${appliance.address}:${HEALTH_PORT}`,
        "--policy",
        this.policyFile,
        "--drain-seconds",
        String(this.drainSeconds),
        "--emf-interval",
        "0",
        "--stall-seconds",
        "1",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    live.add(child);
    appliance.process = child;
    appliance.exitCode = null;
    child.once("exit", (code) => {
      live.delete(child);
      appliance.exitCode = code;
      if (appliance.process === child) appliance.process = null;
    });
  }

  startAll(): void {
    for (let i = 0; i < this.appliances.length; i++) this.start(i);
  }

  async waitHealthy(index: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const appliance = this.appliances[index];
    while (Date.now() < deadline) {
      try {
        if ((await fetch(appliance.healthUrl)).status === 200) return;
      } catch {
        // not listening yet
      }
      if (!appliance.process)
        throw new Error(
          `appliance ${index + 1} exited (${appliance.exitCode}); see its log in ${this.logDir}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(
      `appliance ${index + 1} not healthy after ${timeoutMs} ms; see its log in ${this.logDir}`,
    );
  }

  /** SIGKILL: the instance is gone, as when a host fails. */
  kill(index: number): void {
    this.appliances[index].process?.kill("SIGKILL");
  }

  /** SIGTERM: the daemon drains (503, keeps forwarding) and exits 0. Resolves with its exit code. */
  terminate(index: number): Promise<number | null> {
    const child = this.appliances[index].process;
    if (!child) return Promise.resolve(this.appliances[index].exitCode);
    return new Promise((resolve) => {
      child.once("exit", (code) => resolve(code));
      child.kill("SIGTERM");
    });
  }

  /**
   * Caps the appliance's CPU at `percent` of one core with a cgroup (v1 cpu controller, or v2), as a
   * starved or noisy-neighbour host would. Returns false where cgroups cannot be written (not root,
   * no controller); `percent` null lifts the cap.
   */
  limitCpu(index: number, percent: number | null): boolean {
    const pid = this.appliances[index].process?.pid;
    const v1 = "/sys/fs/cgroup/cpu";
    const v2 = "/sys/fs/cgroup";
    try {
      if (existsSync(`${v1}/cpu.cfs_quota_us`)) {
        const group = `${v1}/stream-intel-lab-${index + 1}`;
        mkdirSync(group, { recursive: true });
        writeFileSync(`${group}/cpu.cfs_period_us`, "100000");
        writeFileSync(
          `${group}/cpu.cfs_quota_us`,
          percent === null ? "-1" : String(Math.max(1000, Math.round(percent * 1000))),
        );
        if (pid !== undefined && percent !== null) writeFileSync(`${group}/cgroup.procs`, String(pid));
        return true;
      }
      if (existsSync(`${v2}/cgroup.controllers`)) {
        const group = `${v2}/stream-intel-lab-${index + 1}`;
        mkdirSync(group, { recursive: true });
        writeFileSync(
          `${group}/cpu.max`,
          percent === null ? "max 100000" : `${Math.max(1000, Math.round(percent * 1000))} 100000`,
        );
        if (pid !== undefined && percent !== null) writeFileSync(`${group}/cgroup.procs`, String(pid));
        return true;
      }
    } catch {
      return false;
    }
    return false;
  }

  async metrics(index: number): Promise<Sample[]> {
    try {
      const response = await fetch(this.appliances[index].metricsUrl, { signal: AbortSignal.timeout(1000) });
      return parsePrometheus(await response.text());
    } catch {
      return [];
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.appliances.map(
        (a) =>
          new Promise<void>((resolve) => {
            if (!a.process) return resolve();
            a.process.once("exit", () => resolve());
            a.process.kill("SIGKILL");
          }),
      ),
    );
  }
}

export function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}
