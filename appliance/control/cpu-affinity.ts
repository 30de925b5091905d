/**
 * Gives each receive loop a CPU of its own and keeps every other thread of the process (V8's compiler
 * and platform helpers, libuv's pool, the control thread) on the remaining CPUs, so none of them takes
 * a time slice from a loop. It does not by itself remove the GC stalls: a collection that waits for
 * helper threads waits just as long for helpers queued on another CPU, which is what `node
 * --single-threaded-gc` (contracts/appliance-runtime.ts) is for. Linux only (thread names from /proc,
 * affinity through util-linux's taskset, which Amazon Linux 2023 ships).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

export type AffinityResult =
  | { pinned: true; loops: Record<string, string>; others: string }
  | { pinned: false; reason: string };

export function pinReceiveLoops(workers: number, cpus = os.availableParallelism()): AffinityResult {
  if (cpus < workers + 1)
    return {
      pinned: false,
      reason: `${cpus} CPU(s) cannot isolate ${workers} receive loop(s) from the rest`,
    };
  const others = cpus - workers === 1 ? "0" : `0-${cpus - workers - 1}`;
  const loops: Record<string, string> = {};
  try {
    for (const task of readdirSync("/proc/self/task")) {
      const name = readFileSync(`/proc/self/task/${task}/comm`, "utf8").trim();
      const loop = /^dataplane-(\d+)$/.exec(name);
      const cpu = loop ? String(cpus - 1 - Number(loop[1])) : others;
      if (loop) loops[name] = cpu;
      execFileSync("taskset", ["-p", "-c", cpu, task], { stdio: "ignore" });
    }
  } catch (error) {
    return { pinned: false, reason: `cannot set thread affinity: ${(error as Error).message}` };
  }
  return { pinned: true, loops, others };
}
