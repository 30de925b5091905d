/**
 * The dashboard page as files: the client bundled once by esbuild (hls.js and uPlot included), and
 * the HTML with its styles inlined, either loading the bundle from the lab's server or, for
 * lab-report.html, carrying the bundle and the run's data inside, so it opens offline.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Snapshot } from "./protocol.ts";

const CLIENT = new URL("./client/", import.meta.url);
const require = createRequire(import.meta.url);

let bundled: Promise<string> | null = null;

/** The client as one minified script (built on first use, then kept). */
export function clientBundle(): Promise<string> {
  bundled ??= build({
    entryPoints: [fileURLToPath(new URL("dashboard.ts", CLIENT))],
    bundle: true,
    format: "iife",
    minify: true,
    target: "chrome120",
    write: false,
    logLevel: "silent",
  }).then((result) => result.outputFiles[0].text);
  return bundled;
}

function styles(): string {
  return [
    readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
    readFileSync(new URL("style.css", CLIENT), "utf8"),
  ].join("\n");
}

/** `</script` inside inlined code or JSON would end the element early; `<\/` means the same to JS. */
const inlineSafe = (text: string) => text.replace(/<\/(script)/gi, "<\\/$1");

function page(script: string, data: string): string {
  return readFileSync(new URL("index.html", CLIENT), "utf8")
    .replace("/*STYLE*/", () => styles())
    .replace("/*DATA*/", () => data)
    .replace("<!--SCRIPT-->", () => script);
}

/** The live page: the bundle comes from `/dashboard.js`, the data from `/events`. */
export function livePage(): string {
  return page('<script src="/dashboard.js"></script>', "");
}

/** A page that needs nothing but itself: the bundle and the snapshot inlined. */
export async function offlinePage(snapshot: Snapshot): Promise<string> {
  const data = `window.LAB_REPORT = ${inlineSafe(JSON.stringify(snapshot))};`;
  return page(`<script>${inlineSafe(await clientBundle())}</script>`, data);
}
