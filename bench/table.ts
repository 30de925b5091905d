/**
 * `npm run bench:table [-- FILE]`: the README's figures from bench/results.json, as markdown: the run
 * (machine, date, command, load), the main figures per contestant, and the targets with whether each
 * is met. Paste it over the table in the README's Benchmark section after a full run.
 */
import { readFileSync } from "node:fs";
import { LOSSLESS } from "./config.ts";
import type { Contestant } from "./contestants.ts";
import { times } from "./report.ts";
import { gbps, type Results } from "./results.ts";

/** RSS per added flow before the native backend (2026-11-25): the "memory per flow unchanged" baseline. */
const BASELINE_BYTES_PER_FLOW = 261;
/** The generator's latency histogram ends here: a p99 of this many µs means ≥ 100 ms. */
const HISTOGRAM_CEILING_MICROS = 100_001;
/** "Flat": the largest flow table's cost per packet within this factor of the smallest's (cache effects). */
const FLAT_FACTOR = 2;

const COLUMNS: Contestant[] = ["nodeEcho", "cEcho", "dgram", "native"];
const HEAD: Record<Contestant, string> = {
  nodeEcho: "Node echo",
  cEcho: "C echo, 64 per call",
  dgram: "appliance, dgram",
  native: "appliance, native",
};

const k = (pps: number) => `${(pps / 1000).toFixed(1)}k pps`;
const ms = (micros: number | undefined) => (micros === undefined ? "-" : `${(micros / 1000).toFixed(2)} ms`);
const row = (cells: string[]) => `| ${cells.join(" | ")} |`;

export function heading(r: Results): string {
  const m = r.machine;
  const when = `${r.date.slice(0, 10)} ${r.date.slice(11, 16)} UTC`;
  const load = m.loadAverage ? `, load average ${m.loadAverage.join(" / ")} at the end` : "";
  return `\`${r.command}\`, ${when}, ${m.cpus} × ${m.model}, ${m.memoryGiB} GiB, Node ${m.node}, ${r.minutes.toFixed(1)} min${load}; ${r.network}.`;
}

export function figuresTable(r: Results): string[] {
  const bytes = r.datagramBytes.toLocaleString("en-US");
  const lines = [
    row([`${bytes} B, ${r.flows} flows`, ...COLUMNS.map((w) => HEAD[w])]),
    row(["---", ...COLUMNS.map(() => "---")]),
  ];
  const cells = (f: (w: Contestant) => string) => COLUMNS.map(f);
  lines.push(
    row([
      "clean (≤ 0.1 % loss, offered in full)",
      ...cells(
        (w) =>
          `${k(r.summary[w].losslessPps)}, ${gbps(r.summary[w].losslessPps, r.datagramBytes).toFixed(2)} Gbit/s`,
      ),
    ]),
    row([
      "delivered at the generator's maximum",
      ...cells((w) => `${k(r.summary[w].saturatedPps)} (generator sent ${k(r.summary[w].generatorPps)})`),
    ]),
    row([
      "CPU per datagram read at 100k pps (all threads, kernel included)",
      ...cells((w) =>
        Number.isFinite(r.cpuMicrosPerPacketAt100k[w])
          ? `${r.cpuMicrosPerPacketAt100k[w].toFixed(1)} µs`
          : "-",
      ),
    ]),
    row([
      "p99 at 100k pps (one-way, generator → system → generator)",
      ...cells((w) => ms(r.latencyMicrosAt100k.p99[w]?.p99)),
    ]),
    row(["returns not byte for byte what was sent", ...cells((w) => String(r.mismatched[w]))]),
  );
  for (const [size, steps] of Object.entries(r.bySize))
    lines.push(
      row([
        `${size} B at the generator's maximum`,
        ...cells((w) => (steps[w] ? k(steps[w][0].deliveredPerSecond) : "")),
      ]),
    );
  return lines;
}

type Verdict = [target: string, figure: string, met: boolean | null];

function verdicts(r: Results): Verdict[] {
  const native = r.summary.native.losslessPps;
  const added = r.latencyMicrosAt100k.nativeOverCEcho;
  // "Added" over a C echo that was itself overloaded (lossy, or at the histogram's ceiling) says nothing.
  const echo = r.steps.cEcho.find((s) => s.offered === 100_000);
  const echoKeptUp =
    echo !== undefined && echo.loss <= LOSSLESS && echo.latencyMicros.p99 < HISTOGRAM_CEILING_MICROS;
  const scaling = r.flowScaling;
  const flat =
    scaling.length > 1 ? scaling[scaling.length - 1].nsPerPacket / scaling[0].nsPerPacket : Number.NaN;
  const memory = r.memory.at(-1)?.marginalBytesPerFlow;
  // A quick run's tables (up to 100k flows, 30k live) are too small to show either.
  const sized = !r.quick;
  return [
    [
      "clean rate with full inspection ≥ 0.75 × the batched C echo's",
      times(r.ratios.cleanToCEcho),
      Number.isFinite(r.ratios.cleanToCEcho) ? r.ratios.cleanToCEcho >= 0.75 : null,
    ],
    ["≥ 300k pps at 1,396 B", k(native), native >= 300_000],
    [
      "p99 added ≤ 1 ms at 100k pps",
      echoKeptUp ? ms(added) : `${ms(added)} (the C echo itself did not keep up at 100k pps)`,
      echoKeptUp && Number.isFinite(added) ? added <= 1000 : null,
    ],
    [
      "≥ 250 streams of 10 Mbit/s per receive loop, zero loss",
      r.streams ? String(r.streams.largest) : "not measured (--quick)",
      r.streams ? r.streams.largest >= 250 : null,
    ],
    [
      `cost per packet flat from 1k to 1M flows (largest table ≤ ${FLAT_FACTOR} × the smallest's)`,
      scaling
        .map((s) => `${(s.nsPerPacket / 1000).toFixed(2)} µs at ${s.flows.toLocaleString("en-US")}`)
        .join(", ") || "not measured",
      sized && Number.isFinite(flat) ? flat <= FLAT_FACTOR : null,
    ],
    [
      `memory per flow unchanged (≤ ${BASELINE_BYTES_PER_FLOW} bytes of RSS per added flow)`,
      memory === undefined ? "not measured" : `${memory.toFixed(0)} bytes`,
      sized && memory !== undefined ? memory <= BASELINE_BYTES_PER_FLOW : null,
    ],
  ];
}

export function targetsTable(r: Results): string[] {
  const met = (v: boolean | null) => (v === null ? "not shown" : v ? "met" : "**not met**");
  return [
    row(["target", "this run", "met?"]),
    row(["---", "---", "---"]),
    ...verdicts(r).map(([t, f, v]) => row([t, f, met(v)])),
  ];
}

export function markdown(r: Results): string {
  return [heading(r), "", ...figuresTable(r), "", ...targetsTable(r), ""].join("\n");
}

if (import.meta.main) {
  const file = process.argv[2] ?? new URL("./results.json", import.meta.url);
  process.stdout.write(markdown(JSON.parse(readFileSync(file, "utf8")) as Results));
}
