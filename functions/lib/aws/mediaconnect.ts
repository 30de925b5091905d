import {
  DescribeFlowCommand,
  type Flow,
  MediaConnectClient,
  StartFlowCommand,
  StopFlowCommand,
  UpdateFlowSourceCommand,
} from "@aws-sdk/client-mediaconnect";
import { call } from "./call.ts";

export const mediaConnectClient = new MediaConnectClient({});

export async function describeFlow(flowArn: string): Promise<Flow | undefined> {
  const result = await call(`DescribeFlow of ${flowArn}`, () =>
    mediaConnectClient.send(new DescribeFlowCommand({ FlowArn: flowArn })),
  );
  return result.Flow;
}

export async function startFlow(flowArn: string): Promise<void> {
  await call(`StartFlow of ${flowArn}`, () =>
    mediaConnectClient.send(new StartFlowCommand({ FlowArn: flowArn })),
  );
}

export async function stopFlow(flowArn: string): Promise<void> {
  await call(`StopFlow of ${flowArn}`, () =>
    mediaConnectClient.send(new StopFlowCommand({ FlowArn: flowArn })),
  );
}

/** Sets the one CIDR a flow source accepts contributions from. */
export async function setSourceWhitelist(flowArn: string, sourceArn: string, cidr: string): Promise<void> {
  await call(`UpdateFlowSource of ${sourceArn}`, () =>
    mediaConnectClient.send(
      new UpdateFlowSourceCommand({ FlowArn: flowArn, SourceArn: sourceArn, WhitelistCidr: cidr }),
    ),
  );
}
