import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { call } from "./call.ts";

export const ec2Client = new EC2Client({});

/** When each of the instances was launched (an instance EC2 does not report is left out). */
export async function launchTimes(instanceIds: string[]): Promise<Map<string, Date>> {
  const described = await call(`DescribeInstances ${instanceIds.join(", ")}`, () =>
    ec2Client.send(new DescribeInstancesCommand({ InstanceIds: instanceIds })),
  );
  return new Map(
    (described.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .filter((i) => i.InstanceId && i.LaunchTime)
      .map((i) => [i.InstanceId!, new Date(i.LaunchTime!)]),
  );
}
