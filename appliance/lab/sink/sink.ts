/**
 * The MediaLive side of the lab: receives every delivered RTP packet and measures, per stream, loss,
 * reordering and duplication (from RTP sequence numbers), added latency (emulator send → return), and
 * the continuity of the transport stream that actually arrived. It can also keep one stream's TS so
 * that ffprobe can check it is still a valid stream.
 */
import { TS_PACKET_SIZE } from "../../wire/mpegts.ts";

export class StreamStats {
  readonly name: string;
  received = 0;
  duplicates = 0;
  reordered = 0;
  tsContinuityErrors = 0;
  private first = -1;
  /** Sequence numbers unwrapped to a running count, so loss works across the 16-bit wrap. */
  private highest = -1;
  private readonly seen = new Uint8Array(1 << 20);
  private readonly cc = new Map<number, number>();
  readonly latencies: number[] = [];
  keepTs: Buffer[] | null = null;

  constructor(name: string) {
    this.name = name;
  }

  private unwrap(sequence: number): number {
    if (this.highest < 0) return sequence;
    const base = this.highest - (this.highest & 0xffff);
    let candidate = base + sequence;
    if (candidate - this.highest > 0x8000) candidate -= 0x10000;
    else if (this.highest - candidate > 0x8000) candidate += 0x10000;
    return candidate;
  }

  receive(payload: Buffer, latencyMs: number): void {
    if (payload.length < 12) return;
    const sequence = this.unwrap((payload[2] << 8) | payload[3]);
    if (this.first < 0) this.first = sequence;
    const slot = (sequence - this.first) & (this.seen.length - 1);
    if (sequence >= this.first && this.seen[slot]) {
      this.duplicates++;
      return;
    }
    if (sequence >= this.first) this.seen[slot] = 1;
    if (sequence < this.highest) this.reordered++;
    else this.highest = sequence;
    this.received++;
    this.latencies.push(latencyMs);
    const ts = payload.subarray(12);
    for (let at = 0; at + TS_PACKET_SIZE <= ts.length; at += TS_PACKET_SIZE) {
      if (ts[at] !== 0x47) continue;
      const pid = ((ts[at + 1] & 0x1f) << 8) | ts[at + 2];
      if (pid === 0x1fff || (ts[at + 3] & 0x10) === 0) continue;
      const cc = ts[at + 3] & 0x0f;
      const previous = this.cc.get(pid);
      if (previous !== undefined && cc !== ((previous + 1) & 0x0f) && cc !== previous)
        this.tsContinuityErrors++;
      this.cc.set(pid, cc);
    }
    this.keepTs?.push(Buffer.from(ts));
  }

  /** Packets missing between the first and the highest sequence number seen. */
  get lost(): number {
    return this.highest < 0 ? 0 : this.highest - this.first + 1 - this.received;
  }
}

export function percentiles(samples: readonly number[]): {
  p50: number;
  p99: number;
  p999: number;
  max: number;
} {
  if (samples.length === 0) return { p50: 0, p99: 0, p999: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    p50: round(at(0.5)),
    p99: round(at(0.99)),
    p999: round(at(0.999)),
    max: round(sorted[sorted.length - 1]),
  };
}
