/** The rotator's decisions on their own, without AWS: what the handler tests exercise end to end. */
import { readFileSync } from "node:fs";
import type { Flow } from "@aws-sdk/client-mediaconnect";
import { describe, expect, it } from "vitest";
import { PolicyError } from "../../contracts/policy.ts";
import {
  changesOf,
  flowSources,
  parseContributors,
  rotatePolicy,
} from "../../functions/whitelist-rotator.ts";

const policyText = readFileSync(new URL("../../appliance/policy.default.json", import.meta.url), "utf8");

describe("whitelist rotator decisions", () => {
  it("rewrites only its own set, and nothing when the set already holds the CIDRs", () => {
    const { previous, next } = rotatePolicy(policyText, "contributors", ["203.0.113.0/28"]);
    expect(previous).toEqual([]);
    const rotated = JSON.parse(next!);
    expect(rotated.sets.contributors).toEqual(["203.0.113.0/28"]);
    expect(rotated.sets.mediaconnect).toEqual(JSON.parse(policyText).sets.mediaconnect);
    expect(rotatePolicy(next, "contributors", ["203.0.113.0/28"])).toEqual({
      previous: ["203.0.113.0/28"],
      next: undefined,
    });
  });

  it("refuses a policy that is not JSON or not valid, and a rotation that would make it invalid", () => {
    expect(() => rotatePolicy("{", "contributors", [])).toThrow(SyntaxError);
    expect(() => rotatePolicy("{}", "contributors", [])).toThrow(PolicyError);
    expect(() => rotatePolicy(policyText, "contributors", ["not-a-cidr"])).toThrow(PolicyError);
  });

  it("changes only the sources whose CIDR differs from the plan", () => {
    const sources = [
      { arn: "a", name: "primary", cidr: "192.0.2.1/32" },
      { arn: "b", name: "backup", cidr: "198.51.100.0/28" },
    ];
    const plan = new Map([
      ["a", "203.0.113.0/28"],
      ["b", "198.51.100.0/28"],
    ]);
    expect(changesOf(sources, plan)).toEqual([
      { sourceArn: "a", from: "192.0.2.1/32", to: "203.0.113.0/28" },
    ]);
  });

  it("reads a flow's sources, its single Source if need be, and fails on a missing flow", () => {
    const flow = { Source: { SourceArn: "a", Name: "primary", WhitelistCidr: "192.0.2.1/32" } } as Flow;
    expect(flowSources(flow, "f")).toEqual([{ arn: "a", name: "primary", cidr: "192.0.2.1/32" }]);
    expect(() => flowSources(undefined, "arn:flow")).toThrow(/flow arn:flow not found/);
  });

  it("says when the contributor parameter is not JSON, keeping the parser's error", () => {
    const error = (() => {
      try {
        parseContributors("[");
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.name).toBe("InvalidInputError");
    expect(error?.message).toMatch(/^contributor parameter is not JSON: /);
    expect(error?.cause).toBeInstanceOf(SyntaxError);
  });
});
