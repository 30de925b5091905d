/**
 * The inspection tier: a Gateway Load Balancer in both AZs (cross-zone on), the GENEVE target group the
 * appliances answer (HTTP /healthz on the daemon's health port, target failover "rebalance" so a dead
 * appliance's flows move at once), its endpoint service, and the Graviton appliances: launch template
 * (Amazon Linux 2023 arm64, IMDSv2 only, user data that installs Node and the instance files from S3,
 * verifies their digests and starts the systemd unit) and Auto Scaling group (a launch hook the
 * instance completes once it serves, rolling refresh, launch-before-terminate maintenance, scaling on
 * the appliances' own load). The appliance healer is the one owner of target-health replacement.
 */
import type { autoscaling, cloudwatch, ec2, iam, lb, s3 } from "@pulumi/aws";
import { named, type StageConfig } from "./config.ts";
import { createApplianceGroup, createLaunchTemplate } from "./inspection/appliance-fleet.ts";
import { createAssets } from "./inspection/assets.ts";
import { createGatewayLoadBalancer } from "./inspection/gwlb.ts";
import { createApplianceRole } from "./inspection/roles.ts";
import { scaleOnLoad } from "./inspection/scaling.ts";
import { createApplianceSecurityGroup } from "./inspection/security-group.ts";
import type { Network } from "./network.ts";
import type { Parameters } from "./parameters.ts";

export { AMI_PARAMETER } from "./inspection/appliance-fleet.ts";
export { uploadedFiles } from "./inspection/assets.ts";
export { userData } from "./inspection/boot.ts";

export interface Inspection {
  gwlb: lb.LoadBalancer;
  targetGroup: lb.TargetGroup;
  endpointService: ec2.VpcEndpointService;
  launchTemplate: ec2.LaunchTemplate;
  group: autoscaling.Group;
  instanceRole: iam.Role;
  /** The instance role's only policy (as the stack builds it), for the IAM checks. */
  instancePolicy: iam.RolePolicy;
  applianceSecurityGroup: ec2.SecurityGroup;
  assets: s3.BucketV2;
  logGroup: cloudwatch.LogGroup;
}

export function createInspection(
  config: StageConfig,
  network: Network,
  parameters: Parameters,
  root: string,
): Inspection {
  const { gwlb, targetGroup, endpointService } = createGatewayLoadBalancer(config, network);
  const applianceSecurityGroup = createApplianceSecurityGroup(config, network);
  const assets = createAssets(config, root);
  const groupName = named(config, "appliances");
  const { instanceRole, instancePolicy, profile } = createApplianceRole(config, {
    parameters,
    assets: assets.assets,
    logGroup: assets.logGroup,
    groupName,
  });
  const fleet = {
    network,
    parameters,
    assets,
    profile,
    instancePolicy,
    applianceSecurityGroup,
    targetGroup,
    groupName,
  };
  const launchTemplate = createLaunchTemplate(config, fleet);
  const group = createApplianceGroup(config, { ...fleet, launchTemplate });
  scaleOnLoad(config, group);
  return {
    gwlb,
    targetGroup,
    endpointService,
    launchTemplate,
    group,
    instanceRole,
    instancePolicy,
    applianceSecurityGroup,
    assets: assets.assets,
    logGroup: assets.logGroup,
  };
}
