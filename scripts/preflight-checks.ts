/**
 * What breaks a first deploy late and expensively, checked up front with read-only calls: the media
 * services offered in the region, the instance type in both zones, the AMI parameter, the quotas the
 * stack consumes, and the Lambda concurrency its reserved functions need. Each check says what to do
 * when it fails. Every call here is a Describe, Get or List.
 */
import {
  type _InstanceType,
  DescribeAvailabilityZonesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstanceTypesCommand,
  DescribeVpcsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import {
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { GetAccountSettingsCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { ListFlowsCommand, MediaConnectClient } from "@aws-sdk/client-mediaconnect";
import { ListChannelsCommand, ListInputsCommand, MediaLiveClient } from "@aws-sdk/client-medialive";
import {
  ListServiceQuotasCommand,
  type ServiceQuota,
  ServiceQuotasClient,
} from "@aws-sdk/client-service-quotas";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import type { StageConfig } from "../stacks/config.ts";
import { AMI_PARAMETER } from "../stacks/inspection.ts";

export type Verdict = "pass" | "fail" | "warn";

export interface Check {
  name: string;
  verdict: Verdict;
  detail: string;
  /** What to do about a failure or a warning. */
  fix?: string;
}

export function preflightClients(region: string) {
  return {
    sts: new STSClient({ region }),
    ec2: new EC2Client({ region }),
    ssm: new SSMClient({ region }),
    elb: new ElasticLoadBalancingV2Client({ region }),
    lambda: new LambdaClient({ region }),
    mediaConnect: new MediaConnectClient({ region }),
    mediaLive: new MediaLiveClient({ region }),
    quotas: new ServiceQuotasClient({ region }),
  };
}
export type PreflightClients = ReturnType<typeof preflightClients>;

/** What one stage creates of each quota-bound resource. */
export const STAGE_NEEDS = {
  vpcs: 2,
  gatewayLoadBalancers: 1,
  mediaLiveInputs: 1,
  mediaLiveChannels: 1,
  mediaConnectFlows: 1,
  reservedConcurrency: 3,
} as const;
/** Lambda keeps this much account concurrency unreserved, whatever the functions reserve. */
export const UNRESERVED_MINIMUM = 100;

const reason = (error: unknown) => `${(error as Error).name}: ${(error as Error).message}`;

async function attempt(name: string, fix: string, run: () => Promise<Omit<Check, "name">>): Promise<Check> {
  try {
    return { name, ...(await run()) };
  } catch (error) {
    return { name, verdict: "fail", detail: reason(error), fix };
  }
}

/** Every page of a Service Quotas listing for one service. */
async function quotasOf(clients: PreflightClients, serviceCode: string): Promise<ServiceQuota[]> {
  const all: ServiceQuota[] = [];
  let NextToken: string | undefined;
  do {
    const page = await clients.quotas.send(
      new ListServiceQuotasCommand({ ServiceCode: serviceCode, NextToken }),
    );
    all.push(...(page.Quotas ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return all;
}

async function quotaCheck(
  clients: PreflightClients,
  what: {
    name: string;
    serviceCode: string;
    quotaName: RegExp;
    needed: number;
    inUse: () => Promise<number>;
  },
): Promise<Check> {
  return attempt(
    what.name,
    "grant the caller servicequotas:ListServiceQuotas and the service's List/Describe calls",
    async () => {
      const quota = (await quotasOf(clients, what.serviceCode)).find((q) =>
        what.quotaName.test(q.QuotaName ?? ""),
      );
      const used = await what.inUse();
      if (quota?.Value === undefined) {
        return {
          verdict: "warn",
          detail: `${used} in use; quota not listed by Service Quotas`,
          fix: `check the ${what.serviceCode} quota in the console: the stage needs ${what.needed} more`,
        };
      }
      const free = quota.Value - used;
      return free >= what.needed
        ? { verdict: "pass", detail: `${used} of ${quota.Value} used, ${what.needed} needed` }
        : {
            verdict: "fail",
            detail: `${used} of ${quota.Value} used, ${what.needed} needed`,
            fix: `request an increase of "${quota.QuotaName}" (${quota.QuotaCode}) in Service Quotas, or remove unused ones`,
          };
    },
  );
}

/** The quotas one stage draws on, how Service Quotas names each, and how many are in use now. */
function quotaSpecs(clients: PreflightClients) {
  return [
    {
      name: "VPCs",
      serviceCode: "vpc",
      quotaName: /^VPCs per Region$/i,
      needed: STAGE_NEEDS.vpcs,
      inUse: async () => (await clients.ec2.send(new DescribeVpcsCommand({}))).Vpcs?.length ?? 0,
    },
    {
      name: "Gateway Load Balancers",
      serviceCode: "elasticloadbalancing",
      quotaName: /^Gateway Load Balancers per Region$/i,
      needed: STAGE_NEEDS.gatewayLoadBalancers,
      inUse: async () =>
        ((await clients.elb.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? []).filter(
          (lb) => lb.Type === "gateway",
        ).length,
    },
    {
      name: "MediaLive inputs",
      serviceCode: "medialive",
      quotaName: /^(push )?inputs$/i,
      needed: STAGE_NEEDS.mediaLiveInputs,
      inUse: async () => (await clients.mediaLive.send(new ListInputsCommand({}))).Inputs?.length ?? 0,
    },
    {
      name: "MediaLive channels",
      serviceCode: "medialive",
      quotaName: /^channels$/i,
      needed: STAGE_NEEDS.mediaLiveChannels,
      inUse: async () => (await clients.mediaLive.send(new ListChannelsCommand({}))).Channels?.length ?? 0,
    },
    {
      name: "MediaConnect flows",
      serviceCode: "mediaconnect",
      quotaName: /^flows( per (account|region))?$/i,
      needed: STAGE_NEEDS.mediaConnectFlows,
      inUse: async () => (await clients.mediaConnect.send(new ListFlowsCommand({}))).Flows?.length ?? 0,
    },
  ];
}

/** One check: what it looks at, with the caller's credentials; it never throws (see attempt). */
type Preflight = (clients: PreflightClients, config: StageConfig) => Promise<Check>;

const credentials: Preflight = (clients) =>
  attempt(
    "credentials",
    "configure credentials for the target account (aws configure, or aws sso login)",
    async () => {
      const me = await clients.sts.send(new GetCallerIdentityCommand({}));
      return { verdict: "pass", detail: `account ${me.Account} as ${me.Arn}` };
    },
  );

const availabilityZones: Preflight = (clients, config) =>
  attempt(
    "availability zones",
    `set zones in stacks/config.ts to two available zones of ${config.region}`,
    async () => {
      const zones = await clients.ec2.send(
        new DescribeAvailabilityZonesCommand({ ZoneNames: [...config.zones] }),
      );
      const available = (zones.AvailabilityZones ?? [])
        .filter((z) => z.State === "available")
        .map((z) => z.ZoneName);
      const missing = config.zones.filter((z) => !available.includes(z));
      return missing.length === 0
        ? { verdict: "pass", detail: config.zones.join(", ") }
        : {
            verdict: "fail",
            detail: `not available: ${missing.join(", ")}`,
            fix: `set zones in stacks/config.ts to two available zones of ${config.region}`,
          };
    },
  );

const instanceTypeOffered: Preflight = (clients, config) =>
  attempt(`${config.instanceType} in both zones`, "grant ec2:DescribeInstanceTypeOfferings", async () => {
    const offered = await clients.ec2.send(
      new DescribeInstanceTypeOfferingsCommand({
        LocationType: "availability-zone",
        Filters: [
          { Name: "instance-type", Values: [config.instanceType] },
          { Name: "location", Values: [...config.zones] },
        ],
      }),
    );
    const where = (offered.InstanceTypeOfferings ?? []).map((o) => o.Location);
    const missing = config.zones.filter((z) => !where.includes(z));
    return missing.length === 0
      ? { verdict: "pass", detail: `offered in ${config.zones.join(", ")}` }
      : {
          verdict: "fail",
          detail: `not offered in ${missing.join(", ")}`,
          fix: `choose zones that offer ${config.instanceType} (aws ec2 describe-instance-type-offerings --location-type availability-zone --filters Name=instance-type,Values=${config.instanceType}), or another Graviton type in stacks/config.ts`,
        };
  });

const amazonLinuxAmi: Preflight = (clients, config) =>
  attempt(
    "Amazon Linux 2023 arm64 AMI",
    `the public parameter ${AMI_PARAMETER} must resolve in ${config.region}`,
    async () => {
      const ami = await clients.ssm.send(new GetParameterCommand({ Name: AMI_PARAMETER }));
      return { verdict: "pass", detail: `${ami.Parameter?.Value}` };
    },
  );

const mediaConnectOffered: Preflight = (clients) =>
  attempt(
    "MediaConnect in the region",
    `deploy to a region that offers AWS Elemental MediaConnect (change the region in sst.config.ts and stacks/config.ts)`,
    async () => {
      const flows = await clients.mediaConnect.send(new ListFlowsCommand({ MaxResults: 1 }));
      return { verdict: "pass", detail: `reachable (${flows.Flows?.length ?? 0} flow listed)` };
    },
  );

const mediaLiveOffered: Preflight = (clients) =>
  attempt(
    "MediaLive in the region",
    "deploy to a region that offers AWS Elemental MediaLive (change the region in sst.config.ts and stacks/config.ts)",
    async () => {
      await clients.mediaLive.send(new ListChannelsCommand({ MaxResults: 1 }));
      return { verdict: "pass", detail: "reachable" };
    },
  );

/** The vCPUs the group at its maximum runs, against the account's on-demand quota. */
const applianceVcpus: Preflight = (clients, config) =>
  attempt(
    "on-demand vCPUs for the appliances",
    "grant ec2:DescribeInstanceTypes and servicequotas:ListServiceQuotas",
    async () => {
      const types = await clients.ec2.send(
        new DescribeInstanceTypesCommand({ InstanceTypes: [config.instanceType as _InstanceType] }),
      );
      const vcpus = types.InstanceTypes?.[0]?.VCpuInfo?.DefaultVCpus ?? 0;
      const needed = vcpus * config.maxAppliances;
      const quota = (await quotasOf(clients, "ec2")).find((q) =>
        /^Running On-Demand Standard \(/i.test(q.QuotaName ?? ""),
      );
      if (quota?.Value === undefined)
        return {
          verdict: "warn",
          detail: `${needed} vCPUs needed; quota not listed`,
          fix: "check the Running On-Demand Standard instances quota",
        };
      return quota.Value >= needed
        ? {
            verdict: "pass",
            detail: `${needed} vCPUs at most (${config.maxAppliances} × ${vcpus}), quota ${quota.Value}`,
          }
        : {
            verdict: "fail",
            detail: `${needed} vCPUs at most, quota ${quota.Value}`,
            fix: `request "${quota.QuotaName}" (${quota.QuotaCode}) ≥ ${needed} plus what else runs, or lower maxAppliances`,
          };
    },
  );

/** What reserving the functions' concurrency leaves unreserved; Lambda keeps a minimum. */
const lambdaConcurrency: Preflight = (clients, config) =>
  attempt("Lambda concurrency to reserve", "grant lambda:GetAccountSettings", async () => {
    const settings = await clients.lambda.send(new GetAccountSettingsCommand({}));
    const unreserved = settings.AccountLimit?.UnreservedConcurrentExecutions ?? 0;
    const left = unreserved - STAGE_NEEDS.reservedConcurrency;
    return left >= UNRESERVED_MINIMUM
      ? {
          verdict: "pass",
          detail: `${unreserved} unreserved; ${STAGE_NEEDS.reservedConcurrency} to reserve leaves ${left}`,
        }
      : {
          verdict: "fail",
          detail: `${unreserved} unreserved; reserving ${STAGE_NEEDS.reservedConcurrency} would leave ${left} < ${UNRESERVED_MINIMUM}, which Lambda refuses`,
          fix: `request a higher "Concurrent executions" quota for Lambda in ${config.region} (new accounts start low)`,
        };
  });

/** The checks before the quotas' and after them, in the order the table shows them. */
const FIRST = [
  credentials,
  availabilityZones,
  instanceTypeOffered,
  amazonLinuxAmi,
  mediaConnectOffered,
  mediaLiveOffered,
];
const LAST = [applianceVcpus, lambdaConcurrency];

export async function runPreflight(config: StageConfig, clients: PreflightClients): Promise<Check[]> {
  const checks: Check[] = [];
  for (const check of FIRST) checks.push(await check(clients, config));
  for (const quota of quotaSpecs(clients)) checks.push(await quotaCheck(clients, quota));
  for (const check of LAST) checks.push(await check(clients, config));
  return checks;
}
