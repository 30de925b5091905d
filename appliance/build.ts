/**
 * Builds the appliance into one self-contained ES module for Amazon Linux 2023 arm64 (Node 22+):
 * dist/appliance/stream-intel-appliance.mjs, with the native I/O addon for linux-arm64 (the instances)
 * and linux-x64 beside it as stream-intel-io-<platform>-<arch>.node, the systemd unit and the default
 * policy. The JavaScript is architecture-independent and the addons are cross-compiled
 * (appliance/native/build.ts), so building on x86_64 is fine.
 *
 *   npm run build:appliance
 */
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { ApplianceArtifact } from "../contracts/function-env.ts";
import { buildNative, NATIVE_TARGETS, type NativeTarget } from "./native/build.ts";
import { bundledName } from "./native/layout.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * Writes the bundle, the native addons, the unit and the default policy into `outdir`; returns the
 * bundle's path and size and the addons' paths.
 */
export async function buildAppliance(outdir = path.join(root, path.dirname(ApplianceArtifact.bundle))) {
  mkdirSync(outdir, { recursive: true });
  const bundle = path.join(outdir, path.basename(ApplianceArtifact.bundle));
  await build({
    entryPoints: [path.join(root, "appliance/bin/stream-intel-appliance.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    target: "node22",
    format: "esm",
    minify: true,
    sourcemap: "linked",
    legalComments: "linked",
    // Some dependencies are CommonJS and call require(); give the ES module one.
    banner: {
      js: "import { createRequire as __siCreateRequire } from 'node:module'; const require = __siCreateRequire(import.meta.url);",
    },
    logLevel: "warning",
  });
  copyFileSync(
    path.join(root, ApplianceArtifact.systemdUnit),
    path.join(outdir, path.basename(ApplianceArtifact.systemdUnit)),
  );
  copyFileSync(
    path.join(root, ApplianceArtifact.defaultPolicy),
    path.join(outdir, path.basename(ApplianceArtifact.defaultPolicy)),
  );
  const addons: Record<string, string> = {};
  for (const target of Object.keys(NATIVE_TARGETS) as NativeTarget[]) {
    addons[target] = path.join(outdir, bundledName(target));
    copyFileSync(buildNative(target), addons[target]);
  }
  return { bundle, bytes: statSync(bundle).size, addons };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { bundle, bytes, addons } = await buildAppliance();
  console.log(
    `${path.relative(root, bundle)}: ${(bytes / 1024).toFixed(0)} KiB, with ${Object.values(addons)
      .map((a) => path.basename(a))
      .join(", ")}, the systemd unit and the default policy`,
  );
}
