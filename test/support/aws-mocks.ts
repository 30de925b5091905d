/**
 * aws-sdk-client-mock stubs of every client the Lambda functions call, for a test file to make once
 * (a client class can be stubbed only once per module graph), and the ARNs of the stack the sample
 * events in events/ come from.
 */
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { MediaConnectClient } from "@aws-sdk/client-mediaconnect";
import { MediaLiveClient } from "@aws-sdk/client-medialive";
import { SSMClient } from "@aws-sdk/client-ssm";
import { type AwsStub, mockClient } from "aws-sdk-client-mock";

// biome-ignore lint/suspicious/noExplicitAny: client-mediaconnect is pinned to an older SDK release than the mock's types (docs/aws-facts.md)
export type AnyStub = AwsStub<any, any, any>;

export const FLOW_ARN =
  "arn:aws:mediaconnect:eu-west-1:111122223333:flow:1-AbCdEfGhIjKlMnOp-abcdef123455:stream-intel-dev-contribution";
export const TARGET_GROUP_ARN =
  "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/stream-intel-dev-geneve/73e2d6bc24d8a067";

/** One stub per client the functions use; call once per test file. */
export function mockFunctionClients() {
  return {
    elb: mockClient(ElasticLoadBalancingV2Client),
    autoScaling: mockClient(AutoScalingClient),
    ec2: mockClient(EC2Client),
    cloudWatch: mockClient(CloudWatchClient),
    mediaConnect: mockClient(MediaConnectClient as never) as unknown as AnyStub,
    mediaLive: mockClient(MediaLiveClient),
    ssm: mockClient(SSMClient),
    events: mockClient(EventBridgeClient),
  };
}
