/**
 * The two VPCs over two AZs (raw ec2 resources: the design's subnet plan, not SST's), their route
 * tables, the interface/gateway endpoints the appliances use instead of the internet, and flow logs.
 * The steering routes through the GWLB endpoints come later (steering.ts), once the endpoints exist.
 */
import { ec2 } from "@pulumi/aws";
import { named, type StageConfig } from "./config.ts";
import { createEndpoints } from "./network/endpoints.ts";
import { flowLogs } from "./network/flow-logs.ts";
import { routeTables, subnets } from "./network/subnets.ts";

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
  const { endpointSecurityGroup, interfaceEndpoints, s3Endpoint } = createEndpoints(config, {
    inspectionVpc,
    applianceSubnets,
    applianceRouteTables,
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
