#!/usr/bin/env -S node --single-threaded-gc
// One file for both roles, so the single-file bundle works the same: the main thread runs the daemon,
// and the receive loops are worker threads started on this same file.
import { fileURLToPath } from "node:url";
import { isMainThread } from "node:worker_threads";

if (isMainThread) {
  const { main } = await import("../daemon.ts");
  await main(process.argv, fileURLToPath(import.meta.url));
} else {
  await import("../dataplane/worker.ts");
}
