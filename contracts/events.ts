/**
 * Custom EventBridge events of this product: the `source` and `detail-type` strings are a public
 * contract (operators put them in rules and scripts). AWS's own event names are not repeated here;
 * the functions that consume them own their schemas.
 */
export const EVENT_SOURCE = "stream-intel";

export const DetailType = {
  whitelistRotationRequested: "Whitelist Rotation Requested",
  whitelistRotated: "Whitelist Rotated",
  startStream: "Start Stream",
  stopStream: "Stop Stream",
  /** Raised by the stream manager when it refuses to start: not enough healthy appliances. */
  streamStartRefused: "Stream Start Refused",
} as const;
export type DetailType = (typeof DetailType)[keyof typeof DetailType];
