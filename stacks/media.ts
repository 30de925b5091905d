/**
 * The media chain on the inspected path: a MediaConnect flow with an SRT listener source (port 5000,
 * the first whitelist CIDR; the rotator keeps it current), a VPC interface in the MediaConnect
 * subnet of the flow's AZ, one RTP output per MediaLive pipeline endpoint (attached to that interface,
 * so it crosses the steered route tables); a MediaLive RTP_PUSH input inside the VPC (one subnet per
 * pipeline) and a STANDARD channel; a MediaPackage channel with an HLS endpoint.
 */
import { ec2, getCallerIdentityOutput, iam, medialive, mediapackage } from "@pulumi/aws";
import * as native from "@pulumi/aws-native";
import * as pulumi from "@pulumi/pulumi";
import { MEDIALIVE_RTP_PORT, named, type StageConfig } from "./config.ts";
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
  /** The service roles' policies as the stack builds them, for the IAM checks. */
  mediaConnectPolicy: iam.RolePolicy;
  mediaLivePolicy: iam.RolePolicy;
}

/** EC2 reads IAM cannot scope (no resource type): what the services look up before creating ENIs. */
export const ENI_LOOKUPS = [
  "ec2:DescribeSecurityGroups",
  "ec2:DescribeSubnets",
  "ec2:DescribeNetworkInterfaces",
] as const;

/**
 * What MediaConnect (VPC interface) and MediaLive (VPC input) need to manage their network interfaces,
 * scoped as the Service Authorization Reference allows: CreateNetworkInterface names the subnet and the
 * security group (both required resources), so only this stage's subnets and group; the interface
 * operations name the network interface, whose `ec2:Subnet` condition keeps them in the same subnets.
 */
export function eniStatements(p: {
  region: string;
  accountId: string;
  subnetIds: string[];
  securityGroupId: string;
}) {
  const arn = (type: string, id: string) => `arn:aws:ec2:${p.region}:${p.accountId}:${type}/${id}`;
  const subnets = p.subnetIds.map((id) => arn("subnet", id));
  return [
    { Effect: "Allow", Action: [...ENI_LOOKUPS], Resource: "*" },
    {
      Effect: "Allow",
      Action: ["ec2:CreateNetworkInterface"],
      Resource: [arn("network-interface", "*"), ...subnets, arn("security-group", p.securityGroupId)],
    },
    {
      Effect: "Allow",
      Action: [
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
      ],
      Resource: [arn("network-interface", "*")],
      Condition: { ArnEquals: { "ec2:Subnet": subnets } },
    },
  ];
}

const AUDIO_SELECTOR = "default";

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
  const account = getCallerIdentityOutput().accountId;
  const mediaConnectPolicy = new iam.RolePolicy(named(config, "mediaconnect-eni"), {
    role: mediaConnectRole.id,
    policy: pulumi
      .all([account, network.mediaConnectSubnets[0].id, mediaConnectSecurityGroup.id])
      .apply(([accountId, subnetId, securityGroupId]) =>
        JSON.stringify({
          Version: "2012-10-17",
          Statement: eniStatements({
            region: config.region,
            accountId,
            subnetIds: [subnetId],
            securityGroupId,
          }),
        }),
      ),
  });
  const vpcInterface = new native.mediaconnect.FlowVpcInterface(
    named(config, "flow-vpc-interface"),
    {
      flowArn: flow.flowArn,
      name: "inspected",
      roleArn: mediaConnectRole.arn,
      securityGroupIds: [mediaConnectSecurityGroup.id],
      subnetId: network.mediaConnectSubnets[0].id,
    },
    // Created after, and removed before, the permissions MediaConnect needs to manage its ENIs.
    { dependsOn: [mediaConnectPolicy] },
  );

  const mediaLiveRole = new iam.Role(named(config, "medialive-role"), {
    assumeRolePolicy: assume("medialive.amazonaws.com"),
  });
  const packageChannel = new mediapackage.Channel(named(config, "package"), {
    channelId: named(config, "package"),
    description: "HLS origin",
  });
  const mediaLivePolicy = new iam.RolePolicy(named(config, "medialive-access"), {
    role: mediaLiveRole.id,
    policy: pulumi
      .all([
        account,
        pulumi.all(network.mediaLiveSubnets.map((s) => s.id)),
        mediaLiveSecurityGroup.id,
        packageChannel.arn,
      ])
      .apply(([accountId, subnetIds, securityGroupId, packageArn]) =>
        JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            ...eniStatements({ region: config.region, accountId, subnetIds, securityGroupId }),
            { Effect: "Allow", Action: ["mediapackage:DescribeChannel"], Resource: [packageArn] },
            {
              Effect: "Allow",
              Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
              Resource: `arn:aws:logs:${config.region}:${accountId}:log-group:ElementalMediaLive*`,
            },
          ],
        }),
      ),
  });
  const input = new medialive.Input(
    named(config, "input"),
    {
      name: named(config, "inspected-rtp"),
      type: "RTP_PUSH",
      roleArn: mediaLiveRole.arn,
      vpc: {
        subnetIds: network.mediaLiveSubnets.map((s) => s.id),
        securityGroupIds: [mediaLiveSecurityGroup.id],
      },
    },
    { dependsOn: [mediaLivePolicy] },
  );
  // One output per pipeline endpoint (rtp://<ENI IP>:5000), through the VPC interface. The input's
  // endpoints are only readable back from the service; their port is MediaLive's, not ours to choose.
  const destinations = medialive.getInputOutput({ id: input.id }).destinations;
  const outputs = [0, 1].map(
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

  const hlsEndpoint = new native.mediapackage.OriginEndpoint(named(config, "hls"), {
    awsId: named(config, "hls"),
    channelId: packageChannel.channelId,
    startoverWindowSeconds: 0,
    hlsPackage: { segmentDurationSeconds: 6, playlistWindowSeconds: 60 },
    // The origin answers only the viewers' ranges (a CDN's, the operators'), never the whole internet.
    whitelist: [...config.hlsViewerCidrs],
  });
  const channel = new medialive.Channel(
    named(config, "channel"),
    {
      name: named(config, "channel"),
      channelClass: "STANDARD",
      roleArn: mediaLiveRole.arn,
      inputSpecification: { codec: "AVC", inputResolution: "HD", maximumBitrate: "MAX_20_MBPS" },
      inputAttachments: [
        {
          inputAttachmentName: "inspected-rtp",
          inputId: input.id,
          // The audio description below names this selector; without it the reference dangles.
          inputSettings: {
            audioSelectors: [{ name: AUDIO_SELECTOR }],
            sourceEndBehavior: "CONTINUE",
          },
        },
      ],
      destinations: [{ id: "package", mediaPackageSettings: [{ channelId: packageChannel.channelId }] }],
      encoderSettings: {
        timecodeConfig: { source: "EMBEDDED" },
        audioDescriptions: [
          {
            name: "audio",
            audioSelectorName: AUDIO_SELECTOR,
            codecSettings: { aacSettings: { bitrate: 128000, sampleRate: 48000 } },
          },
        ],
        videoDescriptions: [
          {
            name: "video-720p",
            width: 1280,
            height: 720,
            codecSettings: {
              h264Settings: {
                bitrate: 4_000_000,
                rateControlMode: "CBR",
                gopSize: 2,
                gopSizeUnits: "SECONDS",
              },
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
    },
    { dependsOn: [mediaLivePolicy] },
  );
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
    mediaConnectPolicy,
    mediaLivePolicy,
  };
}
