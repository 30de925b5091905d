/**
 * The inspection tier: an internal Gateway Load Balancer in both AZs (cross-zone on), the GENEVE
 * target group the appliances answer (HTTP /healthz on the daemon's health port, target failover
 * "rebalance" so a dead appliance's flows move at once), its endpoint service, and the Graviton
 * appliances: launch template (Amazon Linux 2023 arm64, IMDSv2 only, user data that installs Node and
 * the bundle from S3 and starts the systemd unit) and Auto Scaling group (ELB health checks, rolling
 * refresh, launch-before-terminate maintenance, CPU target tracking).
 */
import path from "node:path";
import { autoscaling, ec2, iam, lb, s3, ssm } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ApplianceArtifact } from "../contracts/function-env.ts";
import { named, type StageConfig } from "./config.ts";
import type { Network } from "./network.ts";
import type { Parameters } from "./parameters.ts";

export const GENEVE_PORT = 6081;
export const HEALTH_PORT = 8080;
export const AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64";

export interface Inspection {
  gwlb: lb.LoadBalancer;
  targetGroup: lb.TargetGroup;
  endpointService: ec2.VpcEndpointService;
  launchTemplate: ec2.LaunchTemplate;
  group: autoscaling.Group;
  instanceRole: iam.Role;
  applianceSecurityGroup: ec2.SecurityGroup;
  assets: s3.BucketV2;
}

export function userData(config: StageConfig, bucket: string, policyParameter: string): string {
  return `#!/bin/bash
# Stream Intelligence appliance bootstrap (Amazon Linux 2023 arm64).
set -euo pipefail
dnf install -y nodejs22 amazon-cloudwatch-agent
alternatives --set node /usr/bin/node-22 || true
id stream-intel >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin stream-intel
install -d -m 0755 /opt/stream-intel /etc/stream-intel
aws s3 cp s3://${bucket}/appliance/stream-intel-appliance.mjs /opt/stream-intel/stream-intel-appliance.mjs
aws s3 cp s3://${bucket}/appliance/stream-intel-io-linux-arm64.node /opt/stream-intel/stream-intel-io-linux-arm64.node
aws s3 cp s3://${bucket}/appliance/stream-intel-appliance.service /etc/systemd/system/stream-intel-appliance.service
TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
INSTANCE_ID=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
cat > /etc/stream-intel/appliance.env <<ENV
SI_POLICY_SSM=${policyParameter}
SI_STAGE=${config.stage}
SI_WORKERS=${config.applianceWorkers}
SI_CPU_AFFINITY=auto
SI_DRAIN_SECONDS=${config.drainSeconds}
SI_INSTANCE_ID=$INSTANCE_ID
AWS_REGION=${config.region}
ENV
cat > /opt/aws/amazon-cloudwatch-agent/etc/stream-intel.json <<'CWA'
{"logs":{"logs_collected":{"files":{"collect_list":[{"file_path":"/var/log/stream-intel/appliance.log","log_group_name":"/stream-intel/${config.stage}/appliance","log_stream_name":"{instance_id}"}]}},"metrics_collected":{"emf":{}}}}
CWA
mkdir -p /etc/systemd/system/stream-intel-appliance.service.d /var/log/stream-intel
printf '[Service]\\nStandardOutput=append:/var/log/stream-intel/appliance.log\\nStandardError=append:/var/log/stream-intel/appliance.log\\n' > /etc/systemd/system/stream-intel-appliance.service.d/log.conf
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/stream-intel.json
systemctl daemon-reload
systemctl enable --now stream-intel-appliance
`;
}

export function createInspection(
  config: StageConfig,
  network: Network,
  parameters: Parameters,
  root: string,
): Inspection {
  const gwlb = new lb.LoadBalancer(named(config, "gwlb"), {
    loadBalancerType: "gateway",
    internal: true,
    subnets: network.gwlbSubnets.map((s) => s.id),
    enableCrossZoneLoadBalancing: true,
    enableDeletionProtection: config.stage === "production",
  });
  const targetGroup = new lb.TargetGroup(named(config, "geneve"), {
    name: named(config, "geneve").slice(0, 32),
    protocol: "GENEVE",
    port: GENEVE_PORT,
    vpcId: network.inspectionVpc.id,
    targetType: "instance",
    deregistrationDelay: config.deregistrationDelaySeconds,
    healthCheck: {
      enabled: true,
      protocol: "HTTP",
      port: String(HEALTH_PORT),
      path: "/healthz",
      matcher: "200",
      interval: 10,
      timeout: 5,
      healthyThreshold: 3,
      unhealthyThreshold: 3,
    },
    targetFailovers: [{ onDeregistration: "rebalance", onUnhealthy: "rebalance" }],
  });
  new lb.Listener(named(config, "gwlb-listener"), {
    loadBalancerArn: gwlb.arn,
    defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
  });
  const endpointService = new ec2.VpcEndpointService(named(config, "gwlb-service"), {
    acceptanceRequired: false,
    gatewayLoadBalancerArns: [gwlb.arn],
  });

  const applianceSecurityGroup = new ec2.SecurityGroup(named(config, "appliances"), {
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
        description: "VPC endpoints",
      },
    ],
  });

  const assets = new s3.BucketV2(named(config, "appliance-assets"), {
    forceDestroy: config.stage !== "production",
  });
  new s3.BucketPublicAccessBlock(named(config, "appliance-assets-private"), {
    bucket: assets.id,
    blockPublicAcls: true,
    blockPublicPolicy: true,
    ignorePublicAcls: true,
    restrictPublicBuckets: true,
  });
  const upload = (name: string, file: string) =>
    new s3.BucketObjectv2(named(config, `asset-${name}`), {
      bucket: assets.id,
      key: `appliance/${name}`,
      source: new pulumi.asset.FileAsset(path.join(root, file)),
    });
  upload("stream-intel-appliance.mjs", ApplianceArtifact.bundle);
  upload("stream-intel-appliance.service", ApplianceArtifact.systemdUnit);
  upload("stream-intel-io-linux-arm64.node", ApplianceArtifact.nativeAddon);

  const instanceRole = new iam.Role(named(config, "appliance-role"), {
    assumeRolePolicy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
    }),
    managedPolicyArns: [
      "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
      "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
    ],
  });
  new iam.RolePolicy(named(config, "appliance-reads"), {
    role: instanceRole.id,
    policy: pulumi.all([parameters.policy.arn, assets.arn]).apply(([policyArn, bucketArn]) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: ["ssm:GetParameter"], Resource: [policyArn] },
          { Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${bucketArn}/appliance/*`] },
        ],
      }),
    ),
  });
  const profile = new iam.InstanceProfile(named(config, "appliance-profile"), { role: instanceRole.name });
  const ami = ssm.getParameterOutput({ name: AMI_PARAMETER });
  const launchTemplate = new ec2.LaunchTemplate(named(config, "appliance"), {
    imageId: ami.value,
    instanceType: config.instanceType,
    iamInstanceProfile: { arn: profile.arn },
    vpcSecurityGroupIds: [applianceSecurityGroup.id],
    metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
    monitoring: { enabled: true },
    userData: pulumi
      .all([assets.bucket, parameters.policy.name])
      .apply(([bucket, policy]) => Buffer.from(userData(config, bucket, policy)).toString("base64")),
    updateDefaultVersion: true,
    tagSpecifications: [
      { resourceType: "instance", tags: { Name: named(config, "appliance"), Stage: config.stage } },
    ],
  });
  const group = new autoscaling.Group(named(config, "appliances"), {
    name: named(config, "appliances"),
    minSize: config.minAppliances,
    maxSize: config.maxAppliances,
    desiredCapacity: config.minAppliances,
    vpcZoneIdentifiers: network.applianceSubnets.map((s) => s.id),
    launchTemplate: { id: launchTemplate.id, version: launchTemplate.latestVersion.apply(String) },
    targetGroupArns: [targetGroup.arn],
    healthCheckType: "ELB",
    healthCheckGracePeriod: config.healthCheckGraceSeconds,
    instanceMaintenancePolicy: { minHealthyPercentage: 100, maxHealthyPercentage: 200 },
    instanceRefresh: {
      strategy: "Rolling",
      preferences: { minHealthyPercentage: 100, maxHealthyPercentage: 200 },
    },
    enabledMetrics: ["GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances"],
    tags: [{ key: "Stage", value: config.stage, propagateAtLaunch: true }],
  });
  new autoscaling.Policy(named(config, "appliances-cpu"), {
    autoscalingGroupName: group.name,
    policyType: "TargetTrackingScaling",
    targetTrackingConfiguration: {
      predefinedMetricSpecification: { predefinedMetricType: "ASGAverageCPUUtilization" },
      targetValue: 60,
    },
  });
  return {
    gwlb,
    targetGroup,
    endpointService,
    launchTemplate,
    group,
    instanceRole,
    applianceSecurityGroup,
    assets,
  };
}
