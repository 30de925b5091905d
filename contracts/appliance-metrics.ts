/**
 * Names of everything the appliance reports: Prometheus series on `/metrics`, the CloudWatch EMF
 * metrics (namespace `StreamIntel/Appliance`) and the drop reasons used as a label on both. Dashboards,
 * alarms, the lab and the tests import these instead of spelling them again.
 */

/**
 * Why a packet was not returned to the GWLB. The order is the index used in the appliance's counter
 * arrays; append new reasons at the end so that indexes stay stable within a release.
 */
export const DROP_REASONS = [
  "geneve_malformed",
  "geneve_unsupported_protocol",
  "gwlb_options_missing",
  "ip_malformed",
  "ip_checksum",
  "ip_options",
  "ip_fragment",
  "ip_ttl_low",
  "udp_malformed",
  "flow_not_allowed",
  "flow_table_full",
  "new_flow_rate",
  "rate_packets",
  "rate_bits",
  "rtp_malformed",
  "rtp_version",
  "rtp_payload_type",
  "rtp_ssrc_changed",
  "rtp_seq_replay",
  "rtp_seq_jump",
  "rtp_seq_stale",
  "rtp_timestamp_jump",
  "ts_misaligned",
  "ts_sync_lost",
  "ts_transport_error",
  "ts_continuity",
  "ts_unexpected_pid",
  "anomaly",
  "custom_rule",
  "no_policy",
  "geneve_unknown_version",
  "geneve_critical_option",
  "geneve_control_packet",
  "rtp_resync",
  "rtp_ssrc_handover",
  "ts_psi_crc",
  "ts_psi_length",
  /** Larger than a receive slot (9,216 bytes: GWLB's 8,500-byte inner MTU plus GENEVE and options). */
  "datagram_oversize",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * Reasons that can be counted as alerts (`…_alerts_total{reason}`: logged, packet still forwarded):
 * checks whose profile action can be `alert`, and the two stream events that are never a drop, a
 * stream followed to a new sequence position (`rtp_resync`) and to a new SSRC (`rtp_ssrc_handover`).
 */
export const ALERT_REASONS = [
  "ts_continuity",
  "ts_transport_error",
  "ts_unexpected_pid",
  "anomaly",
  "custom_rule",
  "rtp_resync",
  "rtp_ssrc_handover",
  "ts_psi_crc",
  "ts_psi_length",
] as const;
export type AlertReason = (typeof ALERT_REASONS)[number];

export const PROMETHEUS_PREFIX = "stream_intel_";

export const PrometheusMetric = {
  packetsReceived: "stream_intel_packets_received_total",
  bytesReceived: "stream_intel_bytes_received_total",
  packetsForwarded: "stream_intel_packets_forwarded_total",
  bytesForwarded: "stream_intel_bytes_forwarded_total",
  packetsDropped: "stream_intel_packets_dropped_total",
  alerts: "stream_intel_alerts_total",
  sendErrors: "stream_intel_send_errors_total",
  activeFlows: "stream_intel_active_flows",
  flowsCreated: "stream_intel_flows_created_total",
  flowsEvicted: "stream_intel_flows_evicted_total",
  ruleHits: "stream_intel_rule_hits_total",
  policyReloads: "stream_intel_policy_reloads_total",
  policyReloadFailures: "stream_intel_policy_reload_failures_total",
  policyGeneration: "stream_intel_policy_generation",
  processingSeconds: "stream_intel_packet_processing_seconds",
  securityEventsSuppressed: "stream_intel_security_events_suppressed_total",
  workers: "stream_intel_workers",
  /** Datagrams the kernel dropped because a receive buffer was full (from /proc/net/udp). */
  socketDrops: "stream_intel_socket_receive_drops_total",
  socketReceiveQueue: "stream_intel_socket_receive_queue_bytes",
  workerStalled: "stream_intel_worker_stalled",
  /** 1 while packets are lost or held back before inspection: a stopped loop, kernel drops, a backlog. */
  forwardingStalled: "stream_intel_forwarding_stalled",
  healthy: "stream_intel_healthy",
  draining: "stream_intel_draining",
  /**
   * Receive loops by I/O backend (`backend`: `native` = the batched addon, `dgram` = Node's UDP socket, the
   * fallback) and sender (`sender`: `udp` or `raw`).
   */
  ioBackend: "stream_intel_io_backend",
} as const;

export const EMF_NAMESPACE = "StreamIntel/Appliance";

/** EMF metric names. Dimension sets: [Stage] and [Stage, InstanceId]. */
export const EmfMetric = {
  packetsReceived: "PacketsReceived",
  packetsForwarded: "PacketsForwarded",
  packetsDropped: "PacketsDropped",
  bytesReceived: "BytesReceived",
  activeFlows: "ActiveFlows",
  alerts: "Alerts",
  policyReloadFailures: "PolicyReloadFailures",
  /**
   * 1 when, during the interval, a receive loop stopped or the kernel dropped datagrams the loops could
   * not read in time (the healer's stall alarm).
   */
  forwardingStalled: "ForwardingStalled",
  processingP99Micros: "ProcessingP99Micros",
  /** Datagrams the kernel dropped before the appliance could read them (receive buffer full). */
  socketReceiveDrops: "SocketReceiveDrops",
  /** Receive loops running on Node's dgram socket because the native addon could not load (0 normally). */
  ioBackendFallback: "IoBackendFallback",
} as const;

export const EmfDimension = { stage: "Stage", instanceId: "InstanceId" } as const;

/**
 * The stall alarm: ForwardingStalled at its maximum in this many consecutive periods. The stack's alarm
 * watches the Stage series; the healer reads the same window of each instance's own series to find
 * which appliance it was.
 */
export const STALL_ALARM = { periodSeconds: 60, evaluationPeriods: 2 } as const;
