/**
 * The dashboard's charts (uPlot): per appliance forwarded packets/s and flows, drops/s by reason, and
 * per stream loss, added latency p99 and TS continuity errors, with the run's failovers, drains,
 * rotations and attacks marked on every chart. A chart whose set of series changes is rebuilt.
 */
import uPlot from "uplot";
import type { Sample, TimelineEvent } from "../protocol.ts";

const PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#bc8cff", "#ff7b72", "#39c5cf", "#e3b341", "#f778ba"];
const MARK_COLOURS: Record<string, string> = {
  failover: "#f85149",
  drain: "#d29922",
  rotation: "#bc8cff",
  attack: "#ff7b72",
  operator: "#58a6ff",
};
const SCENARIO_STREAMS = "scenario streams";

interface ChartSpec {
  id: string;
  title: string;
  keys(samples: readonly Sample[]): string[];
  value(sample: Sample, key: string): number | null;
}

function union(samples: readonly Sample[], pick: (s: Sample) => Iterable<string>): string[] {
  const out = new Set<string>();
  for (const s of samples) for (const key of pick(s)) out.add(key);
  return [...out];
}

const applianceKeys = (samples: readonly Sample[]) =>
  union(samples, (s) => s.appliances.map((a) => `appliance ${a.number}`));
const appliance = (sample: Sample, key: string) =>
  sample.appliances.find((a) => `appliance ${a.number}` === key);

/** Pipeline streams by name, and the scenario's synthetic streams together as one series. */
const streamKeys = (samples: readonly Sample[]) => {
  const names = union(samples, (s) => s.streams.filter((x) => x.kind === "pipeline").map((x) => x.name));
  return samples.some((s) => s.streams.some((x) => x.kind === "scenario"))
    ? [...names, SCENARIO_STREAMS]
    : names;
};
function streamValue(
  sample: Sample,
  key: string,
  pick: "lost" | "p99Ms" | "tsContinuityErrors",
): number | null {
  const streams =
    key === SCENARIO_STREAMS
      ? sample.streams.filter((x) => x.kind === "scenario")
      : sample.streams.filter((x) => x.kind === "pipeline" && x.name === key);
  const values = streams.map((x) => x[pick]).filter((v): v is number => v !== null);
  if (values.length === 0) return null;
  return pick === "p99Ms" ? Math.max(...values) : values.reduce((a, b) => a + b, 0);
}

export const CHARTS: readonly ChartSpec[] = [
  {
    id: "forwarded",
    title: "forwarded packets/s per appliance",
    keys: applianceKeys,
    value: (s, k) => appliance(s, k)?.forwardedPerSecond ?? null,
  },
  {
    id: "flows",
    title: "flows per appliance",
    keys: applianceKeys,
    value: (s, k) => appliance(s, k)?.flows ?? null,
  },
  {
    id: "drops",
    title: "drops/s by reason (all appliances)",
    keys: (samples) => union(samples, (s) => s.appliances.flatMap((a) => Object.keys(a.dropsPerSecond))),
    value: (s, k) => s.appliances.reduce((n, a) => n + (a.dropsPerSecond[k] ?? 0), 0),
  },
  {
    id: "loss",
    title: "packets lost per stream (since it started)",
    keys: streamKeys,
    value: (s, k) => streamValue(s, k, "lost"),
  },
  {
    id: "latency",
    title: "added latency p99 per stream, ms",
    keys: streamKeys,
    value: (s, k) => streamValue(s, k, "p99Ms"),
  },
  {
    id: "continuity",
    title: "TS continuity errors per stream (at the sink)",
    keys: streamKeys,
    value: (s, k) => streamValue(s, k, "tsContinuityErrors"),
  },
];

function marks(events: () => readonly TimelineEvent[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u: uPlot) => {
        const { ctx, bbox } = u;
        ctx.save();
        ctx.lineWidth = 1;
        ctx.setLineDash([4, 3]);
        for (const event of events()) {
          const colour = MARK_COLOURS[event.kind];
          if (!colour) continue;
          const x = u.valToPos(event.at, "x", true);
          if (x < bbox.left || x > bbox.left + bbox.width) continue;
          ctx.strokeStyle = colour;
          ctx.beginPath();
          ctx.moveTo(x, bbox.top);
          ctx.lineTo(x, bbox.top + bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      },
    },
  };
}

interface Drawn {
  spec: ChartSpec;
  box: HTMLElement;
  plot: uPlot | null;
  keys: string;
}

export class Charts {
  private readonly drawn: Drawn[];
  private readonly events: () => readonly TimelineEvent[];

  constructor(container: HTMLElement, events: () => readonly TimelineEvent[]) {
    this.events = events;
    this.drawn = CHARTS.map((spec) => {
      const box = document.createElement("div");
      box.className = "chart";
      box.id = `chart-${spec.id}`;
      box.innerHTML = `<div class="title">${spec.title}</div>`;
      container.append(box);
      return { spec, box, plot: null, keys: "" };
    });
    addEventListener("resize", () => {
      for (const d of this.drawn) d.plot?.setSize({ width: this.width(d), height: 170 });
    });
  }

  private width(d: Drawn): number {
    return Math.max(300, d.box.clientWidth);
  }

  update(samples: readonly Sample[]): void {
    for (const d of this.drawn) {
      const keys = d.spec.keys(samples);
      const data: uPlot.AlignedData = [
        samples.map((s) => s.t),
        ...keys.map((k) => samples.map((s) => d.spec.value(s, k))),
      ];
      if (!d.plot || d.keys !== keys.join("\n")) {
        d.plot?.destroy();
        d.keys = keys.join("\n");
        d.plot = new uPlot(
          {
            width: this.width(d),
            height: 170,
            scales: { x: { time: false } },
            axes: [
              { stroke: "#8a96a3", grid: { stroke: "#2a323c" }, ticks: { stroke: "#2a323c" } },
              { stroke: "#8a96a3", grid: { stroke: "#2a323c" }, ticks: { stroke: "#2a323c" }, size: 56 },
            ],
            series: [
              { label: "s" },
              ...keys.map((label, i) => ({
                label,
                stroke: PALETTE[i % PALETTE.length],
                width: 1.5,
                points: { show: false },
              })),
            ],
            plugins: [marks(this.events)],
          },
          data,
          d.box,
        );
      } else {
        d.plot.setData(data);
      }
      d.box.dataset.points = String(samples.length);
      d.box.dataset.series = String(keys.length);
    }
  }
}

const STATE_COLOURS: Record<string, string> = {
  healthy: "#3fb950",
  initial: "#d29922",
  draining: "#d29922",
  unhealthy: "#f85149",
  deregistered: "#f85149",
};

/** One appliance's health over the run as a strip of one-second cells (dark red while its process is down). */
export function drawHealthStrip(canvas: HTMLCanvasElement, samples: readonly Sample[], number: number): void {
  const width = canvas.clientWidth || 240;
  canvas.width = width;
  canvas.height = 10;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const cell = Math.max(1, Math.min(6, width / Math.max(1, samples.length)));
  const shown = samples.slice(-Math.floor(width / cell));
  ctx.clearRect(0, 0, width, 10);
  shown.forEach((s, i) => {
    const a = s.appliances.find((x) => x.number === number);
    ctx.fillStyle = !a ? "#2a323c" : !a.up ? "#8b1d1d" : (STATE_COLOURS[a.state] ?? "#2a323c");
    ctx.fillRect(i * cell, 0, Math.ceil(cell), 10);
  });
}
