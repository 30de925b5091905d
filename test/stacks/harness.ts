/**
 * Builds the whole stack once under Pulumi's own mocks (no AWS, no Pulumi CLI, no network) and records
 * what the engine would be asked: every resource with its real inputs, every provider call, and the
 * dependencies each registration carries (the order Pulumi creates and deletes in). Resource IDs and
 * ARNs follow AWS's formats, so that IAM policies built from them can be evaluated.
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { FunctionSpec, Triggers } from "../../stacks/automation.ts";
import type { StageConfig } from "../../stacks/config.ts";

export interface Recorded {
  type: string;
  name: string;
  id: string;
  inputs: Record<string, unknown>;
  state: Record<string, unknown>;
}

export const ACCOUNT = "111122223333";
export const REGION = "eu-west-1";
export const BUNDLE_TEXT = "// stream-intel-appliance bundle under test\n";

const hex = (name: string, n = 17) => createHash("sha256").update(name).digest("hex").slice(0, n);

/** The ID and ARN AWS would give a resource of this type and name. */
function identity(type: string, name: string, inputs: Record<string, unknown>) {
  const arn = (service: string, rest: string) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${rest}`;
  const kind = type.split(":").pop()!;
  const given = (inputs.name as string | undefined) ?? name;
  switch (kind) {
    case "Vpc":
      return { id: `vpc-${hex(name)}` };
    case "Subnet":
      return { id: `subnet-${hex(name)}` };
    case "SecurityGroup":
      return { id: `sg-${hex(name)}` };
    case "VpcEndpoint":
      return { id: `vpce-${hex(name)}`, prefixListId: "pl-6da54004" };
    case "RouteTable":
      return { id: `rtb-${hex(name)}` };
    case "Parameter":
      return { id: given, arn: arn("ssm", `parameter${given}`) };
    case "Group":
      return {
        id: given,
        arn: arn(
          "autoscaling",
          `autoScalingGroup:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b:autoScalingGroupName/${given}`,
        ),
      };
    case "TargetGroup":
      return {
        id: name,
        arn: arn("elasticloadbalancing", `targetgroup/${given}/73e2d6bc24d8a067`),
        arnSuffix: `targetgroup/${given}/73e2d6bc24d8a067`,
      };
    case "LoadBalancer":
      return {
        id: name,
        arn: arn("elasticloadbalancing", `loadbalancer/gwy/${name}/c2d4e1f3a5b7c9d1`),
        arnSuffix: `gwy/${name}/c2d4e1f3a5b7c9d1`,
      };
    case "Flow":
      return {
        id: name,
        flowArn: arn("mediaconnect", `flow:1-AbCdEfGhIjKlMnOp-abcdef123455:${given}`),
        source: {
          ...(inputs.source as object),
          sourceArn: arn(
            "mediaconnect",
            `source:2-ZyXwVuTsRqPoNmLk-fedcba543211:${(inputs.source as { name: string }).name}`,
          ),
        },
      };
    case "Channel":
      if (type.includes("medialive"))
        return { id: "1234567", channelId: "1234567", arn: arn("medialive", "channel:1234567") };
      return { id: name, arn: arn("mediapackage", `channels/${hex(name, 32)}`), channelId: inputs.channelId };
    case "Queue":
      return {
        id: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${given}`,
        arn: arn("sqs", given),
        url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${given}`,
      };
    case "Table":
      return { id: given, arn: arn("dynamodb", `table/${given}`) };
    case "LogGroup":
      return { id: given, arn: arn("logs", `log-group:${given}`) };
    case "BucketV2":
      return { id: name, bucket: name, arn: `arn:aws:s3:::${name}` };
    case "Role":
      return { id: name, name, arn: `arn:aws:iam::${ACCOUNT}:role/${name}` };
    case "MetricAlarm":
      return { id: given, arn: arn("cloudwatch", `alarm:${given}`) };
    case "EventRule":
      return { id: given, arn: arn("events", `rule/${given}`) };
    case "Schedule":
      return { id: given, arn: arn("scheduler", `schedule/default/${given}`) };
    case "Topic":
      return { id: given, arn: arn("sns", given) };
    case "Input":
      return { id: "7654321", arn: arn("medialive", "input:7654321") };
    default:
      return { id: `${name}@${kind}`, arn: arn(type.split(":")[1]?.split("/")[0] ?? "x", name) };
  }
}

export interface Stack {
  config: StageConfig;
  resources: Recorded[];
  calls: { token: string; inputs: Record<string, unknown> }[];
  /** Names of the resources each resource's registration depends on. */
  dependencies: Map<string, string[]>;
  specs: FunctionSpec[];
  triggers: Triggers;
  root: string;
  byType: (suffix: string) => Recorded[];
  byName: (name: string) => Recorded;
}

/** A repository root with the files the stacks read, and a bundle and an addon of known content. */
export function fixtureRoot(bundle = BUNDLE_TEXT): string {
  const repo = new URL("../..", import.meta.url).pathname;
  const root = mkdtempSync(path.join(tmpdir(), "stack-root-"));
  for (const file of ["appliance/policy.default.json", "appliance/deploy/stream-intel-appliance.service"]) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    copyFileSync(path.join(repo, file), path.join(root, file));
  }
  mkdirSync(path.join(root, "dist/appliance"), { recursive: true });
  writeFileSync(path.join(root, "dist/appliance/stream-intel-appliance.mjs"), bundle);
  writeFileSync(path.join(root, "dist/appliance/stream-intel-io-linux-arm64.node"), "\x7fELF addon");
  return root;
}

export async function buildStack(
  overrides: Parameters<typeof import("../../stacks/config.ts").stageConfig>[1] = {},
): Promise<Stack> {
  const resources: Recorded[] = [];
  const calls: Stack["calls"] = [];
  const dependencies = new Map<string, string[]>();
  mockEngine(resources, calls);
  recordDependencies(dependencies);

  const { stageConfig } = await import("../../stacks/config.ts");
  const { buildInfrastructure } = await import("../../stacks/app.ts");
  const { createTriggers, functionSpecs } = await import("../../stacks/automation.ts");
  const config = stageConfig("test", overrides);
  const root = fixtureRoot();
  const infra = buildInfrastructure(config, root);
  const specs = functionSpecs(config, infra.automationRefs);
  const fn = (key: FunctionSpec["name"]) => {
    const name = specs.find((s) => s.name === key)!.functionName;
    return { arn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`, name };
  };
  const triggers = createTriggers(config, infra.automationRefs, {
    applianceHealer: fn("applianceHealer"),
    whitelistRotator: fn("whitelistRotator"),
    streamManager: fn("streamManager"),
  });
  // Let every output resolve and every registration reach the mocks.
  for (let settled = -1; settled !== resources.length; ) {
    settled = resources.length;
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  return {
    config,
    resources,
    calls,
    dependencies,
    specs,
    triggers,
    root,
    byType: (suffix) => resources.filter((r) => r.type.endsWith(suffix)),
    byName: (name) => {
      const found = resources.find((r) => r.name === name);
      if (!found) throw new Error(`no resource ${name}`);
      return found;
    },
  };
}

/** The value an Input resolved to (plain data in these tests, or an Output). */
export function resolved<T>(value: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(value).apply((v) => resolve(v as T)));
}

/** Pulumi's mocks: each new resource recorded with the ID and ARN AWS would give it, each call answered. */
function mockEngine(resources: Recorded[], calls: Stack["calls"]): void {
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const { id, ...extra } = identity(args.type, args.name, args.inputs);
        const state = { ...args.inputs, name: args.inputs.name ?? args.name, latestVersion: 1, ...extra };
        resources.push({ type: args.type, name: args.name, id, inputs: args.inputs, state });
        return { id, state };
      },
      call(args) {
        calls.push({ token: args.token, inputs: args.inputs });
        if (args.token === "aws:ssm/getParameter:getParameter")
          return { ...args.inputs, value: "ami-0123456789abcdef0", type: "String" };
        if (args.token === "aws:medialive/getInput:getInput") {
          return {
            ...args.inputs,
            destinations: [
              { ip: "10.0.11.50", port: "5000", url: "rtp://10.0.11.50:5000", vpcs: [] },
              { ip: "10.0.12.50", port: "5000", url: "rtp://10.0.12.50:5000", vpcs: [] },
            ],
          };
        }
        if (args.token === "aws:index/getCallerIdentity:getCallerIdentity")
          return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:root`, userId: "x" };
        return args.inputs;
      },
    },
    "stream-intel",
    "test",
    false,
  );
}

function recordDependencies(dependencies: Stack["dependencies"]): void {
  // Record each registration's dependencies as the engine would receive them.
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: { getName(): string; getDependenciesList(): string[] }, cb: unknown): unknown;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    dependencies.set(
      req.getName(),
      req.getDependenciesList().map((urn) => urn.split("::").pop()!),
    );
    return register(req, cb);
  };
}
