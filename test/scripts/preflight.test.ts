/**
 * The preflight against mocked AWS clients (aws-sdk-client-mock): a ready account passes every check
 * with read-only calls only; an account that would fail a deploy late gets a failure per problem,
 * each with its fix, and the table shows them.
 */
import {
  DescribeAvailabilityZonesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstanceTypesCommand,
  DescribeVpcsCommand,
} from "@aws-sdk/client-ec2";
import { DescribeLoadBalancersCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { GetAccountSettingsCommand } from "@aws-sdk/client-lambda";
import { ListFlowsCommand } from "@aws-sdk/client-mediaconnect";
import { ListChannelsCommand, ListInputsCommand } from "@aws-sdk/client-medialive";
import { ListServiceQuotasCommand } from "@aws-sdk/client-service-quotas";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { renderTable } from "../../scripts/preflight.ts";
import { preflightClients, runPreflight } from "../../scripts/preflight-checks.ts";
import { stageConfig } from "../../stacks/config.ts";
import type { AnyStub } from "../support/aws-mocks.ts";

const config = stageConfig("dev");
/** The clients the preflight is given, each stubbed where it stands. */
const clients = preflightClients(config.region);
const stubs = Object.fromEntries(
  Object.entries(clients).map(([name, client]) => [name, mockClient(client as never) as unknown as AnyStub]),
) as Record<keyof typeof clients, AnyStub>;

function readyAccount() {
  stubs.sts
    .on(GetCallerIdentityCommand)
    .resolves({ Account: "111122223333", Arn: "arn:aws:iam::111122223333:user/ops" });
  stubs.ec2.on(DescribeAvailabilityZonesCommand).resolves({
    AvailabilityZones: config.zones.map((ZoneName) => ({ ZoneName, State: "available" })),
  });
  stubs.ec2.on(DescribeInstanceTypeOfferingsCommand).resolves({
    InstanceTypeOfferings: config.zones.map((Location) => ({
      InstanceType: "c7gn.large",
      Location,
      LocationType: "availability-zone",
    })),
  });
  stubs.ec2
    .on(DescribeInstanceTypesCommand)
    .resolves({ InstanceTypes: [{ InstanceType: "c7gn.large", VCpuInfo: { DefaultVCpus: 2 } }] });
  stubs.ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [{ VpcId: "vpc-default" }] });
  stubs.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: "ami-0123456789abcdef0" } });
  stubs.elb.on(DescribeLoadBalancersCommand).resolves({ LoadBalancers: [{ Type: "application" }] });
  stubs.lambda
    .on(GetAccountSettingsCommand)
    .resolves({ AccountLimit: { UnreservedConcurrentExecutions: 1000 } });
  stubs.mediaConnect.on(ListFlowsCommand as never).resolves({ Flows: [] });
  stubs.mediaLive.on(ListChannelsCommand).resolves({ Channels: [] });
  stubs.mediaLive.on(ListInputsCommand).resolves({ Inputs: [] });
  const quota = (ServiceCode: string, QuotaName: string, Value: number) => ({
    ServiceCode,
    QuotaName,
    QuotaCode: `L-${ServiceCode.toUpperCase()}`,
    Value,
  });
  stubs.quotas
    .on(ListServiceQuotasCommand, { ServiceCode: "vpc" })
    .resolves({ Quotas: [quota("vpc", "VPCs per Region", 5)] });
  stubs.quotas
    .on(ListServiceQuotasCommand, { ServiceCode: "elasticloadbalancing" })
    .resolves({ Quotas: [quota("elasticloadbalancing", "Gateway Load Balancers per Region", 100)] });
  stubs.quotas
    .on(ListServiceQuotasCommand, { ServiceCode: "medialive" })
    .resolves({ Quotas: [quota("medialive", "Channels", 5), quota("medialive", "Inputs", 10)] });
  stubs.quotas
    .on(ListServiceQuotasCommand, { ServiceCode: "mediaconnect" })
    .resolves({ Quotas: [quota("mediaconnect", "Flows", 20)] });
  stubs.quotas.on(ListServiceQuotasCommand, { ServiceCode: "ec2" }).resolves({
    Quotas: [quota("ec2", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", 32)],
  });
}

describe("preflight", () => {
  beforeEach(() => {
    for (const stub of Object.values(stubs)) stub.reset();
  });

  it("passes a ready account, asking AWS only to describe, get or list", async () => {
    readyAccount();
    const checks = await runPreflight(config, clients);
    expect(checks.filter((c) => c.verdict !== "pass")).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        "MediaConnect in the region",
        "MediaLive in the region",
        "c7gn.large in both zones",
        "Amazon Linux 2023 arm64 AMI",
        "VPCs",
        "Gateway Load Balancers",
        "MediaLive inputs",
        "MediaLive channels",
        "MediaConnect flows",
      ]),
    );
    const sent = Object.values(stubs).flatMap((s) =>
      s.calls().map((c) => (c.args[0] as object).constructor.name),
    );
    expect(sent.length).toBeGreaterThan(10);
    for (const command of sent) expect(command).toMatch(/^(Describe|Get|List)/);
    const offerings = stubs.ec2.commandCalls(DescribeInstanceTypeOfferingsCommand)[0].args[0].input;
    expect(offerings).toMatchObject({ LocationType: "availability-zone" });
    expect(stubs.ssm.commandCalls(GetParameterCommand)[0].args[0].input).toEqual({
      Name: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    });
  });

  it("fails each problem that would stop a deploy late, with the fix", async () => {
    readyAccount();
    // c7gn.large only in one of the two zones
    stubs.ec2.on(DescribeInstanceTypeOfferingsCommand).resolves({
      InstanceTypeOfferings: [
        { InstanceType: "c7gn.large", Location: config.zones[0], LocationType: "availability-zone" },
      ],
    });
    // no MediaLive in the region: the endpoint does not resolve
    stubs.mediaLive
      .on(ListChannelsCommand)
      .rejects(Object.assign(new Error("getaddrinfo ENOTFOUND medialive.xx"), { name: "Error" }));
    // four VPCs of five used, two needed
    stubs.ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [{}, {}, {}, {}] });
    // the AMI parameter is not there
    stubs.ssm
      .on(GetParameterCommand)
      .rejects(Object.assign(new Error("not found"), { name: "ParameterNotFound" }));
    // a new account's Lambda concurrency
    stubs.lambda
      .on(GetAccountSettingsCommand)
      .resolves({ AccountLimit: { UnreservedConcurrentExecutions: 10 } });
    const checks = await runPreflight(config, clients);
    const failed = Object.fromEntries(checks.filter((c) => c.verdict === "fail").map((c) => [c.name, c]));
    expect(Object.keys(failed).sort()).toEqual(
      [
        "Amazon Linux 2023 arm64 AMI",
        "Lambda concurrency to reserve",
        "MediaLive channels",
        "MediaLive in the region",
        "VPCs",
        "c7gn.large in both zones",
      ].sort(),
    );
    expect(failed["c7gn.large in both zones"].detail).toBe(`not offered in ${config.zones[1]}`);
    expect(failed.VPCs).toMatchObject({
      detail: "4 of 5 used, 2 needed",
      fix: expect.stringMatching(/request an increase of "VPCs per Region"/),
    });
    expect(failed["Lambda concurrency to reserve"].fix).toMatch(/Concurrent executions/);
    for (const check of Object.values(failed)) expect(check.fix, check.name).toBeTruthy();
    const table = renderTable(checks);
    expect(table).toMatch(/FAIL/);
    expect(table).toMatch(/PASS/);
  });

  it("warns, not passes, when Service Quotas does not list a quota it needs", async () => {
    readyAccount();
    stubs.quotas.on(ListServiceQuotasCommand, { ServiceCode: "mediaconnect" }).resolves({ Quotas: [] });
    const checks = await runPreflight(config, clients);
    expect(checks.find((c) => c.name === "MediaConnect flows")).toMatchObject({
      verdict: "warn",
      fix: expect.stringMatching(/console/),
    });
  });
});
