import {
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  type TargetHealthDescription,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { call } from "./call.ts";

export const elbClient = new ElasticLoadBalancingV2Client({});

/** The target group's targets and their health (the appliances behind the GWLB). */
export async function targetHealth(targetGroupArn: string): Promise<TargetHealthDescription[]> {
  const result = await call(`DescribeTargetHealth of ${targetGroupArn}`, () =>
    elbClient.send(new DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn })),
  );
  return result.TargetHealthDescriptions ?? [];
}
