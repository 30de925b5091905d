/**
 * The two VPCs over two AZs (raw ec2 resources: the design's subnet plan, not SST's), their route
 * tables, the interface/gateway endpoints the appliances use instead of the internet, and flow logs.
 * The steering routes through the GWLB endpoints come later (steering.ts), once the endpoints exist.
 */
import { cloudwatch, ec2, iam } from "@pulumi/aws";
import { named, type StageConfig } from "./config.ts";

export interface Network {
  streamVpc: ec2.Vpc;
  inspectionVpc: ec2.Vpc;
  mediaConnectSubnets: ec2.Subnet[];
  mediaLiveSubnets: ec2.Subnet[];
  endpointSubnets: ec2.Subnet[];
  applianceSubnets: ec2.Subnet[];
  gwlbSubnets: ec2.Subnet[];
  /** One route table per MediaConnect / MediaLive subnet, for the steering routes. */
  mediaConnectRouteTables: ec2.RouteTable[];
  mediaLiveRouteTables: ec2.RouteTable[];
  applianceRouteTables: ec2.RouteTable[];
  endpointSecurityGroup: ec2.SecurityGroup;
  /** The S3 gateway endpoint: its `prefixListId` is what the appliances' egress rule must name for S3. */
  s3Endpoint: ec2.VpcEndpoint;
  interfaceEndpoints: ec2.VpcEndpoint[];
}

/**
 * AWS APIs the appliances reach without internet: Systems Manager (policy parameter, Session Manager),
 * CloudWatch Logs and metrics (the agent), and Auto Scaling (the instance completes its own launch
 * lifecycle action once it serves).
 */
const INTERFACE_ENDPOINTS = [
  "ssm",
  "ssmmessages",
  "ec2messages",
  "logs",
  "monitoring",
  "autoscaling",
] as const;

function subnets(
  config: StageConfig,
  vpc: ec2.Vpc,
  role: string,
  cidrs: readonly [string, string],
): ec2.Subnet[] {
  return cidrs.map(
    (cidrBlock, i) =>
      new ec2.Subnet(named(config, `${role}-${"ab"[i]}`), {
        vpcId: vpc.id,
        cidrBlock,
        availabilityZone: config.zones[i],
        mapPublicIpOnLaunch: false,
        tags: { Name: named(config, `${role}-${"ab"[i]}`), Role: role },
      }),
  );
}

function routeTables(config: StageConfig, vpc: ec2.Vpc, role: string, list: ec2.Subnet[]): ec2.RouteTable[] {
  return list.map((subnet, i) => {
    const table = new ec2.RouteTable(named(config, `${role}-rt-${"ab"[i]}`), {
      vpcId: vpc.id,
      tags: { Name: named(config, `${role}-rt-${"ab"[i]}`) },
    });
    new ec2.RouteTableAssociation(named(config, `${role}-rta-${"ab"[i]}`), {
      subnetId: subnet.id,
      routeTableId: table.id,
    });
    return table;
  });
}

function flowLogs(config: StageConfig, name: string, vpc: ec2.Vpc): void {
  const group = new cloudwatch.LogGroup(named(config, `${name}-flow-logs`), { retentionInDays: 30 });
  const role = new iam.Role(named(config, `${name}-flow-logs-role`), {
    assumeRolePolicy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { Service: "vpc-flow-logs.amazonaws.com" }, Action: "sts:AssumeRole" },
      ],
    }),
  });
  new iam.RolePolicy(named(config, `${name}-flow-logs-write`), {
    role: role.id,
    policy: group.arn.apply((arn) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            Resource: [arn, `${arn}:*`],
          },
        ],
      }),
    ),
  });
  new ec2.FlowLog(named(config, `${name}-flow-log`), {
    vpcId: vpc.id,
    trafficType: "ALL",
    logDestinationType: "cloud-watch-logs",
    logDestination: group.arn,
    iamRoleArn: role.arn,
    maxAggregationInterval: 60,
  });
}

export function createNetwork(config: StageConfig): Network {
  const streamVpc = new ec2.Vpc(named(config, "stream-vpc"), {
    cidrBlock: config.streamVpcCidr,
    enableDnsHostnames: true,
    enableDnsSupport: true,
    tags: { Name: named(config, "stream-processing") },
  });
  const inspectionVpc = new ec2.Vpc(named(config, "inspection-vpc"), {
    cidrBlock: config.inspectionVpcCidr,
    enableDnsHostnames: true,
    enableDnsSupport: true,
    tags: { Name: named(config, "security-inspection") },
  });
  const mediaConnectSubnets = subnets(config, streamVpc, "mediaconnect", config.mediaConnectSubnets);
  const mediaLiveSubnets = subnets(config, streamVpc, "medialive", config.mediaLiveSubnets);
  const endpointSubnets = subnets(config, streamVpc, "gwlbe", config.endpointSubnets);
  const applianceSubnets = subnets(config, inspectionVpc, "appliance", config.applianceSubnets);
  const gwlbSubnets = subnets(config, inspectionVpc, "gwlb", config.gwlbSubnets);

  const applianceRouteTables = routeTables(config, inspectionVpc, "appliance", applianceSubnets);
  // Appliances reach AWS APIs through endpoints only: no internet gateway, no NAT.
  const endpointSecurityGroup = new ec2.SecurityGroup(named(config, "vpc-endpoints"), {
    vpcId: inspectionVpc.id,
    description: "HTTPS from the appliance subnets to the VPC interface endpoints",
    ingress: [{ protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: [...config.applianceSubnets] }],
    egress: [],
  });
  const interfaceEndpoints = INTERFACE_ENDPOINTS.map(
    (service) =>
      new ec2.VpcEndpoint(named(config, `endpoint-${service}`), {
        vpcId: inspectionVpc.id,
        serviceName: `com.amazonaws.${config.region}.${service}`,
        vpcEndpointType: "Interface",
        privateDnsEnabled: true,
        subnetIds: applianceSubnets.map((s) => s.id),
        securityGroupIds: [endpointSecurityGroup.id],
      }),
  );
  // A gateway endpoint routes to S3's public addresses (the region's managed prefix list), which is also
  // where Amazon Linux 2023's package repositories live.
  const s3Endpoint = new ec2.VpcEndpoint(named(config, "endpoint-s3"), {
    vpcId: inspectionVpc.id,
    serviceName: `com.amazonaws.${config.region}.s3`,
    vpcEndpointType: "Gateway",
    routeTableIds: applianceRouteTables.map((t) => t.id),
  });
  flowLogs(config, "stream", streamVpc);
  flowLogs(config, "inspection", inspectionVpc);
  return {
    streamVpc,
    inspectionVpc,
    mediaConnectSubnets,
    mediaLiveSubnets,
    endpointSubnets,
    applianceSubnets,
    gwlbSubnets,
    mediaConnectRouteTables: routeTables(config, streamVpc, "mediaconnect", mediaConnectSubnets),
    mediaLiveRouteTables: routeTables(config, streamVpc, "medialive", mediaLiveSubnets),
    applianceRouteTables,
    endpointSecurityGroup,
    s3Endpoint,
    interfaceEndpoints,
  };
}
