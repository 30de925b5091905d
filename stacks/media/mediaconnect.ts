/** The MediaConnect flow: an SRT listener source, its VPC interface, one RTP output per MediaLive pipeline. */
import { type ec2, type iam, medialive } from "@pulumi/aws";
import * as native from "@pulumi/aws-native";
import { MEDIALIVE_RTP_PORT, named, type StageConfig } from "../config.ts";
import type { Network } from "../network.ts";

export function createFlow(config: StageConfig): native.mediaconnect.Flow {
  return new native.mediaconnect.Flow(named(config, "flow"), {
    name: named(config, "contribution"),
    availabilityZone: config.zones[0],
    source: {
      name: "primary",
      protocol: "srt-listener",
      ingestPort: config.ingestPort,
      whitelistCidr: config.whitelist[0].cidr,
      minLatency: 200,
      description: config.whitelist[0].label,
    },
  });
}

export function createFlowVpcInterface(
  config: StageConfig,
  p: {
    network: Network;
    flow: native.mediaconnect.Flow;
    role: iam.Role;
    policy: iam.RolePolicy;
    securityGroup: ec2.SecurityGroup;
  },
): native.mediaconnect.FlowVpcInterface {
  const { network, flow } = p;
  return new native.mediaconnect.FlowVpcInterface(
    named(config, "flow-vpc-interface"),
    {
      flowArn: flow.flowArn,
      name: "inspected",
      roleArn: p.role.arn,
      securityGroupIds: [p.securityGroup.id],
      subnetId: network.mediaConnectSubnets[0].id,
    },
    // Created after, and removed before, the permissions MediaConnect needs to manage its ENIs.
    { dependsOn: [p.policy] },
  );
}

export function createFlowOutputs(
  config: StageConfig,
  flow: native.mediaconnect.Flow,
  vpcInterface: native.mediaconnect.FlowVpcInterface,
  input: medialive.Input,
): native.mediaconnect.FlowOutput[] {
  // One output per pipeline endpoint (rtp://<ENI IP>:5000), through the VPC interface. The input's
  // endpoints are only readable back from the service; their port is MediaLive's, not ours to choose.
  const destinations = medialive.getInputOutput({ id: input.id }).destinations;
  return [0, 1].map(
    (pipeline) =>
      new native.mediaconnect.FlowOutput(named(config, `output-pipeline-${pipeline}`), {
        flowArn: flow.flowArn,
        name: `medialive-pipeline-${pipeline}`,
        protocol: "rtp",
        destination: destinations.apply((d) => d[pipeline]?.ip ?? ""),
        port: destinations.apply((d) => Number(d[pipeline]?.port ?? MEDIALIVE_RTP_PORT)),
        vpcInterfaceAttachment: { vpcInterfaceName: vpcInterface.name },
      }),
  );
}
