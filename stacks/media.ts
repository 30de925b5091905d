/**
 * The media chain on the inspected path: a MediaConnect flow with an SRT listener source (port 5000,
 * the first whitelist CIDR; the rotator keeps it current), a VPC interface in the MediaConnect
 * subnet of the flow's AZ, one RTP output per MediaLive pipeline endpoint (attached to that interface,
 * so it crosses the steered route tables); a MediaLive RTP_PUSH input inside the VPC (one subnet per
 * pipeline) and a STANDARD channel; a MediaPackage channel with an HLS endpoint.
 */
import { ec2, iam, medialive, mediapackage } from "@pulumi/aws";
import * as native from "@pulumi/aws-native";
import { named, type StageConfig } from "./config.ts";
import type { Network } from "./network.ts";

export interface Media {
  flow: native.mediaconnect.Flow;
  vpcInterface: native.mediaconnect.FlowVpcInterface;
  outputs: native.mediaconnect.FlowOutput[];
  input: medialive.Input;
  channel: medialive.Channel;
  packageChannel: mediapackage.Channel;
  hlsEndpoint: native.mediapackage.OriginEndpoint;
  mediaConnectSecurityGroup: ec2.SecurityGroup;
  mediaLiveSecurityGroup: ec2.SecurityGroup;
}

/**
 * What MediaConnect and MediaLive need to manage the network interfaces of their VPC attachments.
 * These EC2 actions cannot be scoped to a resource, hence "*" below.
 */
const ENI_ACTIONS = [
  "ec2:DescribeSecurityGroups",
  "ec2:DescribeSubnets",
  "ec2:DescribeNetworkInterfaces",
  "ec2:CreateNetworkInterface",
  "ec2:CreateNetworkInterfacePermission",
  "ec2:DeleteNetworkInterface",
  "ec2:DeleteNetworkInterfacePermission",
] as const;

const assume = (service: string) =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  });

export function createMedia(config: StageConfig, network: Network): Media {
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

  const flow = new native.mediaconnect.Flow(named(config, "flow"), {
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
  const mediaConnectRole = new iam.Role(named(config, "mediaconnect-role"), {
    assumeRolePolicy: assume("mediaconnect.amazonaws.com"),
  });
  new iam.RolePolicy(named(config, "mediaconnect-eni"), {
    role: mediaConnectRole.id,
    policy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: [...ENI_ACTIONS],
          // ENI management for the VPC interface: these EC2 actions do not support resource scoping.
          Resource: "*",
        },
      ],
    }),
  });
  const vpcInterface = new native.mediaconnect.FlowVpcInterface(named(config, "flow-vpc-interface"), {
    flowArn: flow.flowArn,
    name: "inspected",
    roleArn: mediaConnectRole.arn,
    securityGroupIds: [mediaConnectSecurityGroup.id],
    subnetId: network.mediaConnectSubnets[0].id,
  });

  const mediaLiveRole = new iam.Role(named(config, "medialive-role"), {
    assumeRolePolicy: assume("medialive.amazonaws.com"),
  });
  new iam.RolePolicy(named(config, "medialive-access"), {
    role: mediaLiveRole.id,
    policy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: [...ENI_ACTIONS, "ec2:DescribeAddresses", "ec2:AssociateAddress"],
          Resource: "*",
        },
        { Effect: "Allow", Action: ["mediapackage:DescribeChannel"], Resource: "*" },
        {
          Effect: "Allow",
          Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: "arn:aws:logs:*:*:log-group:ElementalMediaLive*",
        },
      ],
    }),
  });
  const input = new medialive.Input(named(config, "input"), {
    name: named(config, "inspected-rtp"),
    type: "RTP_PUSH",
    roleArn: mediaLiveRole.arn,
    vpc: {
      subnetIds: network.mediaLiveSubnets.map((s) => s.id),
      securityGroupIds: [mediaLiveSecurityGroup.id],
    },
  });
  // One output per pipeline endpoint (rtp://<ENI IP>:5000), through the VPC interface.
  const outputs = [0, 1].map(
    (pipeline) =>
      new native.mediaconnect.FlowOutput(named(config, `output-pipeline-${pipeline}`), {
        flowArn: flow.flowArn,
        name: `medialive-pipeline-${pipeline}`,
        protocol: "rtp",
        // The input's endpoints (its ENI addresses) are only readable back from the service.
        destination: medialive
          .getInputOutput({ id: input.id })
          .destinations.apply((d) => d[pipeline]?.ip ?? ""),
        port: config.mediaPorts.from,
        vpcInterfaceAttachment: { vpcInterfaceName: vpcInterface.name },
      }),
  );

  const packageChannel = new mediapackage.Channel(named(config, "package"), {
    channelId: named(config, "package"),
    description: "HLS origin",
  });
  const hlsEndpoint = new native.mediapackage.OriginEndpoint(named(config, "hls"), {
    awsId: named(config, "hls"),
    channelId: packageChannel.channelId,
    startoverWindowSeconds: 0,
    hlsPackage: { segmentDurationSeconds: 6, playlistWindowSeconds: 60 },
  });
  const channel = new medialive.Channel(named(config, "channel"), {
    name: named(config, "channel"),
    channelClass: "STANDARD",
    roleArn: mediaLiveRole.arn,
    inputSpecification: { codec: "AVC", inputResolution: "HD", maximumBitrate: "MAX_20_MBPS" },
    inputAttachments: [{ inputAttachmentName: "inspected-rtp", inputId: input.id }],
    destinations: [{ id: "package", mediaPackageSettings: [{ channelId: packageChannel.channelId }] }],
    encoderSettings: {
      timecodeConfig: { source: "EMBEDDED" },
      audioDescriptions: [
        {
          name: "audio",
          audioSelectorName: "default",
          codecSettings: { aacSettings: { bitrate: 128000, sampleRate: 48000 } },
        },
      ],
      videoDescriptions: [
        {
          name: "video-720p",
          width: 1280,
          height: 720,
          codecSettings: {
            h264Settings: { bitrate: 4_000_000, rateControlMode: "CBR", gopSize: 2, gopSizeUnits: "SECONDS" },
          },
        },
      ],
      outputGroups: [
        {
          outputGroupSettings: {
            mediaPackageGroupSettings: { destination: { destinationRefId: "package" } },
          },
          outputs: [
            {
              outputName: "720p",
              videoDescriptionName: "video-720p",
              audioDescriptionNames: ["audio"],
              outputSettings: { mediaPackageOutputSettings: {} },
            },
          ],
        },
      ],
    },
  });
  return {
    flow,
    vpcInterface,
    outputs,
    input,
    channel,
    packageChannel,
    hlsEndpoint,
    mediaConnectSecurityGroup,
    mediaLiveSecurityGroup,
  };
}
