/**
 * Control-plane figures: the size of each Lambda bundle (esbuild, minified, ESM, for the arm64
 * nodejs24.x runtime: architecture-independent JavaScript, so it is built here as is) and the time a
 * warm handler takes with its AWS clients answered from the canned world of events/dry-run.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export interface FunctionFigures {
  name: string;
  bundleBytes: number;
  /** Bytes with the AWS SDK left out, as when the runtime's own SDK is used. */
  bundleBytesWithoutSdk: number;
  handlerMicros: { mean: number; p99: number };
}

const root = fileURLToPath(new URL("..", import.meta.url));
const SAMPLES: Record<string, string> = {
  "appliance-healer": "alarm-unhealthy-hosts",
  "whitelist-rotator": "whitelist-rotation-requested",
  "stream-manager": "start-stream",
};

async function bundleSize(name: string, external: string[]): Promise<number> {
  const result = await build({
    entryPoints: [`${root}functions/${name}.ts`],
    bundle: true,
    minify: true,
    platform: "node",
    target: "node24",
    format: "esm",
    write: false,
    external,
    logLevel: "silent",
  });
  return result.outputFiles.reduce((n, f) => n + f.contents.length, 0);
}

export async function controlPlane(iterations = 200): Promise<FunctionFigures[]> {
  Object.assign(process.env, {
    AWS_REGION: "eu-west-1",
    AWS_EC2_METADATA_DISABLED: "true",
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_LOG_LEVEL: "SILENT",
    TARGET_GROUP_ARN:
      "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/stream-intel-dev-geneve/73e2d6bc24d8a067",
    ASG_NAME: "stream-intel-dev-appliances",
    CONTRIBUTORS_PARAMETER: "/stream-intel/dev/contributors",
    POLICY_PARAMETER: "/stream-intel/dev/policy",
    STATE_PARAMETER: "/stream-intel/dev/stream-state",
    FLOW_ARN:
      "arn:aws:mediaconnect:eu-west-1:111122223333:flow:1-AbCdEfGhIjKlMnOp-abcdef123455:stream-intel-dev-contribution",
    CHANNEL_ID: "1234567",
  });
  const world: Record<string, unknown> = JSON.parse(readFileSync(`${root}events/dry-run/world.json`, "utf8"));
  world["GetParameterCommand:/stream-intel/dev/policy"] = {
    Parameter: { Value: readFileSync(`${root}appliance/policy.default.json`, "utf8") },
  };
  const out: FunctionFigures[] = [];
  for (const [name, sample] of Object.entries(SAMPLES)) {
    const module = await import(`${root}functions/${name}.ts`);
    for (const client of Object.values(module.clients) as { send: unknown }[]) {
      // Answer at the client, as aws-sdk-client-mock does, without a network or credentials.
      client.send = async (command: { constructor: { name: string }; input: { Name?: string } }) =>
        world[`${command.constructor.name}:${command.input.Name ?? ""}`] ??
        world[command.constructor.name] ??
        {};
    }
    const event = JSON.parse(readFileSync(`${root}events/${sample}.json`, "utf8"));
    const times: number[] = [];
    const silence = process.stdout.write.bind(process.stdout);
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      for (let i = 0; i < iterations + 20; i++) {
        const start = performance.now();
        await module.handler(structuredClone(event)).catch(() => {}); // timed either way: a mocked world may refuse
        if (i >= 20) times.push((performance.now() - start) * 1000);
      }
    } finally {
      process.stdout.write = silence;
    }
    times.sort((a, b) => a - b);
    out.push({
      name,
      bundleBytes: await bundleSize(name, []),
      bundleBytesWithoutSdk: await bundleSize(name, ["@aws-sdk/*"]),
      handlerMicros: {
        mean: times.reduce((a, b) => a + b, 0) / times.length,
        p99: times[Math.floor(times.length * 0.99)],
      },
    });
  }
  return out;
}
