/**
 * The media tools the pipeline runs (ffmpeg, srt-live-transmit): started with their output in a log
 * file of the run directory, and never outliving the lab, whatever happens to it.
 */
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import path from "node:path";

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** The tools the pipeline needs that are not on the PATH (Debian: ffmpeg, srt-tools, fonts-dejavu-core). */
export function missingTools(): string[] {
  const probes: [string, string[]][] = [
    ["ffmpeg", ["-hide_banner", "-version"]],
    ["srt-live-transmit", ["-version"]],
  ];
  return probes
    .filter(([tool, args]) => spawnSync(tool, args, { stdio: "ignore", timeout: 5000 }).error !== undefined)
    .map(([tool]) => tool);
}

export interface Tool {
  readonly child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string | null>;
  stop(): void;
}

/**
 * Starts `command` with its stderr (and, with `stdout: "log"`, its stdout) appended to
 * `<logDir>/<name>.log`. `stdout: "pipe"` leaves stdout to the caller; `stdin` may be another tool's
 * stdout, which the child then reads directly.
 */
export function startTool(
  command: string,
  args: readonly string[],
  log: { dir: string; name: string },
  io: { stdin?: "pipe" | "ignore" | NodeJS.ReadableStream; stdout?: "log" | "pipe" } = {},
): Tool {
  const stdio: SpawnOptions["stdio"] = [io.stdin ?? "ignore", "pipe", "pipe"] as SpawnOptions["stdio"];
  const child = spawn(command, args, { stdio });
  const file = createWriteStream(path.join(log.dir, `${log.name}.log`), { flags: "a" });
  if ((io.stdout ?? "log") === "log") child.stdout?.pipe(file);
  child.stderr?.pipe(file);
  running.add(child);
  const exited = new Promise<number | string | null>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? signal);
    });
    child.once("error", (error) => {
      running.delete(child);
      file.write(`${command}: ${error.message}\n`);
      resolve(null);
    });
  });
  return {
    child,
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
