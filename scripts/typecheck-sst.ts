/**
 * Typechecks sst.config.ts against SST's generated platform types (.sst/platform, made by
 * `npm run sst:install`; .ci/run makes it). Without them it says so and checks nothing else: the
 * stacks themselves are already covered by the main typecheck.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
if (!existsSync(`${root}.sst/platform/config.d.ts`)) {
  console.log("sst.config.ts not typechecked: run `npm run sst:install` once to generate SST's types");
} else {
  const tsc = spawnSync("tsc", ["--noEmit", "-p", "tsconfig.sst.json"], {
    cwd: root,
    stdio: "inherit",
    shell: false,
  });
  process.exitCode = tsc.status ?? 1;
}
