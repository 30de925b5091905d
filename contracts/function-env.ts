/**
 * Environment variables each Lambda function reads. The stacks set them, the functions validate them
 * at cold start; both import the names from here so the two sides cannot drift apart.
 */
export const HealerEnv = {
  /** ARN of the GWLB GENEVE target group whose targets are the appliances. */
  targetGroupArn: "TARGET_GROUP_ARN",
  /** Name of the appliance Auto Scaling group. */
  autoScalingGroupName: "ASG_NAME",
  /** Healthy appliances never to go below (default 2). */
  minHealthy: "MIN_HEALTHY_APPLIANCES",
} as const;

export const RotatorEnv = {
  /** SSM parameter (String, JSON) holding the contributor schedule: the source of truth. */
  contributorsParameter: "CONTRIBUTORS_PARAMETER",
  /** SSM parameter holding the appliance policy JSON (contracts/policy.ts) that the daemons poll. */
  policyParameter: "POLICY_PARAMETER",
  /** Name of the policy `sets` entry the rotator owns (default `contributors`). */
  policySetName: "POLICY_SET_NAME",
  /** ARN of the MediaConnect flow whose source whitelist is rotated. */
  flowArn: "FLOW_ARN",
  /** Event bus for the `Whitelist Rotated` event (default `default`). */
  eventBusName: "EVENT_BUS_NAME",
} as const;

export const StreamManagerEnv = {
  flowArn: "FLOW_ARN",
  channelId: "CHANNEL_ID",
  targetGroupArn: "TARGET_GROUP_ARN",
  /** Healthy appliances required before a stream may start (default 1: there is no uninspected path). */
  minHealthyTargets: "MIN_HEALTHY_TARGETS",
  /** Minutes a running channel may go without a connected source before it is stopped (default 15). */
  idleTimeoutMinutes: "IDLE_TIMEOUT_MINUTES",
  /** Event bus for alerts the manager raises (default `default`). */
  eventBusName: "EVENT_BUS_NAME",
  /** SSM parameter (String, JSON) where the manager keeps when the source went quiet and when it last stopped for idleness. */
  stateParameter: "STATE_PARAMETER",
} as const;

/** Common to every function. */
export const CommonEnv = {
  stage: "STAGE",
  /**
   * DynamoDB table (Powertools Idempotency) where each handled event id is recorded, so that a second
   * delivery of the same event returns the first result instead of acting again.
   */
  idempotencyTable: "IDEMPOTENCY_TABLE",
  powertoolsServiceName: "POWERTOOLS_SERVICE_NAME",
  powertoolsMetricsNamespace: "POWERTOOLS_METRICS_NAMESPACE",
} as const;

/** Handler entry points, relative to the repository root (SST `handler` strings). */
export const FunctionHandler = {
  applianceHealer: "functions/appliance-healer.handler",
  whitelistRotator: "functions/whitelist-rotator.handler",
  streamManager: "functions/stream-manager.handler",
} as const;

/** A file every appliance instance downloads from the stage's asset bucket at boot. */
export interface InstanceFile {
  /** Path in the repository (after `npm run build:appliance`). */
  source: string;
  /** Where user data installs it on the instance. */
  installTo: string;
  mode: "0644" | "0755";
}

const bundle = "dist/appliance/stream-intel-appliance.mjs";
const systemdUnit = "appliance/deploy/stream-intel-appliance.service";
const nativeAddon = "dist/appliance/stream-intel-io-linux-arm64.node";

/** Where the appliance build (`npm run build:appliance`) leaves the files the instances download. */
export const ApplianceArtifact = {
  bundle,
  systemdUnit,
  defaultPolicy: "appliance/policy.default.json",
  /** The receive loop's native I/O addon for the instances (Graviton), loaded from beside the bundle. */
  nativeAddon,
  /**
   * Everything an instance downloads: the stack uploads each one (keyed by its content digest) and user
   * data fetches and verifies each one, so a changed file changes the launch template and the ASG's
   * instance refresh rolls it out. A new file is one more entry here.
   */
  instanceFiles: [
    { source: bundle, installTo: "/opt/stream-intel/stream-intel-appliance.mjs", mode: "0755" },
    { source: systemdUnit, installTo: "/etc/systemd/system/stream-intel-appliance.service", mode: "0644" },
    { source: nativeAddon, installTo: "/opt/stream-intel/stream-intel-io-linux-arm64.node", mode: "0644" },
  ] as readonly InstanceFile[],
} as const;
