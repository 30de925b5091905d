/**
 * Builds the appliance into one self-contained ES module for Amazon Linux 2023 arm64 (Node 22+):
 * dist/appliance/stream-intel-appliance.mjs, with the systemd unit and the default policy beside it.
 * The bundle is architecture-independent JavaScript (no native modules), so building on x86_64 is fine.
 *
 *   npm run build:appliance
 */
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { ApplianceArtifact } from "../contracts/function-env.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Writes the bundle, unit and default policy into `outdir`; returns the bundle's path and size. */
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
  return { bundle, bytes: statSync(bundle).size };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { bundle, bytes } = await buildAppliance();
  console.log(
    `${path.relative(root, bundle)}: ${(bytes / 1024).toFixed(0)} KiB, with the systemd unit and the default policy`,
  );
}
