/**
 * Property: however a policy document is broken (cut short, an unknown field anywhere, a value of the
 * wrong kind at any field, a dangling set or a CIDR with host bits), the policy store refuses it with
 * an error that names where, counts it, and keeps the last good policy: nothing reaches the loops.
 */

import fc from "fast-check";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { PolicyStore } from "../../appliance/control/policy-store.ts";
import { DEFAULT_POLICY_TEXT } from "../../appliance/lab/appliances/policy-file.ts";
import type { Policy } from "../../contracts/policy.ts";

const defaultText = DEFAULT_POLICY_TEXT;
const compact = JSON.stringify(JSON.parse(defaultText));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = (string | number)[];

/** Every path in the default policy to an object (where a key can be added) and to a primitive. */
function paths(value: Json, at: Path = [], out = { objects: [] as Path[], leaves: [] as Path[] }) {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) paths(item, [...at, i], out);
  } else if (value !== null && typeof value === "object") {
    out.objects.push(at);
    for (const [key, item] of Object.entries(value)) paths(item, [...at, key], out);
  } else out.leaves.push(at);
  return out;
}
const { objects, leaves } = paths(JSON.parse(defaultText));

/** The default policy with `value` at `path` (an existing field replaced or a new one added). */
function withValue(path: Path, value: Json): string {
  const document = JSON.parse(defaultText);
  let parent = document;
  for (const key of path.slice(0, -1)) parent = parent[key];
  parent[path[path.length - 1]] = value;
  return JSON.stringify(document);
}

interface Broken {
  text: string;
  /** What the error must mention so an operator can find the problem. */
  names: string;
}

const brokenPolicies: fc.Arbitrary<Broken> = fc.oneof(
  // Cut short anywhere: a partial write, a truncated SSM value.
  fc
    .integer({ min: 0, max: compact.length - 1 })
    .map((end) => ({ text: compact.slice(0, end), names: "JSON" })),
  // An unknown field in any object: a typo is refused, not ignored.
  fc.tuple(fc.constantFrom(...objects), fc.stringMatching(/^x-[a-z]{1,8}$/)).map(([path, key]) => ({
    text: withValue([...path, key], true),
    names: key,
  })),
  // A value of the wrong kind wherever the document has a plain value.
  fc.tuple(fc.constantFrom(...leaves), fc.constantFrom<Json>({}, [[]], { from: 1 })).map(([path, value]) => ({
    text: withValue(path, value),
    names: path.join("."),
  })),
  // Well-formed JSON, wrong meaning.
  fc.constantFrom(
    { text: withValue(["flows", 0, "src", 0], "@nowhere"), names: "@nowhere" },
    { text: withValue(["sets", "mediaconnect", 0], "10.0.1.5/24"), names: "sets.mediaconnect.0" },
    { text: withValue(["flows", 0, "dstPorts", 0], "5099-5000"), names: "flows.0.dstPorts.0" },
  ),
);

describe("policy store", () => {
  it("refuses any broken policy by name and keeps the last good one in force", () => {
    const applied: number[] = [];
    const store = new PolicyStore(pino({ level: "silent" }), {
      onApplied: (_policy, generation) => applied.push(generation),
    });
    expect(store.offer(defaultText, "test")).toBe(true);
    const good: Policy | null = store.current;
    fc.assert(
      fc.property(brokenPolicies, ({ text, names }) => {
        const failures = store.failures;
        expect(store.offer(text, "test"), text).toBe(false);
        expect(store.current).toBe(good);
        expect(store.generation).toBe(1);
        expect(store.failures).toBe(failures + 1);
        expect(store.lastError, text).toContain(names);
      }),
      { numRuns: 400 },
    );
    expect(applied).toEqual([1]);
    // and a good document still goes through afterwards
    expect(store.offer(defaultText.replace('"maxFlows": 200000', '"maxFlows": 100000'), "test")).toBe(true);
    expect(applied).toEqual([1, 2]);
  });
});
