/**
 * MPEG-2 transport stream (ISO/IEC 13818-1) pieces the inspector needs: the 4-byte packet header and
 * the PAT/PMT sections that say which PIDs a program uses. Everything reads in place.
 */

/*
 * ISO/IEC 13818-1 §2.4.3.2, the transport packet header, and §2.4.3.4, the start of the adaptation
 * field when adaptation_field_control says there is one (the payload follows the header, or the field):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  sync (0x47)  |T|S|P|          PID            |SC |AFC|  CC   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |   AF length   |D|R|E|P|O|S|T|X|         optional fields       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * T transport_error_indicator, S payload_unit_start_indicator, P transport_priority, SC
 * transport_scrambling_control, AFC adaptation_field_control, CC continuity_counter; D
 * discontinuity_indicator (then the other flags of the adaptation field).
 */
const SYNC = 0;
const FLAGS_PID = 1; // T, S, P and the PID's top 5 bits
const TRANSPORT_ERROR = 0x80;
const PAYLOAD_UNIT_START = 0x40;
const PID_HIGH_MASK = 0x1f;
const PID_LOW = 2;
const CONTROL = 3; // SC, AFC, CC
const ADAPTATION_FIELD = 0x20; // AFC bits: an adaptation field follows the header…
const PAYLOAD = 0x10; // …and/or a payload
const CONTINUITY_MASK = 0x0f;
const HEADER_LENGTH = 4;
const AF_LENGTH = 4; // bytes of the adaptation field after this one
const AF_FLAGS = 5;
const AF_DISCONTINUITY = 0x80;

/** TS header offsets by name, for generators that write TS packets (sync, PID, continuity counter). */
export const TS_LAYOUT = {
  sync: SYNC,
  flagsPid: FLAGS_PID,
  pidLow: PID_LOW,
  control: CONTROL,
  headerLength: HEADER_LENGTH,
  adaptationFieldLength: AF_LENGTH,
  adaptationFieldFlags: AF_FLAGS,
  transportErrorFlag: TRANSPORT_ERROR,
  payloadUnitStartFlag: PAYLOAD_UNIT_START,
  pidHighMask: PID_HIGH_MASK,
  adaptationFieldFlag: ADAPTATION_FIELD,
  payloadFlag: PAYLOAD,
  continuityMask: CONTINUITY_MASK,
} as const;

export const TS_PACKET_SIZE = 188;
export const TS_SYNC_BYTE = 0x47;
export const PID_PAT = 0x0000;
export const PID_NULL = 0x1fff;
/** PIDs 0x00-0x1F are reserved for PSI/SI tables (PAT, CAT, NIT, SDT, EIT, TDT…). */
export const LAST_SI_PID = 0x1f;

const TABLE_PAT = 0x00;
const TABLE_PMT = 0x02;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    table[i] = crc >>> 0;
  }
  return table;
})();

/** CRC-32/MPEG-2 over buf[start..end): 0 when the range includes a correct trailing CRC. */
export function crc32Mpeg(buf: Buffer, start: number, end: number): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ buf[i]) & 0xff]) >>> 0;
  return crc >>> 0;
}

export function tsPid(buf: Buffer, packet: number): number {
  return ((buf[packet + FLAGS_PID] & PID_HIGH_MASK) << 8) | buf[packet + PID_LOW];
}

/**
 * Offset of the payload of the TS packet at `packet`, or -1 when it carries none (adaptation field
 * only, or an adaptation field longer than the packet).
 */
export function tsPayloadOffset(buf: Buffer, packet: number): number {
  const control = buf[packet + CONTROL] & (ADAPTATION_FIELD | PAYLOAD);
  if (control === PAYLOAD) return packet + HEADER_LENGTH;
  if (control === (ADAPTATION_FIELD | PAYLOAD)) {
    const start = packet + AF_LENGTH + 1 + buf[packet + AF_LENGTH];
    return start < packet + TS_PACKET_SIZE ? start : -1;
  }
  return -1;
}

/** Whether the TS packet at `packet` carries an adaptation field with discontinuity_indicator set. */
export function tsDiscontinuity(buf: Buffer, packet: number): boolean {
  return (
    (buf[packet + CONTROL] & ADAPTATION_FIELD) !== 0 &&
    buf[packet + AF_LENGTH] > 0 &&
    (buf[packet + AF_FLAGS] & AF_DISCONTINUITY) !== 0
  );
}

/*
 * ISO/IEC 13818-1 §2.4.4, a PSI section, starting pointer_field + 1 bytes into the payload of a TS
 * packet with payload_unit_start_indicator set; section_length counts the bytes after it, CRC included:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |   table_id    |S|0|Rsv|    section_length     |  table_id_ext |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |ension (cont.) |Rsv| version |C| section_number|last_section_nr|
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                  table body (PAT or PMT) ...                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                            CRC_32                             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The PAT's body (§2.4.4.3), one entry per program; the PMT's (§2.4.4.8), then one entry per
 * elementary stream, each followed by ES_info_length bytes of descriptors:
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |        program_number         |Rsv  |     program_map_PID     |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Rsv  |        PCR_PID          |Rsv    |  program_info_length  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  descriptors (program_info_length bytes) ...                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  stream_type  |Rsv  |     elementary_PID      |Rsv    |ES_info|
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |_length (cont.)|  descriptors (ES_info_length bytes) ...      |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
const POINTER_FIELD = 0; // the payload's first byte: bytes of a previous section before this one
const TABLE_ID = 0;
const SECTION_LENGTH = 1; // low 4 bits of this byte and the next: bytes after the length field
const LENGTH_HIGH_MASK = 0x0f; // of section_length, program_info_length and ES_info_length alike
const SECTION_VERSION = 5; // version_number in bits 1-5
const VERSION_MASK = 0x1f;
const SECTION_BODY = 8;
const SECTION_HEADER = 3; // table_id and the 12-bit length, not counted in section_length
const CRC_LENGTH = 4;
/** Largest section_length a PAT or PMT may declare (§2.4.4.3, §2.4.4.8: the top two bits are '00'). */
const MAX_SECTION_LENGTH = 1021;
/** Smallest section_length: the five bytes after it and the CRC (PAT), plus PCR PID and program_info_length (PMT). */
const MIN_PAT_SECTION_LENGTH = 9;
const MIN_PMT_SECTION_LENGTH = 13;
const PAT_ENTRY = 4;
const PAT_PROGRAM_NUMBER = 0;
const PAT_PMT_PID = 2;
const PMT_PCR_PID = 8;
const PMT_PROGRAM_INFO_LENGTH = 10;
const PMT_LOOP = 12;
const PMT_ES_HEADER = 5;
const ES_PID = 1;
const ES_INFO_LENGTH = 3;

/** What looking for a PAT or PMT section in one TS packet found (negative, so counts stay >= 0). */
export const PsiStatus = {
  /** No section of that table starts in this packet (no payload_unit_start, or stuffing). */
  none: -1,
  /** A legitimate section longer than this packet: not followed (live PAT/PMT fit in one). */
  continues: -2,
  /** The CRC_32 does not match: corrupted or forged. */
  badCrc: -3,
  /** A length field (pointer, section_length, program_info_length, ES_info_length) that lies. */
  badLength: -4,
} as const;

/** The section found by `readPat`/`readPmt`; reused. `end` is the offset of the CRC. */
export class PsiSection {
  start = 0;
  end = 0;
  version = 0;
}

const scratchSection = new PsiSection();

/**
 * Locates the section of `tableId` starting in this packet and checks its lengths and CRC; fills
 * `out` and returns 0, or a PsiStatus.
 */
function findSection(
  buf: Buffer,
  packet: number,
  tableId: number,
  minLength: number,
  out: PsiSection,
): number {
  if ((buf[packet + FLAGS_PID] & PAYLOAD_UNIT_START) === 0) return PsiStatus.none;
  const payload = tsPayloadOffset(buf, packet);
  if (payload < 0) return PsiStatus.none;
  const end = packet + TS_PACKET_SIZE;
  const start = payload + 1 + buf[payload + POINTER_FIELD];
  if (start >= end) return PsiStatus.badLength; // the pointer field points past the packet
  if (buf[start + TABLE_ID] !== tableId) return PsiStatus.none;
  if (start + SECTION_HEADER > end) return PsiStatus.continues;
  const sectionLength =
    ((buf[start + SECTION_LENGTH] & LENGTH_HIGH_MASK) << 8) | buf[start + SECTION_LENGTH + 1];
  if (sectionLength < minLength || sectionLength > MAX_SECTION_LENGTH) return PsiStatus.badLength;
  const total = SECTION_HEADER + sectionLength;
  if (start + total > end) return PsiStatus.continues;
  if (crc32Mpeg(buf, start, start + total) !== 0) return PsiStatus.badCrc;
  out.start = start;
  out.end = start + total - CRC_LENGTH;
  out.version = (buf[start + SECTION_VERSION] >>> 1) & VERSION_MASK;
  return 0;
}

/**
 * Reads a PAT: PMT PIDs into `pids` (program 0, the NIT, is skipped). Returns how many, or a PsiStatus;
 * `section.version` gets the PAT's version_number.
 */
export function readPat(buf: Buffer, packet: number, pids: Uint16Array, section = scratchSection): number {
  const status = findSection(buf, packet, TABLE_PAT, MIN_PAT_SECTION_LENGTH, section);
  if (status < 0) return status;
  if ((section.end - section.start - SECTION_BODY) % PAT_ENTRY !== 0) return PsiStatus.badLength;
  let count = 0;
  for (
    let entry = section.start + SECTION_BODY;
    entry < section.end && count < pids.length;
    entry += PAT_ENTRY
  ) {
    const program = (buf[entry + PAT_PROGRAM_NUMBER] << 8) | buf[entry + PAT_PROGRAM_NUMBER + 1];
    if (program !== 0)
      pids[count++] = ((buf[entry + PAT_PMT_PID] & PID_HIGH_MASK) << 8) | buf[entry + PAT_PMT_PID + 1];
  }
  return count;
}

/**
 * Reads a PMT: the PCR PID and every elementary PID into `pids`. Returns how many, or a PsiStatus;
 * `section.version` gets the PMT's version_number.
 */
export function readPmt(buf: Buffer, packet: number, pids: Uint16Array, section = scratchSection): number {
  const status = findSection(buf, packet, TABLE_PMT, MIN_PMT_SECTION_LENGTH, section);
  if (status < 0) return status;
  const start = section.start;
  const end = section.end;
  let count = 0;
  pids[count++] = ((buf[start + PMT_PCR_PID] & PID_HIGH_MASK) << 8) | buf[start + PMT_PCR_PID + 1];
  const programInfoLength =
    ((buf[start + PMT_PROGRAM_INFO_LENGTH] & LENGTH_HIGH_MASK) << 8) |
    buf[start + PMT_PROGRAM_INFO_LENGTH + 1];
  let entry = start + PMT_LOOP + programInfoLength;
  if (entry > end) return PsiStatus.badLength;
  while (entry < end) {
    if (entry + PMT_ES_HEADER > end) return PsiStatus.badLength;
    if (count < pids.length)
      pids[count++] = ((buf[entry + ES_PID] & PID_HIGH_MASK) << 8) | buf[entry + ES_PID + 1];
    entry +=
      PMT_ES_HEADER +
      (((buf[entry + ES_INFO_LENGTH] & LENGTH_HIGH_MASK) << 8) | buf[entry + ES_INFO_LENGTH + 1]);
  }
  if (entry !== end) return PsiStatus.badLength; // an ES_info_length that runs into the CRC
  return count;
}
