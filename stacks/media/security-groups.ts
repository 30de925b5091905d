import { ec2 } from "@pulumi/aws";
import { named, type StageConfig } from "../config.ts";
import type { Network } from "../network.ts";

/** RTP from the MediaConnect interface to the MediaLive input, on the media ports, and nothing else. */
export function createMediaSecurityGroups(config: StageConfig, network: Network) {
  const ports = config.mediaPorts;
  const mediaConnectSecurityGroup = new ec2.SecurityGroup(named(config, "mediaconnect-interface"), {
    vpcId: network.streamVpc.id,
    description: "MediaConnect VPC interface: RTP out to the MediaLive input subnets only",
    ingress: [],
    egress: [
      {
        protocol: "udp",
        fromPort: ports.from,
        toPort: ports.to,
        cidrBlocks: [...config.mediaLiveSubnets],
        description: "RTP to MediaLive",
      },
    ],
  });
  const mediaLiveSecurityGroup = new ec2.SecurityGroup(named(config, "medialive-input"), {
    vpcId: network.streamVpc.id,
    description: "MediaLive VPC input: RTP in from the MediaConnect interface subnets only",
    ingress: [
      {
        protocol: "udp",
        fromPort: ports.from,
        toPort: ports.to,
        cidrBlocks: [...config.mediaConnectSubnets],
        description: "RTP from MediaConnect",
      },
    ],
    egress: [],
  });

  return { mediaConnectSecurityGroup, mediaLiveSecurityGroup };
}
