/** The service roles MediaConnect and MediaLive assume to manage their network interfaces in the VPC. */

import { type ec2, iam, type mediapackage } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { assume } from "../assume-role.ts";
import { named, type StageConfig } from "../config.ts";
import type { Network } from "../network.ts";

/** EC2 reads IAM cannot scope (no resource type): what the services look up before creating ENIs. */
const ENI_LOOKUPS = [
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
function eniStatements(p: {
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

export function createMediaConnectRole(
  config: StageConfig,
  p: { network: Network; securityGroup: ec2.SecurityGroup; account: pulumi.Input<string> },
) {
  const { network, securityGroup, account } = p;
  const role = new iam.Role(named(config, "mediaconnect-role"), {
    assumeRolePolicy: assume("mediaconnect.amazonaws.com"),
  });
  const policy = new iam.RolePolicy(named(config, "mediaconnect-eni"), {
    role: role.id,
    policy: pulumi
      .all([account, network.mediaConnectSubnets[0].id, securityGroup.id])
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
  return { role, policy };
}

export function createMediaLiveRole(config: StageConfig): iam.Role {
  return new iam.Role(named(config, "medialive-role"), {
    assumeRolePolicy: assume("medialive.amazonaws.com"),
  });
}

/** MediaLive's access: its ENIs, the MediaPackage channel it pushes to, and its own log groups. */
export function createMediaLivePolicy(
  config: StageConfig,
  p: {
    network: Network;
    securityGroup: ec2.SecurityGroup;
    role: iam.Role;
    packageChannel: mediapackage.Channel;
    account: pulumi.Input<string>;
  },
): iam.RolePolicy {
  const { network, packageChannel, securityGroup, account } = p;
  return new iam.RolePolicy(named(config, "medialive-access"), {
    role: p.role.id,
    policy: pulumi
      .all([
        account,
        pulumi.all(network.mediaLiveSubnets.map((s) => s.id)),
        securityGroup.id,
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
}
