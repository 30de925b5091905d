import type { Readable } from "node:stream";

/** Resolves once `text` has appeared in what `stream` has written so far. */
export function outputIncludes(stream: Readable, text: string): Promise<void> {
  let seen = "";
  return new Promise((resolve) => {
    const listen = (chunk: Buffer) => {
      seen += chunk;
      if (!seen.includes(text)) return;
      stream.off("data", listen);
      resolve();
    };
    stream.on("data", listen);
  });
}
