/**
 * The inspection tier: a Gateway Load Balancer in both AZs (cross-zone on), the GENEVE target group the
 * appliances answer (HTTP /healthz on the daemon's health port, target failover "rebalance" so a dead
 * appliance's flows move at once), its endpoint service, and the Graviton appliances: launch template
 * (Amazon Linux 2023 arm64, IMDSv2 only, user data that installs Node and the instance files from S3,
 * verifies their digests and starts the systemd unit) and Auto Scaling group (a launch hook the
 * instance completes once it serves, rolling refresh, launch-before-terminate maintenance, scaling on
 * the appliances' own load). The appliance healer is the one owner of target-health replacement.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { autoscaling, cloudwatch, ec2, getCallerIdentityOutput, iam, lb, s3, ssm } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { EMF_NAMESPACE, EmfDimension, EmfMetric } from "../contracts/appliance-metrics.ts";
import { ApplianceArtifact, type InstanceFile } from "../contracts/function-env.ts";
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
  /** The instance role's only policy (as the stack builds it), for the IAM checks. */
  instancePolicy: iam.RolePolicy;
  applianceSecurityGroup: ec2.SecurityGroup;
  assets: s3.BucketV2;
  logGroup: cloudwatch.LogGroup;
}

/** The launch lifecycle hook an instance completes itself once its daemon answers /healthz with 200. */
export const LAUNCH_HOOK = "appliance-serving";
/** How long a launching instance may take to serve before the ASG abandons (terminates) it. */
export const LAUNCH_HOOK_TIMEOUT_SECONDS = 900;

/** An instance file as uploaded: its key in the bucket and the digest user data checks. */
export interface UploadedFile extends InstanceFile {
  key: string;
  sha256: string;
}

/** Reads each instance file and names its object by content, so a new build is a new launch template. */
export function uploadedFiles(
  root: string,
  files: readonly InstanceFile[] = ApplianceArtifact.instanceFiles,
) {
  return files.map((file): UploadedFile => {
    const location = path.join(root, file.source);
    if (!existsSync(location))
      throw new Error(`${file.source} is missing: run \`npm run build:appliance\` before deploying`);
    const sha256 = createHash("sha256").update(readFileSync(location)).digest("hex");
    return { ...file, sha256, key: `appliance/${sha256.slice(0, 16)}/${path.basename(file.source)}` };
  });
}

export interface BootSettings {
  bucket: string;
  policyParameter: string;
  groupName: string;
  logGroupName: string;
  files: readonly UploadedFile[];
}

export function userData(config: StageConfig, boot: BootSettings): string {
  const downloads = boot.files
    .map(
      (f) =>
        `install -d -m 0755 "$(dirname ${f.installTo})"
aws s3 cp --only-show-errors s3://${boot.bucket}/${f.key} ${f.installTo}
echo "${f.sha256}  ${f.installTo}" | sha256sum --check --status
chmod ${f.mode} ${f.installTo}`,
    )
    .join("\n");
  return `#!/bin/bash
# Stream Intelligence appliance bootstrap (Amazon Linux 2023 arm64).
set -euo pipefail
export AWS_REGION=${config.region} AWS_DEFAULT_REGION=${config.region}
dnf install -y nodejs22 amazon-cloudwatch-agent
alternatives --set node /usr/bin/node-22 || true
id stream-intel >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin stream-intel
install -d -m 0755 /opt/stream-intel /etc/stream-intel
${downloads}
TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
INSTANCE_ID=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
cat > /etc/stream-intel/appliance.env <<ENV
SI_POLICY_SSM=${boot.policyParameter}
SI_STAGE=${config.stage}
SI_WORKERS=${config.applianceWorkers}
SI_CPU_AFFINITY=auto
SI_DRAIN_SECONDS=${config.drainSeconds}
SI_INSTANCE_ID=$INSTANCE_ID
AWS_REGION=${config.region}
ENV
cat > /opt/aws/amazon-cloudwatch-agent/etc/stream-intel.json <<'CWA'
{"logs":{"logs_collected":{"files":{"collect_list":[{"file_path":"/var/log/stream-intel/appliance.log","log_group_name":"${boot.logGroupName}","log_stream_name":"{instance_id}"}]}},"metrics_collected":{"emf":{}}}}
CWA
mkdir -p /etc/systemd/system/stream-intel-appliance.service.d /var/log/stream-intel
printf '[Service]\\nStandardOutput=append:/var/log/stream-intel/appliance.log\\nStandardError=append:/var/log/stream-intel/appliance.log\\n' > /etc/systemd/system/stream-intel-appliance.service.d/log.conf
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/stream-intel.json
systemctl daemon-reload
systemctl enable --now stream-intel-appliance
# In service only once the daemon serves: until then the ASG counts this instance as launching, so a
# refresh or a replacement never retires a serving appliance for one that is not (ABANDON on timeout).
for _ in $(seq 1 ${Math.floor((LAUNCH_HOOK_TIMEOUT_SECONDS - 60) / 5)}); do
  if curl -sf -o /dev/null http://127.0.0.1:${HEALTH_PORT}/healthz; then
    aws autoscaling complete-lifecycle-action --lifecycle-hook-name ${LAUNCH_HOOK} \\
      --auto-scaling-group-name ${boot.groupName} --instance-id "$INSTANCE_ID" --lifecycle-action-result CONTINUE
    exit 0
  fi
  sleep 5
done
echo "stream-intel-appliance never answered /healthz with 200: leaving the launch to be abandoned" >&2
exit 1
`;
}

export function createInspection(
  config: StageConfig,
  network: Network,
  parameters: Parameters,
  root: string,
): Inspection {
  const account = getCallerIdentityOutput().accountId;
  // A gateway load balancer takes no scheme: the provider sends Scheme=internal whenever `internal` is
  // set, and ELB refuses a scheme for type gateway.
  const gwlb = new lb.LoadBalancer(named(config, "gwlb"), {
    loadBalancerType: "gateway",
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
  const files = uploadedFiles(root);
  const uploads = files.map(
    (file) =>
      new s3.BucketObjectv2(named(config, `asset-${path.basename(file.source)}`), {
        bucket: assets.id,
        key: file.key,
        source: new pulumi.asset.FileAsset(path.join(root, file.source)),
      }),
  );

  // Created here with a retention, so the agent never creates it without one.
  const logGroup = new cloudwatch.LogGroup(named(config, "appliance-logs"), {
    name: `/stream-intel/${config.stage}/appliance`,
    retentionInDays: 30,
  });

  const groupName = named(config, "appliances");
  const instanceRole = new iam.Role(named(config, "appliance-role"), {
    assumeRolePolicy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
    }),
  });
  const instancePolicy = new iam.RolePolicy(named(config, "appliance-access"), {
    role: instanceRole.id,
    policy: pulumi
      .all([parameters.policy.arn, assets.arn, logGroup.arn, account])
      .apply(([policyArn, bucketArn, logGroupArn, accountId]) =>
        JSON.stringify(appliancePolicy({ config, accountId, policyArn, bucketArn, logGroupArn, groupName })),
      ),
  });
  const profile = new iam.InstanceProfile(named(config, "appliance-profile"), { role: instanceRole.name });
  const ami = ssm.getParameterOutput({ name: AMI_PARAMETER });
  const launchTemplate = new ec2.LaunchTemplate(
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
  // One owner of replacement: the appliance healer (functions/appliance-healer.ts), which replaces an
  // unhealthy target one at a time, never below the minimum, never inside the grace period. The group
  // itself acts only on what EC2 reports (status checks), and counts an instance in service only once
  // it has completed its launch hook by serving.
  const group = new autoscaling.Group(
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
    assets,
    logGroup,
  };
}

/**
 * What an appliance may do: read its own policy parameter and files, write its own log group, complete
 * its own group's launch hook, and what the SSM agent needs for Session Manager. Not the managed
 * AmazonSSMManagedInstanceCore, which lets an instance read every parameter in the account.
 */
export function appliancePolicy(p: {
  config: StageConfig;
  accountId: string;
  policyArn: string;
  bucketArn: string;
  logGroupArn: string;
  groupName: string;
}) {
  const { region } = p.config;
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: ["ssm:GetParameter"], Resource: [p.policyArn] },
      { Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${p.bucketArn}/appliance/*`] },
      {
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        Resource: [p.logGroupArn, `${p.logGroupArn}:*`],
      },
      {
        Effect: "Allow",
        Action: ["autoscaling:CompleteLifecycleAction"],
        // The group's ARN carries an id only known once it exists; its name is fixed.
        Resource: [
          `arn:aws:autoscaling:${region}:${p.accountId}:autoScalingGroup:*:autoScalingGroupName/${p.groupName}`,
        ],
      },
      {
        Effect: "Allow",
        Action: ["ssm:UpdateInstanceInformation"],
        Resource: [`arn:aws:ec2:${region}:${p.accountId}:instance/*`],
      },
      {
        Effect: "Allow",
        Action: [...SESSION_MANAGER_CHANNELS],
        Resource: "*",
      },
    ],
  };
}

/** The SSM agent's message channels (Session Manager): IAM has no resource type for them. */
export const SESSION_MANAGER_CHANNELS = [
  "ssmmessages:CreateControlChannel",
  "ssmmessages:CreateDataChannel",
  "ssmmessages:OpenControlChannel",
  "ssmmessages:OpenDataChannel",
  "ec2messages:AcknowledgeMessage",
  "ec2messages:DeleteMessage",
  "ec2messages:FailMessage",
  "ec2messages:GetEndpoint",
  "ec2messages:GetMessages",
  "ec2messages:SendReply",
] as const;

/**
 * Scale on what saturates an appliance: its single receive loop (pinned to one of two vCPUs, so
 * average CPU stays near 50 % while the loop is full). Target tracking on the packets each appliance
 * receives, and one more appliance whenever the kernel drops datagrams the loops could not read.
 */
function scaleOnLoad(config: StageConfig, group: autoscaling.Group): void {
  const stage = [{ name: EmfDimension.stage, value: config.stage }];
  new autoscaling.Policy(named(config, "appliances-load"), {
    autoscalingGroupName: group.name,
    policyType: "TargetTrackingScaling",
    targetTrackingConfiguration: {
      customizedMetricSpecification: {
        namespace: EMF_NAMESPACE,
        metricName: EmfMetric.packetsReceived,
        metricDimensions: stage,
        // Each appliance reports its count per 60 s EMF interval; the Stage series' average over the
        // appliances is the per-appliance load target tracking needs.
        statistic: "Average",
      },
      targetValue: config.scaleOutPacketsPerSecond * 60,
    },
  });
  const stepOut = new autoscaling.Policy(named(config, "appliances-drops"), {
    autoscalingGroupName: group.name,
    policyType: "StepScaling",
    adjustmentType: "ChangeInCapacity",
    stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
  });
  new cloudwatch.MetricAlarm(named(config, "appliance-socket-drops"), {
    name: named(config, "appliance-socket-drops"),
    alarmDescription: "The kernel dropped GENEVE datagrams the appliances could not read in time: add one",
    namespace: EMF_NAMESPACE,
    metricName: EmfMetric.socketReceiveDrops,
    dimensions: { [EmfDimension.stage]: config.stage },
    statistic: "Sum",
    period: 60,
    evaluationPeriods: 2,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    alarmActions: [stepOut.arn],
  });
}
