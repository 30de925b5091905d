import { ec2 } from "@pulumi/aws";
import { named, type StageConfig } from "../config.ts";

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

export function createEndpoints(
  config: StageConfig,
  p: { inspectionVpc: ec2.Vpc; applianceSubnets: ec2.Subnet[]; applianceRouteTables: ec2.RouteTable[] },
) {
  const { inspectionVpc, applianceSubnets, applianceRouteTables } = p;
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
  return { endpointSecurityGroup, interfaceEndpoints, s3Endpoint };
}
