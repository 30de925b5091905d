/** What a run prints when it is done: the main sweep as a table, then one line per figure. */
import Table from "cli-table3";
import { LOSSLESS, OFFERED_IN_FULL } from "./config.ts";
import { CONTESTANTS, type Contestant, LABEL } from "./contestants.ts";
import { gbps, type Results } from "./results.ts";

export const times = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)} ×` : "n/a ×");

function sweepTable(r: Results): string {
  const table = new Table({
    head: ["offered", ...CONTESTANTS.flatMap((who) => [`${LABEL[who]} pps`, "Gbit/s", "loss", "p99 µs"])],
  });
  for (const [i, s] of r.steps.nodeEcho.entries()) {
    table.push([
      s.offered ? `${s.offered / 1000}k/s` : "max",
      ...CONTESTANTS.flatMap((who) => {
        const c = r.steps[who][i];
        return [
          c.deliveredPerSecond.toFixed(0),
          gbps(c.deliveredPerSecond, r.datagramBytes).toFixed(2),
          `${(c.loss * 100).toFixed(2)}%`,
          String(c.latencyMicros.p99),
        ];
      }),
    ]);
  }
  return table.toString();
}

function rateLines(r: Results): string[] {
  const lines = CONTESTANTS.map((who) => {
    const b = r.summary[who];
    const bound =
      b.losslessPps >= OFFERED_IN_FULL * b.generatorPps
        ? ": the clean rate is the generator's, not this contestant's"
        : "";
    return `${LABEL[who].padEnd(18)} clean (≤ ${LOSSLESS * 100}% loss) ${b.losslessPps} pps = ${gbps(b.losslessPps, r.datagramBytes).toFixed(2)} Gbit/s; at the generator's maximum ${b.saturatedPps.toFixed(0)} pps = ${gbps(b.saturatedPps, r.datagramBytes).toFixed(2)} Gbit/s (the generator sent ${b.generatorPps.toFixed(0)} pps at most${bound}).`;
  });
  const q = r.ratios;
  lines.push(
    `Full inspection on the native backend, clean rate: ${times(q.cleanToCEcho)} the batched C echo, ${times(q.cleanToNodeEcho)} the Node echo, ${times(q.nativeToDgramClean)} the dgram backend; at the maximum ${times(q.saturatedToCEcho)} C echo, ${times(q.saturatedToNodeEcho)} Node echo.`,
  );
  const cpu = r.cpuMicrosPerPacketAt100k;
  lines.push(
    `CPU per datagram read at 100k pps (µs; one core's worth of packets/s in brackets): ${CONTESTANTS.map((w) => `${LABEL[w]} ${cpu[w].toFixed(2)} (${(1e6 / cpu[w] / 1000).toFixed(0)}k)`).join(", ")}; native costs ${(cpu.native / cpu.cEcho).toFixed(2)} × the C echo, ${(cpu.native / cpu.nodeEcho).toFixed(2)} × the Node echo.`,
  );
  const l = r.latencyMicrosAt100k;
  lines.push(
    `p99 added latency at 100k pps (a p99 of 100001 µs is the histogram's ceiling: ≥ 100 ms): native ${l.nativeOverCEcho} µs over the C echo (${l.nativeOverNodeEcho} µs over the Node echo); dgram ${l.dgramOverCEcho} µs over the C echo. p99 ${CONTESTANTS.map((w) => `${LABEL[w]} ${l.p99[w]?.p99 ?? "-"} µs`).join(", ")}.`,
  );
  const mismatched = CONTESTANTS.filter((w) => r.mismatched[w] > 0);
  lines.push(
    mismatched.length
      ? `Returns that differed from what was sent: ${mismatched.map((w) => `${LABEL[w]} ${r.mismatched[w]}`).join(", ")}.`
      : "Every return matched what was sent, byte for byte.",
  );
  return lines;
}

function sectionLines(r: Results): string[] {
  const lines: string[] = [];
  for (const [bytes, sizeSteps] of Object.entries(r.bySize)) {
    const each = Object.entries(sizeSteps).map(([who, st]) => {
      const s = st![0];
      return `${LABEL[who as Contestant]} ${s.deliveredPerSecond.toFixed(0)} pps (${gbps(s.deliveredPerSecond, Number(bytes)).toFixed(2)} Gbit/s, loss ${(s.loss * 100).toFixed(2)}%)`;
    });
    lines.push(`${bytes}-byte datagrams at the generator's maximum: ${each.join(", ")}.`);
  }
  for (const s of r.workers2)
    lines.push(
      `--workers 2, 64 flows: offered ${s.offered || "max"} → ${s.deliveredPerSecond.toFixed(0)} pps, loss ${(s.loss * 100).toFixed(2)}%, p99 ${s.latencyMicros.p99} µs.`,
    );
  for (const [i, s] of r.affinity.entries()) {
    const p = r.parallelGc[i];
    lines.push(
      `--cpu-affinity auto at ${s.offered / 1000}k pps: p99 ${s.latencyMicros.p99} µs with --single-threaded-gc, ${p.latencyMicros.p99} µs with node's default parallel GC (loss ${(s.loss * 100).toFixed(2)}% / ${(p.loss * 100).toFixed(2)}%).`,
    );
  }
  if (r.streams)
    lines.push(
      `Streams per receive loop (10 Mbit/s each, zero loss, median p99 added over the C echo < 1 ms): ${r.streams.largest}. Added p99 by count: ${r.streams.results.map((s) => `${s.streams}: ${s.addedP99} µs${s.loss ? ` (loss ${(s.loss * 100).toFixed(3)}%)` : ""}`).join(", ")}.`,
    );
  for (const m of r.memory)
    lines.push(
      `Memory: ${m.flows} active flows → RSS ${m.rssMiB.toFixed(1)} MiB (${m.marginalBytesPerFlow.toFixed(0)} bytes per added flow).`,
    );
  for (const f of r.flowScaling)
    lines.push(
      `Flow table ${f.flows}: ${f.nsPerPacket.toFixed(0)} ns per packet in-process, ${f.typedArrayBytesPerFlow.toFixed(0)} bytes of state per flow.`,
    );
  for (const f of r.functions)
    lines.push(
      `Lambda ${f.name}: ${(f.bundleBytes / 1024).toFixed(0)} KiB minified (${(f.bundleBytesWithoutSdk / 1024).toFixed(0)} KiB without the AWS SDK), warm handler ${f.handlerMicros.mean.toFixed(0)} µs mean / ${f.handlerMicros.p99.toFixed(0)} µs p99.`,
    );
  return lines;
}

export function printReport(r: Results): void {
  console.log(sweepTable(r));
  for (const line of [...rateLines(r), ...sectionLines(r)]) console.log(line);
  const l = r.latencyMicrosAt100k;
  console.log(
    `native/C echo clean-rate ratio ${times(r.ratios.cleanToCEcho)}, native/Node echo ${times(r.ratios.cleanToNodeEcho)}; p99 added at 100k pps ${(l.nativeOverCEcho / 1000).toFixed(3)} ms${r.streams ? `; ${r.streams.largest} streams per loop` : ""}`,
  );
}
