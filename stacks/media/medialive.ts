/** The MediaLive RTP_PUSH input inside the VPC (one subnet per pipeline) and the STANDARD channel. */
import { type ec2, type iam, medialive, type mediapackage } from "@pulumi/aws";
import { named, type StageConfig } from "../config.ts";
import type { Network } from "../network.ts";

const AUDIO_SELECTOR = "default";

export function createInput(
  config: StageConfig,
  p: { network: Network; role: iam.Role; policy: iam.RolePolicy; securityGroup: ec2.SecurityGroup },
): medialive.Input {
  const { network } = p;
  return new medialive.Input(
    named(config, "input"),
    {
      name: named(config, "inspected-rtp"),
      type: "RTP_PUSH",
      roleArn: p.role.arn,
      vpc: {
        subnetIds: network.mediaLiveSubnets.map((s) => s.id),
        securityGroupIds: [p.securityGroup.id],
      },
    },
    { dependsOn: [p.policy] },
  );
}

export function createChannel(
  config: StageConfig,
  p: { role: iam.Role; policy: iam.RolePolicy; input: medialive.Input; packageChannel: mediapackage.Channel },
): medialive.Channel {
  const { input, packageChannel } = p;
  return new medialive.Channel(
    named(config, "channel"),
    {
      name: named(config, "channel"),
      channelClass: "STANDARD",
      roleArn: p.role.arn,
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
      encoderSettings: encoderSettings(),
    },
    { dependsOn: [p.policy] },
  );
}

/** One 720p H.264 rendition and AAC audio, pushed to MediaPackage. */
function encoderSettings(): medialive.ChannelArgs["encoderSettings"] {
  return {
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
  };
}
