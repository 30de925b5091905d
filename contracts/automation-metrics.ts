/**
 * Metrics the Lambda functions emit (Powertools Metrics, EMF, namespace `StreamIntel`, dimension
 * `service` = the function's service name). Alarms and the dashboard import these names.
 */
export const AUTOMATION_NAMESPACE = "StreamIntel";

export const ServiceName = {
  applianceHealer: "appliance-healer",
  whitelistRotator: "whitelist-rotator",
  streamManager: "stream-manager",
} as const;

export const HealerMetric = {
  replacementsRequested: "ReplacementsRequested",
  scaleOuts: "ScaleOutsBeforeReplacement",
  skipped: "ReplacementsSkipped",
  unhealthyTargets: "UnhealthyTargetsSeen",
} as const;

export const RotatorMetric = {
  rotations: "WhitelistRotations",
  noChange: "WhitelistUnchanged",
  sourcesUpdated: "FlowSourcesUpdated",
  policyUpdated: "AppliancePolicyUpdated",
  partialFailures: "RotationPartialFailures",
  refused: "RotationsRefused",
} as const;

export const StreamManagerMetric = {
  starts: "StreamStarts",
  stops: "StreamStops",
  startRefused: "StreamStartRefused",
  idleStops: "IdleStops",
  minutesSaved: "IdleMinutesSaved",
  transitional: "TransitionalStatesSeen",
} as const;

/** Every function: malformed inputs rejected (nothing changed). */
export const COMMON_METRIC = { invalidEvents: "InvalidEvents" } as const;
