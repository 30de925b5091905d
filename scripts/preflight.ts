/**
 * `npm run preflight -- --stage NAME`: read-only checks, with your current AWS credentials, of what
 * would make `sst deploy` fail late (see scripts/preflight-checks.ts). Prints one row per check with
 * the fix for each failure; exits 1 when any check fails, 2 on a usage error.
 */
import { parseArgs } from "node:util";
import Table from "cli-table3";
import { stageConfig } from "../stacks/config.ts";
import { type Check, preflightClients, runPreflight } from "./preflight-checks.ts";

export function renderTable(checks: Check[]): string {
  const table = new Table({
    head: ["check", "result", "detail", "fix"],
    wordWrap: true,
    colWidths: [28, 8, 46, 50],
  });
  for (const c of checks)
    table.push([c.name, c.verdict.toUpperCase(), c.detail, c.verdict === "pass" ? "" : (c.fix ?? "")]);
  return table.toString();
}

async function main(): Promise<number> {
  let stage: string | undefined;
  try {
    ({
      values: { stage },
    } = parseArgs({ options: { stage: { type: "string" } }, strict: true }));
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  if (!stage) {
    console.error("usage: npm run preflight -- --stage NAME");
    return 2;
  }
  const config = stageConfig(stage);
  const checks = await runPreflight(config, preflightClients(config.region));
  console.log(`preflight for stage "${stage}" in ${config.region}`);
  console.log(renderTable(checks));
  const failed = checks.filter((c) => c.verdict === "fail").length;
  console.log(
    failed === 0
      ? "nothing found that would stop a deploy"
      : `${failed} check(s) failed: fix them before \`npm run deploy\``,
  );
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) process.exitCode = await main();
