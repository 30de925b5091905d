import {
  AutoScalingClient,
  type AutoScalingGroup,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
  SetInstanceHealthCommand,
} from "@aws-sdk/client-auto-scaling";
import { call } from "./call.ts";

export const autoScalingClient = new AutoScalingClient({});

export async function describeGroup(name: string): Promise<AutoScalingGroup | undefined> {
  const result = await call(`DescribeAutoScalingGroups ${name}`, () =>
    autoScalingClient.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })),
  );
  return result.AutoScalingGroups?.[0];
}

/** Marks the instance Unhealthy: the group replaces it (its grace period respected). */
export async function markUnhealthy(instanceId: string): Promise<void> {
  await call(`SetInstanceHealth of ${instanceId}`, () =>
    autoScalingClient.send(
      new SetInstanceHealthCommand({
        InstanceId: instanceId,
        HealthStatus: "Unhealthy",
        ShouldRespectGracePeriod: true,
      }),
    ),
  );
}

export async function setDesiredCapacity(
  groupName: string | undefined,
  desiredCapacity: number,
): Promise<void> {
  await call(`SetDesiredCapacity of ${groupName}`, () =>
    autoScalingClient.send(
      new SetDesiredCapacityCommand({
        AutoScalingGroupName: groupName,
        DesiredCapacity: desiredCapacity,
        HonorCooldown: false,
      }),
    ),
  );
}
