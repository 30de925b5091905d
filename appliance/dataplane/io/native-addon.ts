/**
 * Finds and loads the receive loop's Node-API addon (appliance/native/stream-intel-io.c): first beside the
 * running bundle (the instances), then in the source tree's prebuilds. Loading is the only thing that can
 * fail here; the caller decides whether that means falling back to dgram or refusing to start.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ADDON_FILE, bundledName, HOST_TARGET } from "../../native/layout.ts";

/** An open socket with its batch of slots; only the addon looks inside. */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

export interface NativeOpenOptions {
  host: string;
  port: number;
  ipv6: boolean;
  reusePort: boolean;
  receiveBuffer: number;
  sendBuffer: number;
  /** Port datagrams are returned to (GWLB's 6081). */
  returnPort: number;
  /** Return through a raw IPv4 socket from the port each datagram came from (needs CAP_NET_RAW). */
  raw: boolean;
  /** Send every datagram to this peer instead of back to its source (the benchmark's generator). */
  connectHost?: string;
  connectPort?: number;
  slotBytes: number;
  /** Slots, back to back: datagram i is at i * slotBytes. */
  data: ArrayBuffer;
  /** The real length of datagram i (more than slotBytes: it was cut short). */
  lengths: Int32Array;
  /** Set by JavaScript: 1 = send slot i back. */
  verdicts: Uint8Array;
  /** [0] bytes of datagrams send() could not send (cumulative), [1] errno of the last failure. */
  stats: Float64Array;
}

export interface NativeIo {
  open(options: NativeOpenOptions): NativeHandle;
  /** One recvmmsg into the slots: how many arrived, 0 when none was waiting, -errno on error. */
  receive(handle: NativeHandle): number;
  /** One sendmmsg of the first `count` slots whose verdict is 1; returns how many could not be sent. */
  send(handle: NativeHandle, count: number): number;
  /** Calls `onReadable` from the event loop whenever the socket has datagrams; null stops. */
  poll(handle: NativeHandle, onReadable: (() => void) | null): void;
  info(handle: NativeHandle): {
    address: string;
    port: number;
    receiveBuffer: number;
    sendBuffer: number;
    slots: number;
    raw: boolean;
  };
  close(handle: NativeHandle): void;
  /** undefined when this process may open a raw IPv4 socket, else why not. */
  probeRaw(): string | undefined;
}

export type NativeLoad =
  | { io: NativeIo; path: string }
  /** `cause`: what dlopen threw, for an error that reports `reason` (undefined when no file was found). */
  | { io: null; reason: string; cause?: Error };

export function addonCandidates(): string[] {
  return [
    fileURLToPath(new URL(`./${bundledName(HOST_TARGET)}`, import.meta.url)),
    fileURLToPath(new URL(`../../native/prebuilds/${HOST_TARGET}/${ADDON_FILE}`, import.meta.url)),
  ];
}

/** Loads the addon; says where it came from or, for each place tried, why not. */
export function loadNativeIo(candidates = addonCandidates()): NativeLoad {
  const reasons: string[] = [];
  const errors: Error[] = [];
  for (const file of candidates) {
    if (!existsSync(file)) {
      reasons.push(`${file}: not found`);
      continue;
    }
    try {
      const module = { exports: {} as NativeIo };
      process.dlopen(module, file);
      return { io: module.exports, path: file };
    } catch (error) {
      errors.push(error as Error);
      reasons.push(`${file}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  const reason = `no loadable ${HOST_TARGET} addon (${reasons.join("; ")})`;
  const cause = errors.length > 1 ? new AggregateError(errors, reason) : errors[0];
  return { io: null, reason, cause };
}
