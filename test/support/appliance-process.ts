/**
 * Drives a real `stream-intel-appliance` process through its public contract only: flags, UDP 6081,
 * `/healthz`, `/metrics`, signals. Used by the daemon tests and the benchmark.
 */
import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { parsePrometheus, type Sample, sum } from "../../appliance/lab/appliances/fleet.ts";
import { APPLIANCE_NODE_FLAGS } from "../../contracts/appliance-runtime.ts";

export const APPLIANCE_BIN = fileURLToPath(
  new URL("../../appliance/bin/stream-intel-appliance.ts", import.meta.url),
);

export interface ApplianceOptions {
  address: string;
  policyFile: string;
  workers?: number;
  drainSeconds?: number;
  healthPort?: number;
  extraArgs?: string[];
  /** The executable to run (default: the TypeScript entry point; the tests also run the bundle). */
  entry?: string;
  /** Options for node itself, before the entry point (default: the appliance's, APPLIANCE_NODE_FLAGS). */
  nodeArgs?: readonly string[];
  /** `--io-backend` (default: the daemon's own, auto). */
  ioBackend?: "auto" | "native" | "dgram";
  /** What runs node (default: this process's node), e.g. `[qemu-aarch64, -L, sysroot, arm64 node]`. */
  launcher?: readonly string[];
}

// Whatever happens to the test or benchmark process, no appliance outlives it.
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const proc of live) proc.kill("SIGKILL");
});

export class ApplianceProcess {
  readonly proc: ChildProcess;
  readonly address: string;
  readonly healthUrl: string;
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(options: ApplianceOptions) {
    this.address = options.address;
    const healthPort = options.healthPort ?? 8080;
    this.healthUrl = `http://${options.address}:${healthPort}`;
    const [command, ...launcherArgs] = options.launcher ?? [process.execPath];
    this.proc = spawn(
      command,
      [
        ...launcherArgs,
        ...(options.nodeArgs ?? APPLIANCE_NODE_FLAGS),
        options.entry ?? APPLIANCE_BIN,
        "--geneve",
        `${options.address}:6081`,
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
        "--socket-buffer",
        String(8 << 20),
        ...(options.ioBackend ? ["--io-backend", options.ioBackend] : []),
        ...(options.extraArgs ?? []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const collect = (chunk: Buffer) => this.output.push(...chunk.toString().split("\n").filter(Boolean));
    this.proc.stdout?.on("data", collect);
    this.proc.stderr?.on("data", collect);
    this.exited = once(this.proc, "exit").then(([code]) => code as number | null);
    live.add(this.proc);
    this.proc.once("exit", () => live.delete(this.proc));
  }

  async health(): Promise<{ status: number; body: { healthy: boolean; status: string } }> {
    const response = await fetch(`${this.healthUrl}/healthz`);
    return { status: response.status, body: (await response.json()) as { healthy: boolean; status: string } };
  }

  async metrics(): Promise<Sample[]> {
    const response = await fetch(`${this.healthUrl}/metrics`);
    return parsePrometheus(await response.text());
  }

  /** Sum of every sample of `name` whose labels include `labels`. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sum(await this.metrics(), name, labels);
  }

  async waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null)
        throw new Error(
          `appliance exited (${this.proc.exitCode}) waiting for ${what}:\n${this.output.join("\n")}`,
        );
      try {
        if (await condition()) return;
      } catch {
        // not up yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`timed out waiting for ${what}; appliance output:\n${this.output.join("\n")}`);
  }

  waitHealthy(): Promise<void> {
    return this.waitFor(async () => (await this.health()).status === 200, "/healthz 200");
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGKILL");
      await this.exited;
    }
  }
}

/** The GWLB side of the wire: sends GENEVE to an appliance and collects what comes back on :6081. */
export class GwlbPeer {
  readonly socket: dgram.Socket;
  readonly received: Buffer[] = [];
  /** Outer UDP source port of each received datagram. */
  readonly sourcePorts: number[] = [];
  readonly address: string;
  private waiters: (() => void)[] = [];

  private constructor(address: string) {
    this.address = address;
    this.socket = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    this.socket.on("message", (msg, rinfo) => {
      this.received.push(msg);
      this.sourcePorts.push(rinfo.port);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async bind(address: string, port = 6081): Promise<GwlbPeer> {
    const peer = new GwlbPeer(address);
    await new Promise<void>((resolve) => peer.socket.bind(port, address, resolve));
    return peer;
  }

  send(datagram: Buffer, appliance: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(datagram, 6081, appliance, (error) => (error ? reject(error) : resolve())),
    );
  }

  /** Waits until `count` datagrams have come back in all, or the timeout passes; returns how many did. */
  async waitForCount(count: number, timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.length;
  }

  close(): void {
    this.socket.close();
  }
}
