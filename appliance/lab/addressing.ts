/**
 * Where everything lives in the lab. Inner addresses follow the default stage addressing of the
 * design (MediaConnect VPC interface subnet → MediaLive input subnet, UDP 5000-5099); the outer
 * (GENEVE) side uses distinct loopback addresses so the emulator and every appliance can own UDP 6081.
 */
export const EMULATOR_ADDRESS = "127.0.0.1";

/** Loopback address of appliance `i` (0-based): 127.0.0.11, 127.0.0.12, … */
export function applianceAddress(index: number): string {
  return `127.0.0.${11 + index}`;
}

/** MediaConnect VPC interface (subnet A) address of clean stream `i`; all inside 10.0.1.0/25. */
export function streamSource(index: number): string {
  return `10.0.1.${10 + (index % 100)}`;
}

/** MediaLive input address (subnet A) and port of clean stream `i`. */
export function streamDestination(index: number): { address: string; port: number } {
  return { address: "10.0.11.20", port: 5000 + (index % 100) };
}

export const ATTACKER_SOURCE = "192.0.2.66";
/** Inside the MediaConnect subnet but outside the /25 that the whitelist rotation keeps. */
export const ROTATED_OUT_SOURCE = "10.0.1.200";
/** In the second MediaConnect subnet, which the rotation adds. */
export const ROTATED_IN_SOURCE = "10.0.2.10";
