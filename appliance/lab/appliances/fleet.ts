/**
 * The appliances of the lab: real `stream-intel-appliance` processes, one per loopback address, each
 * an ApplianceProcess whose log goes to a file in the run directory. An appliance that is killed or
 * drained keeps its slot (address, index) for the replacement the lab starts in it.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { HEALTH_PORT } from "../../../contracts/gwlb.ts";
import { applianceAddress } from "../addressing.ts";
import { ApplianceProcess } from "./appliance-process.ts";
import type { Sample } from "./prometheus.ts";

export interface ApplianceHandle {
  index: number;
  address: string;
  /** The full `/healthz` URL, what the emulator's health checks ask. */
  healthUrl: string;
  /** The running process; null once it has exited. */
  process: ApplianceProcess | null;
  exitCode: number | null;
  starts: number;
}

/** How long a metrics scrape may take before the appliance counts as not answering. */
const SCRAPE_TIMEOUT_MS = 1000;

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
        process: null,
        exitCode: null,
        starts: 0,
      };
    });
  }

  start(index: number): void {
    const appliance = this.appliances[index];
    appliance.starts++;
    const child = new ApplianceProcess({
      address: appliance.address,
      policyFile: this.policyFile,
      drainSeconds: this.drainSeconds,
      socketBuffer: null,
      extraArgs: ["--stall-seconds", "1"],
      logFile: path.join(this.logDir, `appliance-${index + 1}.log`),
      name: `appliance ${index + 1}`,
    });
    appliance.process = child;
    appliance.exitCode = null;
    void child.exited.then((code) => {
      appliance.exitCode = code;
      if (appliance.process === child) appliance.process = null;
    });
  }

  startAll(): void {
    for (let i = 0; i < this.appliances.length; i++) this.start(i);
  }

  async waitHealthy(index: number, timeoutMs = 15_000): Promise<void> {
    const appliance = this.appliances[index];
    if (!appliance.process)
      throw new Error(`appliance ${index + 1} exited (${appliance.exitCode}); see its log in ${this.logDir}`);
    await appliance.process.waitHealthy(timeoutMs);
  }

  /** SIGKILL: the instance is gone, as when a host fails. */
  kill(index: number): void {
    this.appliances[index].process?.kill();
  }

  /** SIGTERM: the daemon drains (503, keeps forwarding) and exits 0. Resolves with its exit code. */
  terminate(index: number): Promise<number | null> {
    const appliance = this.appliances[index];
    return appliance.process ? appliance.process.terminate() : Promise.resolve(appliance.exitCode);
  }

  /**
   * Caps the appliance's CPU at `percent` of one core with a cgroup (v1 cpu controller, or v2), as a
   * starved or noisy-neighbour host would. Returns false where cgroups cannot be written (not root,
   * no controller); `percent` null lifts the cap.
   */
  limitCpu(index: number, percent: number | null): boolean {
    const pid = this.appliances[index].process?.proc.pid;
    const v1 = "/sys/fs/cgroup/cpu";
    const v2 = "/sys/fs/cgroup";
    const quotaUs = percent === null ? null : Math.max(1000, Math.round(percent * 1000));
    const join = (group: string) => {
      if (pid !== undefined && percent !== null) writeFileSync(`${group}/cgroup.procs`, String(pid));
    };
    try {
      if (existsSync(`${v1}/cpu.cfs_quota_us`)) {
        const group = `${v1}/stream-intel-lab-${index + 1}`;
        mkdirSync(group, { recursive: true });
        writeFileSync(`${group}/cpu.cfs_period_us`, "100000");
        writeFileSync(`${group}/cpu.cfs_quota_us`, quotaUs === null ? "-1" : String(quotaUs));
        join(group);
        return true;
      }
      if (existsSync(`${v2}/cgroup.controllers`)) {
        const group = `${v2}/stream-intel-lab-${index + 1}`;
        mkdirSync(group, { recursive: true });
        writeFileSync(`${group}/cpu.max`, quotaUs === null ? "max 100000" : `${quotaUs} 100000`);
        join(group);
        return true;
      }
    } catch {
      // Not root, or a read-only cgroup mount: the caller reports the drill as skipped.
      return false;
    }
    return false;
  }

  /** The appliance's samples; none while it is down or not answering (a dashboard shows it as down). */
  async metrics(index: number): Promise<Sample[]> {
    const appliance = this.appliances[index].process;
    if (!appliance) return [];
    try {
      return await appliance.metrics(SCRAPE_TIMEOUT_MS);
    } catch {
      return [];
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.appliances.map((a) => a.process?.stop()));
  }
}
