import { cloudwatch, ec2, iam } from "@pulumi/aws";
import { assume } from "../assume-role.ts";
import { named, type StageConfig } from "../config.ts";

/** All the VPC's traffic to a log group of its own, a minute at a time. */
export function flowLogs(config: StageConfig, name: string, vpc: ec2.Vpc): void {
  const group = new cloudwatch.LogGroup(named(config, `${name}-flow-logs`), { retentionInDays: 30 });
  const role = new iam.Role(named(config, `${name}-flow-logs-role`), {
    assumeRolePolicy: assume("vpc-flow-logs.amazonaws.com"),
  });
  new iam.RolePolicy(named(config, `${name}-flow-logs-write`), {
    role: role.id,
    policy: group.arn.apply((arn) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            Resource: [arn, `${arn}:*`],
          },
        ],
      }),
    ),
  });
  new ec2.FlowLog(named(config, `${name}-flow-log`), {
    vpcId: vpc.id,
    trafficType: "ALL",
    logDestinationType: "cloud-watch-logs",
    logDestination: group.arn,
    iamRoleArn: role.arn,
    maxAggregationInterval: 60,
  });
}
