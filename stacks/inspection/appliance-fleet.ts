/**
 * The Graviton appliances: a launch template (Amazon Linux 2023 arm64, IMDSv2 only, the boot script of
 * boot.ts) and the Auto Scaling group (a launch hook the instance completes once it serves, rolling
 * refresh, launch-before-terminate maintenance).
 */
import { autoscaling, ec2, type iam, type lb, ssm } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { named, type StageConfig } from "../config.ts";
import type { Network } from "../network.ts";
import type { Parameters } from "../parameters.ts";
import type { ApplianceAssets } from "./assets.ts";
import { LAUNCH_HOOK, LAUNCH_HOOK_TIMEOUT_SECONDS, userData } from "./boot.ts";

export const AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64";

export interface FleetInputs {
  network: Network;
  parameters: Parameters;
  assets: ApplianceAssets;
  profile: iam.InstanceProfile;
  instancePolicy: iam.RolePolicy;
  applianceSecurityGroup: ec2.SecurityGroup;
  targetGroup: lb.TargetGroup;
  groupName: string;
}

export function createLaunchTemplate(config: StageConfig, p: FleetInputs): ec2.LaunchTemplate {
  const { parameters, profile, instancePolicy, applianceSecurityGroup, groupName } = p;
  const { assets, logGroup, files, uploads } = p.assets;
  const ami = ssm.getParameterOutput({ name: AMI_PARAMETER });
  return new ec2.LaunchTemplate(
    named(config, "appliance"),
    {
      imageId: ami.value,
      instanceType: config.instanceType,
      iamInstanceProfile: { arn: profile.arn },
      vpcSecurityGroupIds: [applianceSecurityGroup.id],
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      monitoring: { enabled: true },
      userData: pulumi
        .all([assets.bucket, parameters.policy.name, logGroup.name])
        .apply(([bucket, policy, logGroupName]) =>
          Buffer.from(
            userData(config, { bucket, policyParameter: policy, groupName, logGroupName, files }),
          ).toString("base64"),
        ),
      updateDefaultVersion: true,
      tagSpecifications: [
        { resourceType: "instance", tags: { Name: named(config, "appliance"), Stage: config.stage } },
      ],
    },
    // Instances download the files and need the policy as soon as they boot.
    { dependsOn: [...uploads, instancePolicy] },
  );
}

export function createApplianceGroup(
  config: StageConfig,
  p: FleetInputs & { launchTemplate: ec2.LaunchTemplate },
): autoscaling.Group {
  const { network, launchTemplate, targetGroup, groupName } = p;
  // One owner of replacement: the appliance healer (functions/appliance-healer.ts), which replaces an
  // unhealthy target one at a time, never below the minimum, never inside the grace period. The group
  // itself acts only on what EC2 reports (status checks), and counts an instance in service only once
  // it has completed its launch hook by serving.
  return new autoscaling.Group(
    named(config, "appliances"),
    {
      name: groupName,
      minSize: config.minAppliances,
      maxSize: config.maxAppliances,
      desiredCapacity: config.minAppliances,
      vpcZoneIdentifiers: network.applianceSubnets.map((s) => s.id),
      launchTemplate: { id: launchTemplate.id, version: launchTemplate.latestVersion.apply(String) },
      targetGroupArns: [targetGroup.arn],
      healthCheckType: "EC2",
      healthCheckGracePeriod: config.healthCheckGraceSeconds,
      initialLifecycleHooks: [
        {
          name: LAUNCH_HOOK,
          lifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
          defaultResult: "ABANDON",
          heartbeatTimeout: LAUNCH_HOOK_TIMEOUT_SECONDS,
        },
      ],
      instanceMaintenancePolicy: { minHealthyPercentage: 100, maxHealthyPercentage: 200 },
      instanceRefresh: {
        strategy: "Rolling",
        preferences: { minHealthyPercentage: 100, maxHealthyPercentage: 200 },
      },
      enabledMetrics: ["GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances"],
      tags: [{ key: "Stage", value: config.stage, propagateAtLaunch: true }],
    },
    // A booting appliance needs SSM, Logs, Auto Scaling and S3 through the endpoints at once.
    { dependsOn: [...network.interfaceEndpoints, network.s3Endpoint] },
  );
}
