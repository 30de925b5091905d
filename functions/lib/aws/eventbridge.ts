import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { EVENT_SOURCE } from "../../../contracts/events.ts";
import { call } from "./call.ts";

export const eventsClient = new EventBridgeClient({});

/** Puts one of this system's own events (source EVENT_SOURCE) on the bus. */
export async function putCustomEvent(
  eventBusName: string,
  detailType: string,
  detail: object,
): Promise<void> {
  await call(`PutEvents ${detailType}`, () =>
    eventsClient.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: EVENT_SOURCE,
            DetailType: detailType,
            EventBusName: eventBusName,
            Detail: JSON.stringify(detail),
          },
        ],
      }),
    ),
  );
}
