import {
  DescribeChannelCommand,
  MediaLiveClient,
  StartChannelCommand,
  StopChannelCommand,
} from "@aws-sdk/client-medialive";
import { call } from "./call.ts";

export const mediaLiveClient = new MediaLiveClient({});

/** The channel's state (IDLE, STARTING, RUNNING, ...), as DescribeChannel reports it. */
export async function channelState(channelId: string): Promise<string | undefined> {
  const result = await call(`DescribeChannel of ${channelId}`, () =>
    mediaLiveClient.send(new DescribeChannelCommand({ ChannelId: channelId })),
  );
  return result.State;
}

export async function startChannel(channelId: string): Promise<void> {
  await call(`StartChannel of ${channelId}`, () =>
    mediaLiveClient.send(new StartChannelCommand({ ChannelId: channelId })),
  );
}

export async function stopChannel(channelId: string): Promise<void> {
  await call(`StopChannel of ${channelId}`, () =>
    mediaLiveClient.send(new StopChannelCommand({ ChannelId: channelId })),
  );
}
