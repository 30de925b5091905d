/**
 * Decides, once at start-up, which I/O the receive loops use: the native addon when it loads (always
 * for --io-backend native, which refuses to start without it), Node's dgram otherwise (--io-backend
 * dgram, or auto when the addon cannot load: said in the log and in stream_intel_io_backend). The raw
 * sender is checked here too, so that a missing CAP_NET_RAW is one clear start-up error rather than a
 * receive loop failing over and over.
 */
import { loadNativeIo } from "../dataplane/io/native-addon.ts";
import type { IoBackend } from "../dataplane/io/receive-loop.ts";
import type { ApplianceConfig } from "./config.ts";

export interface IoDecision {
  backend: IoBackend;
  /** Where the addon was loaded from (native). */
  addon?: string;
  /** Why the loops run on dgram under --io-backend auto. */
  fallback?: string;
}

export function decideIoBackend(config: Pick<ApplianceConfig, "ioBackend" | "sender">): IoDecision {
  if (config.ioBackend === "dgram") return { backend: "dgram" };
  const native = loadNativeIo();
  if (!native.io) {
    const cause = native.cause;
    if (config.ioBackend === "native") throw new Error(`--io-backend native: ${native.reason}`, { cause });
    if (config.sender === "raw")
      throw new Error(`--sender raw needs the native I/O backend: ${native.reason}`, { cause });
    return { backend: "dgram", fallback: native.reason };
  }
  if (config.sender === "raw") {
    const reason = native.io.probeRaw();
    if (reason !== undefined)
      throw new Error(
        `--sender raw: cannot open a raw IPv4 socket (${reason}); the process needs CAP_NET_RAW (the systemd unit grants it)`,
      );
  }
  return { backend: "native", addon: native.path };
}
