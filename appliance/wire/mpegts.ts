/**
 * MPEG-2 transport stream (ISO/IEC 13818-1) pieces the inspector needs: the 4-byte packet header and
 * the PAT/PMT sections that say which PIDs a program uses. Everything reads in place.
 */

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
  return ((buf[packet + 1] & 0x1f) << 8) | buf[packet + 2];
}

/**
 * Offset of the payload of the TS packet at `packet`, or -1 when it carries none (adaptation field
 * only, or an adaptation field longer than the packet).
 */
export function tsPayloadOffset(buf: Buffer, packet: number): number {
  const control = (buf[packet + 3] >>> 4) & 0x3;
  if (control === 1) return packet + 4;
  if (control === 3) {
    const start = packet + 5 + buf[packet + 4];
    return start < packet + TS_PACKET_SIZE ? start : -1;
  }
  return -1;
}

/** Whether the TS packet at `packet` carries an adaptation field with discontinuity_indicator set. */
export function tsDiscontinuity(buf: Buffer, packet: number): boolean {
  return (buf[packet + 3] & 0x20) !== 0 && buf[packet + 4] > 0 && (buf[packet + 5] & 0x80) !== 0;
}

/**
 * Locates a whole PSI section of `tableId` starting in this packet (payload_unit_start set), checking
 * its CRC. Returns the section start or -1; `sectionEnd[0]` receives the offset just before the CRC.
 * Sections spanning several packets are not followed: PAT and PMT of live contributions fit in one.
 */
function findSection(buf: Buffer, packet: number, tableId: number, sectionEnd: Int32Array): number {
  if ((buf[packet + 1] & 0x40) === 0) return -1;
  const payload = tsPayloadOffset(buf, packet);
  if (payload < 0) return -1;
  const end = packet + TS_PACKET_SIZE;
  const start = payload + 1 + buf[payload];
  if (start + 3 > end || buf[start] !== tableId) return -1;
  const sectionLength = ((buf[start + 1] & 0x0f) << 8) | buf[start + 2];
  const total = 3 + sectionLength;
  if (sectionLength < 9 || start + total > end) return -1;
  if (crc32Mpeg(buf, start, start + total) !== 0) return -1;
  sectionEnd[0] = start + total - 4;
  return start;
}

const scratchEnd = new Int32Array(1);

/** Reads a PAT: PMT PIDs into `pids` (program 0, the NIT, is skipped). Returns how many, or -1. */
export function readPat(buf: Buffer, packet: number, pids: Uint16Array): number {
  const start = findSection(buf, packet, TABLE_PAT, scratchEnd);
  if (start < 0) return -1;
  let count = 0;
  for (let entry = start + 8; entry + 4 <= scratchEnd[0] && count < pids.length; entry += 4) {
    const program = (buf[entry] << 8) | buf[entry + 1];
    if (program !== 0) pids[count++] = ((buf[entry + 2] & 0x1f) << 8) | buf[entry + 3];
  }
  return count;
}

/** Reads a PMT: the PCR PID and every elementary PID into `pids`. Returns how many, or -1. */
export function readPmt(buf: Buffer, packet: number, pids: Uint16Array): number {
  const start = findSection(buf, packet, TABLE_PMT, scratchEnd);
  if (start < 0) return -1;
  const end = scratchEnd[0];
  if (start + 12 > end) return -1;
  let count = 0;
  pids[count++] = ((buf[start + 8] & 0x1f) << 8) | buf[start + 9];
  const programInfoLength = ((buf[start + 10] & 0x0f) << 8) | buf[start + 11];
  let entry = start + 12 + programInfoLength;
  while (entry + 5 <= end && count < pids.length) {
    pids[count++] = ((buf[entry + 1] & 0x1f) << 8) | buf[entry + 2];
    entry += 5 + (((buf[entry + 3] & 0x0f) << 8) | buf[entry + 4]);
  }
  return count;
}
