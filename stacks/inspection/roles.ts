/** The appliances' instance role: only what an appliance needs, scoped to its own resources. */

import { type cloudwatch, getCallerIdentityOutput, iam, type s3 } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { assume } from "../assume-role.ts";
import { named, type StageConfig } from "../config.ts";
import type { Parameters } from "../parameters.ts";

export interface ApplianceRole {
  instanceRole: iam.Role;
  instancePolicy: iam.RolePolicy;
  profile: iam.InstanceProfile;
}

export function createApplianceRole(
  config: StageConfig,
  p: { parameters: Parameters; assets: s3.BucketV2; logGroup: cloudwatch.LogGroup; groupName: string },
): ApplianceRole {
  const { parameters, assets, logGroup, groupName } = p;
  const account = getCallerIdentityOutput().accountId;
  const instanceRole = new iam.Role(named(config, "appliance-role"), {
    assumeRolePolicy: assume("ec2.amazonaws.com"),
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
  return { instanceRole, instancePolicy, profile };
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
