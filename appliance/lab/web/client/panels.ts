/**
 * The dashboard's panels drawn from the latest sample: the run and scenario header, the whitelist and
 * contributors, one card per appliance (its buttons kept across redraws so a click is never lost),
 * the streams table, the timeline and, once the run is over, the scenario verdicts.
 */
import type { ContributorSample, RunSummary, Sample, TimelineEvent } from "../protocol.ts";
import { drawHealthStrip } from "./charts.ts";

const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector(selector) as T;

function html(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

const badge = (state: string, text = state) => `<span class="badge state-${state}">${html(text)}</span>`;

export function drawHeader(sample: Sample | undefined, finished: RunSummary | null, mode: string): void {
  const run = $("#run");
  if (finished) {
    run.innerHTML = `${badge(finished.verdict === "pass" ? "live" : "refused", finished.verdict === "pass" ? "all scenarios passed" : "some scenarios failed")} in ${finished.durationSeconds} s`;
  } else if (sample) {
    run.textContent = `${mode === "live" ? "running" : "report"} · ${Math.round(sample.t)} s`;
  }
  const scenario = sample?.scenario;
  $("#scenario .fill").style.width = `${Math.round((finished ? 1 : (scenario?.fraction ?? 0)) * 100)}%`;
  $("#scenario .label").textContent = finished
    ? "run over"
    : scenario
      ? `scenario ${scenario.index}/${scenario.total}: ${scenario.name} ${Math.round(scenario.fraction * 100)}% ${scenario.note}`
      : "starting";
}

export function drawContributors(sample: Sample): void {
  $("#whitelist").innerHTML =
    sample.whitelist.length === 0
      ? "no contribution pipeline in this run"
      : `flow sources: ${sample.whitelist.map((s) => `${html(s.name)} <code>${html(s.cidr ?? "none")}</code>`).join(" · ")}`;
  $("#contributors tbody").innerHTML = sample.contributors
    .map(
      (c: ContributorSample) =>
        `<tr data-contributor="${html(c.label)}" data-state="${c.state}"><td>${html(c.label)}</td><td>${c.address}</td><td>${badge(c.state)}</td><td>${html(c.source ?? "-")}</td><td>${c.refusedDatagrams}</td><td>${c.appliance ?? "-"}</td></tr>`,
    )
    .join("");
}

interface Card {
  root: HTMLElement;
  state: HTMLElement;
  figures: HTMLElement;
  drops: HTMLElement;
  strip: HTMLCanvasElement;
  buttons: HTMLButtonElement[];
}
const cards = new Map<number, Card>();

export function drawAppliances(samples: readonly Sample[], live: boolean): void {
  const sample = samples.at(-1);
  if (!sample) return;
  const container = $("#appliances");
  const allHealthy = sample.appliances.every((a) => a.state === "healthy" && a.up);
  for (const a of sample.appliances) {
    let card = cards.get(a.number);
    if (!card) {
      const root = document.createElement("div");
      root.className = "card";
      root.dataset.appliance = String(a.number);
      root.innerHTML = `<div class="head"><strong>appliance ${a.number}</strong> <span class="dim">${a.address}</span> <span class="state"></span></div><div class="figures"></div><canvas></canvas><div class="drops"></div><div class="actions live-only"><button type="button" data-action="kill" data-appliance="${a.number}">Kill</button><button type="button" data-action="drain" data-appliance="${a.number}">Drain</button></div>`;
      container.append(root);
      card = {
        root,
        state: root.querySelector(".state")!,
        figures: root.querySelector(".figures")!,
        drops: root.querySelector(".drops")!,
        strip: root.querySelector("canvas")!,
        buttons: [...root.querySelectorAll("button")],
      };
      cards.set(a.number, card);
    }
    const state = a.up ? a.state : "down";
    card.root.dataset.state = state;
    card.state.innerHTML = badge(a.up ? a.state : "down", a.up ? a.state : "down (process gone)");
    card.figures.textContent = `${a.forwardedPerSecond.toLocaleString()} pkt/s · ${a.flows} flows`;
    const drops = Object.entries(a.dropsTotal);
    card.drops.textContent = drops.length
      ? `drops: ${drops.map(([r, n]) => `${r} ${n}`).join(", ")}`
      : "no drops";
    drawHealthStrip(card.strip, samples, a.number);
    for (const button of card.buttons) button.disabled = !live || !allHealthy;
  }
}

export function drawStreams(sample: Sample): void {
  $("#streams tbody").innerHTML = sample.streams
    .map(
      (s) =>
        `<tr data-stream="${html(s.name)}"><td>${html(s.name)}</td><td>${s.kind}</td><td>${s.appliance ?? "-"}</td><td>${s.sent}</td><td>${s.received}</td><td>${s.lost}</td><td>${s.p99Ms ?? "-"}</td><td>${s.tsContinuityErrors}</td></tr>`,
    )
    .join("");
}

let shownEvents = 0;
export function drawTimeline(events: readonly TimelineEvent[]): void {
  const list = $("#timeline");
  for (const event of events.slice(shownEvents)) {
    const item = document.createElement("li");
    item.className = `kind-${event.kind}`;
    item.dataset.kind = event.kind;
    item.innerHTML = `<span class="at">${event.at.toFixed(1)} s</span>${html(event.message)}`;
    list.prepend(item);
  }
  shownEvents = events.length;
}

export function drawVerdicts(finished: RunSummary | null): void {
  const section = $("#verdicts");
  section.hidden = !finished;
  if (!finished) return;
  $("#verdicts tbody").innerHTML = finished.scenarios
    .map(
      (r) =>
        `<tr data-scenario="${html(r.name)}" data-verdict="${r.verdict}"><td title="${html(r.description)}">${html(r.name)}</td><td><span class="badge verdict-${r.verdict}">${r.verdict.toUpperCase()}</span></td><td>${r.durationSeconds}</td><td>${r.packets.cleanSent}</td><td>${r.packets.cleanLost}</td><td>${r.packets.attackDelivered}/${r.packets.attackSent}</td><td>${r.addedLatencyMs.p50} / ${r.addedLatencyMs.p99}</td><td class="failures">${r.failures.map(html).join("<br>")}</td></tr>`,
    )
    .join("");
}
