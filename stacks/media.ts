/**
 * The media chain on the inspected path: a MediaConnect flow with an SRT listener source (port 5000,
 * the first whitelist CIDR; the rotator keeps it current), a VPC interface in the MediaConnect
 * subnet of the flow's AZ, one RTP output per MediaLive pipeline endpoint (attached to that interface,
 * so it crosses the steered route tables); a MediaLive RTP_PUSH input inside the VPC (one subnet per
 * pipeline) and a STANDARD channel; a MediaPackage channel with an HLS endpoint.
 */
import { type ec2, getCallerIdentityOutput, type iam, type medialive, type mediapackage } from "@pulumi/aws";
import type * as native from "@pulumi/aws-native";
import type { StageConfig } from "./config.ts";
import { createFlow, createFlowOutputs, createFlowVpcInterface } from "./media/mediaconnect.ts";
import { createChannel, createInput } from "./media/medialive.ts";
import { createPackaging } from "./media/packaging.ts";
import { createMediaConnectRole, createMediaLivePolicy, createMediaLiveRole } from "./media/roles.ts";
import { createMediaSecurityGroups } from "./media/security-groups.ts";
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

export function createMedia(config: StageConfig, network: Network): Media {
  const { mediaConnectSecurityGroup, mediaLiveSecurityGroup } = createMediaSecurityGroups(config, network);
  const flow = createFlow(config);
  const account = getCallerIdentityOutput().accountId;
  const mediaConnect = createMediaConnectRole(config, {
    network,
    securityGroup: mediaConnectSecurityGroup,
    account,
  });
  const vpcInterface = createFlowVpcInterface(config, {
    network,
    flow,
    role: mediaConnect.role,
    policy: mediaConnect.policy,
    securityGroup: mediaConnectSecurityGroup,
  });
  const mediaLiveRole = createMediaLiveRole(config);
  const { packageChannel, hlsEndpoint } = createPackaging(config);
  const mediaLivePolicy = createMediaLivePolicy(config, {
    network,
    securityGroup: mediaLiveSecurityGroup,
    role: mediaLiveRole,
    packageChannel,
    account,
  });
  const live = { role: mediaLiveRole, policy: mediaLivePolicy };
  const input = createInput(config, { ...live, network, securityGroup: mediaLiveSecurityGroup });
  const outputs = createFlowOutputs(config, flow, vpcInterface, input);
  const channel = createChannel(config, { ...live, input, packageChannel });
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
    mediaConnectPolicy: mediaConnect.policy,
    mediaLivePolicy,
  };
}
