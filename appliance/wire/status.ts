/**
 * What the per-packet parsers return instead of throwing, and the drop reason each refusal is counted
 * under: the inspector and its checks count by these tables, the allocating decoders name the same
 * reason in their WireError, so a status and its reason are paired here and nowhere else.
 */
import type { DropReason } from "../../contracts/appliance-metrics.ts";

/** Result codes of `parseGeneve`, one per reason a datagram is refused. */
export const GeneveStatus = {
  ok: 0,
  malformed: 1,
  unsupportedProtocol: 2,
  gwlbOptionsMissing: 3,
  unknownVersion: 4,
  criticalOption: 5,
  controlPacket: 6,
} as const;

/** Result codes of `parseInner`. */
export const InnerStatus = {
  ok: 0,
  ipMalformed: 1,
  ipChecksum: 2,
  udpMalformed: 3,
} as const;

/** Result codes of `parseRtp`. */
export const RtpStatus = { ok: 0, malformed: 1, badVersion: 2 } as const;

type Refusal<S> = Exclude<S[keyof S], 0>;

export const GENEVE_STATUS_REASON: Readonly<Record<Refusal<typeof GeneveStatus>, DropReason>> = {
  [GeneveStatus.malformed]: "geneve_malformed",
  [GeneveStatus.unsupportedProtocol]: "geneve_unsupported_protocol",
  [GeneveStatus.gwlbOptionsMissing]: "gwlb_options_missing",
  [GeneveStatus.unknownVersion]: "geneve_unknown_version",
  [GeneveStatus.criticalOption]: "geneve_critical_option",
  [GeneveStatus.controlPacket]: "geneve_control_packet",
};

export const INNER_STATUS_REASON: Readonly<Record<Refusal<typeof InnerStatus>, DropReason>> = {
  [InnerStatus.ipMalformed]: "ip_malformed",
  [InnerStatus.ipChecksum]: "ip_checksum",
  [InnerStatus.udpMalformed]: "udp_malformed",
};

export const RTP_STATUS_REASON: Readonly<Record<Refusal<typeof RtpStatus>, DropReason>> = {
  [RtpStatus.malformed]: "rtp_malformed",
  [RtpStatus.badVersion]: "rtp_version",
};

/** The reasons of the PSI statuses that mean a forged or corrupted table (see `PsiStatus`). */
export const PSI_STATUS_REASON = {
  badCrc: "ts_psi_crc",
  badLength: "ts_psi_length",
} as const satisfies Record<string, DropReason>;
