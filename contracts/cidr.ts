/**
 * CIDR parsing shared by the appliance (policy compilation) and the automation (whitelist validation).
 * Addresses are held as four 32-bit words so that IPv4 and IPv6 match the same way; IPv4 uses word 3
 * only, which keeps the per-packet comparison to one word for IPv4 flows.
 */
import type { z } from "zod";

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  /** Network address, four big-endian 32-bit words (IPv4 in words[3]). */
  readonly words: readonly [number, number, number, number];
  readonly prefix: number;
  /** Canonical text form, e.g. `10.0.1.0/24`. */
  readonly text: string;
}

export class CidrError extends Error {}

/** For a zod `superRefine`: a value that is not a CIDR is an issue carrying parseCidr's reason. */
export function checkCidr(value: string, ctx: z.RefinementCtx): void {
  try {
    parseCidr(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as CidrError).message });
  }
}

function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255 || (part.length > 1 && part.startsWith("0"))) return undefined;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

function parseIpv6(text: string): [number, number, number, number] | undefined {
  let head = text;
  let tail = "";
  const doubleColon = text.indexOf("::");
  if (doubleColon !== -1) {
    if (text.indexOf("::", doubleColon + 1) !== -1) return undefined;
    head = text.slice(0, doubleColon);
    tail = text.slice(doubleColon + 2);
  }
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(Number.parseInt(piece, 16));
      }
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  if (!h || !t) return undefined;
  const missing = 8 - h.length - t.length;
  if (doubleColon === -1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...h, ...new Array<number>(doubleColon === -1 ? 0 : missing).fill(0), ...t];
  return [
    ((all[0] << 16) | all[1]) >>> 0,
    ((all[2] << 16) | all[3]) >>> 0,
    ((all[4] << 16) | all[5]) >>> 0,
    ((all[6] << 16) | all[7]) >>> 0,
  ];
}

/** Parses an address (no prefix) into family and words, or undefined when it is not one. */
export function parseAddress(
  text: string,
): { family: Family; words: [number, number, number, number] } | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, words: [0, 0, 0, v4] };
  const v6 = parseIpv6(text);
  if (v6 !== undefined) return { family: 6, words: v6 };
  return undefined;
}

export function maskWord(prefix: number, wordIndex: number): number {
  const bits = Math.max(0, Math.min(32, prefix - wordIndex * 32));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

function formatIpv6(words: ArrayLike<number>): string {
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) groups.push(words[i] >>> 16, words[i] & 0xffff);
  // Compress the longest run of zero groups (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export function formatAddress(family: Family, words: ArrayLike<number>): string {
  return family === 4 ? formatIpv4(words[3]) : formatIpv6(words);
}

/**
 * Parses `a.b.c.d/n` or `x::y/n`. A bare address is taken as a host route (/32 or /128). Host bits set
 * below the prefix are an error: `10.0.1.5/24` is almost always a typo, and widening it silently would
 * open more than was asked for.
 */
export function parseCidr(text: string): Cidr {
  if (typeof text !== "string" || text.trim() !== text || text === "") {
    throw new CidrError(`"${String(text)}" is not a CIDR`);
  }
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const address = parseAddress(addressText);
  if (!address)
    throw new CidrError(`"${text}" is not a CIDR: "${addressText}" is not an IPv4 or IPv6 address`);
  const max = address.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
      throw new CidrError(`"${text}" is not a CIDR: prefix must be 0-${max}`);
    }
    prefix = Number(prefixText);
  }
  const words = address.words.map((w, i) => {
    const index = address.family === 4 ? 0 : i;
    return address.family === 4 && i < 3 ? 0 : (w & maskWord(prefix, index)) >>> 0;
  }) as [number, number, number, number];
  for (let i = 0; i < 4; i++) {
    if (words[i] !== address.words[i]) {
      throw new CidrError(
        `"${text}" has host bits set below /${prefix}; did you mean ${formatAddress(address.family, words)}/${prefix}?`,
      );
    }
  }
  return { family: address.family, words, prefix, text: `${formatAddress(address.family, words)}/${prefix}` };
}

/** True for 0.0.0.0/0 and ::/0 (and anything else that matches every address of its family). */
export function isWorldOpen(cidr: Cidr): boolean {
  return cidr.prefix === 0;
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const base = outer.family === 4 ? 3 : 0;
  for (let i = base; i < 4; i++) {
    const mask = maskWord(outer.prefix, outer.family === 4 ? 0 : i);
    if ((inner.words[i] & mask) >>> 0 !== outer.words[i]) return false;
  }
  return true;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}
