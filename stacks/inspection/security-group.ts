import { ec2 } from "@pulumi/aws";
import { GENEVE_PORT, HEALTH_PORT } from "../../contracts/gwlb.ts";
import { named, type StageConfig } from "../config.ts";
import type { Network } from "../network.ts";

/** GENEVE and health checks in from the GWLB subnets; out, GENEVE back and HTTPS to the endpoints. */
export function createApplianceSecurityGroup(config: StageConfig, network: Network): ec2.SecurityGroup {
  return new ec2.SecurityGroup(named(config, "appliances"), {
    vpcId: network.inspectionVpc.id,
    description: "GENEVE and health checks from the GWLB subnets only",
    ingress: [
      {
        protocol: "udp",
        fromPort: GENEVE_PORT,
        toPort: GENEVE_PORT,
        cidrBlocks: [...config.gwlbSubnets],
        description: "GENEVE from GWLB",
      },
      {
        protocol: "tcp",
        fromPort: HEALTH_PORT,
        toPort: HEALTH_PORT,
        cidrBlocks: [...config.gwlbSubnets],
        description: "health checks from GWLB",
      },
    ],
    egress: [
      {
        protocol: "udp",
        fromPort: GENEVE_PORT,
        toPort: GENEVE_PORT,
        cidrBlocks: [...config.gwlbSubnets],
        description: "returned GENEVE to GWLB",
      },
      {
        protocol: "tcp",
        fromPort: 443,
        toPort: 443,
        cidrBlocks: [config.inspectionVpcCidr],
        description: "VPC interface endpoints",
      },
      {
        protocol: "tcp",
        fromPort: 443,
        toPort: 443,
        prefixListIds: [network.s3Endpoint.prefixListId],
        description: "S3 through the gateway endpoint (assets, Amazon Linux 2023 repositories)",
      },
    ],
  });
}
