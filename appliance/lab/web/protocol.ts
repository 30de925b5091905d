/**
 * What the lab tells the dashboard (server-sent events on `/events`) and what lab-report.html embeds.
 * Types only, shared by the server and the page; nothing here may import Node or the lab.
 *
 * `/events` sends `snapshot` once on connect (a Snapshot), then `sample` every second (a Sample),
 * `event` as things happen (a TimelineEvent) and `finished` when the run is over (a RunSummary).
 */

export type TargetState = "initial" | "healthy" | "unhealthy" | "draining" | "deregistered";

export interface ApplianceSample {
  /** 1-based, as the lab names appliances. */
  number: number;
  address: string;
  /** Health as the GWLB emulator sees it. */
  state: TargetState;
  /** The process is running (a killed appliance is down until it is replaced). */
  up: boolean;
  forwardedPerSecond: number;
  /** Flows in its own table (`stream_intel_active_flows`; idle ones leave after the policy's timeout). */
  flows: number;
  dropsPerSecond: Record<string, number>;
  dropsTotal: Record<string, number>;
}

export interface StreamSample {
  name: string;
  /** `pipeline`: a contributor's output through MediaConnect; `scenario`: a synthetic stream. */
  kind: "pipeline" | "scenario";
  /** 1-based appliance carrying it now, or null with no healthy target. */
  appliance: number | null;
  sent: number;
  received: number;
  /** Packets missing from the sequence so far. */
  lost: number;
  /** Added latency p99 (ms) of what arrived over the last second; null when nothing did. */
  p99Ms: number | null;
  tsContinuityErrors: number;
}

export type ContributorState = "live" | "admitted" | "refused" | "idle";

export interface ContributorSample {
  label: string;
  address: string;
  /** `live`: on air; `admitted`: whitelisted, not sending yet; `refused`: calling, not whitelisted. */
  state: ContributorState;
  /** The flow source whose whitelist CIDR admits it. */
  source: string | null;
  refusedDatagrams: number;
  session: number | null;
  /** HLS playlist of its live output, once the packager has written one. */
  playlist: string | null;
  /** Its stream in `streams`, while on air. */
  stream: string | null;
  /** 1-based appliance carrying its output. */
  appliance: number | null;
}

export interface ScenarioStatus {
  name: string;
  index: number;
  total: number;
  fraction: number;
  note: string;
}

export interface Sample {
  /** Seconds since the lab started. */
  t: number;
  scenario: ScenarioStatus | null;
  appliances: ApplianceSample[];
  streams: StreamSample[];
  contributors: ContributorSample[];
  /** The MediaConnect flow's sources and the whitelist CIDR each holds. */
  whitelist: { name: string; cidr: string | null }[];
}

export type EventKind =
  | "scenario"
  | "failover"
  | "drain"
  | "recovery"
  | "rotation"
  | "attack"
  | "pipeline"
  | "operator"
  | "info";

export interface TimelineEvent {
  at: number;
  message: string;
  kind: EventKind;
}

/** The part of a scenario's result that the page shows (lab-report.json has all of it). */
export interface ScenarioVerdict {
  name: string;
  description: string;
  verdict: "pass" | "fail" | "skipped";
  failures: string[];
  durationSeconds: number;
  packets: { cleanSent: number; cleanLost: number; attackSent: number; attackDelivered: number };
  addedLatencyMs: { p50: number; p99: number };
}

export interface RunSummary {
  verdict: "pass" | "fail";
  durationSeconds: number;
  scenarios: ScenarioVerdict[];
}

export interface Snapshot {
  startedAt: string;
  /** `live`: the running lab (buttons act on it); `report`: lab-report.html, read offline. */
  mode: "live" | "report";
  samples: Sample[];
  events: TimelineEvent[];
  /** Seconds per HLS segment and how many of them the player keeps buffered. */
  player: { segmentSeconds: number; liveSyncSegments: number };
  finished: RunSummary | null;
}

export interface ActionAnswer {
  ok: boolean;
  message: string;
}
