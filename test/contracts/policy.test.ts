import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cidrContains, cidrsOverlap, isWorldOpen, parseCidr } from "../../contracts/cidr.ts";
import { PolicyError, parsePolicy, validatePolicy } from "../../contracts/policy.ts";

const defaultText = readFileSync(new URL("../../appliance/policy.default.json", import.meta.url), "utf8");

describe("CIDR", () => {
  it("parses IPv4 and IPv6 prefixes to a canonical form", () => {
    expect(parseCidr("10.0.1.0/24").text).toBe("10.0.1.0/24");
    expect(parseCidr("10.0.1.7").text).toBe("10.0.1.7/32");
    expect(parseCidr("fd00:0:0:1::/64").text).toBe("fd00:0:0:1::/64");
    expect(parseCidr("::/0").prefix).toBe(0);
  });

  it("refuses malformed text and host bits, naming the fix", () => {
    for (const bad of [
      "",
      "10.0.1.0/33",
      "10.0.1/24",
      "256.0.0.0/8",
      "10.0.01.0/24",
      "fd00::1::2/64",
      " 10.0.0.0/8",
      "x",
    ]) {
      expect(() => parseCidr(bad), bad).toThrow(/not a CIDR/);
    }
    expect(() => parseCidr("10.0.1.5/24")).toThrow(/did you mean 10.0.1.0\/24/);
  });

  it("knows containment, overlap and world-open prefixes", () => {
    expect(cidrContains(parseCidr("10.0.0.0/16"), parseCidr("10.0.1.0/24"))).toBe(true);
    expect(cidrContains(parseCidr("10.0.1.0/24"), parseCidr("10.0.0.0/16"))).toBe(false);
    expect(cidrsOverlap(parseCidr("10.0.1.0/24"), parseCidr("10.0.2.0/24"))).toBe(false);
    expect(isWorldOpen(parseCidr("0.0.0.0/0"))).toBe(true);
    expect(isWorldOpen(parseCidr("::/0"))).toBe(true);
  });

  it("round-trips any IPv4 network", () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (address, prefix) => {
        const words = address.split(".").map(Number);
        const value = ((words[0] << 24) | (words[1] << 16) | (words[2] << 8) | words[3]) >>> 0;
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const network = (value & mask) >>> 0;
        const text = `${network >>> 24}.${(network >>> 16) & 255}.${(network >>> 8) & 255}.${network & 255}/${prefix}`;
        expect(parseCidr(text).text).toBe(text);
      }),
    );
  });
});

describe("policy schema", () => {
  it("accepts the shipped default policy and fills defaults", () => {
    const policy = parsePolicy(defaultText);
    expect(policy.flows[0].dstPorts).toEqual([{ from: 5000, to: 5099 }]);
    expect(policy.sets.mediaconnect).toEqual(["10.0.1.0/24", "10.0.2.0/24"]);
    expect(policy.limits.maxFlows).toBe(200_000);
  });

  it("names every problem of a bad policy", () => {
    const bad = JSON.parse(defaultText);
    bad.flows.push({ ...bad.flows[0], src: ["@nope"], dstPorts: ["6000-5000"] });
    bad.rules[0].match.minLength = 2000;
    bad.rules[0].match.maxLength = 100;
    bad.profiles["rtp-mpegts"].rtp.payloadTypes = [200];
    try {
      validatePolicy(bad);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyError);
      const issues = (error as PolicyError).issues.join("\n");
      expect(issues).toMatch(/flows\.1\.dstPorts\.0: bad port range "6000-5000"/);
      expect(issues).toMatch(/profiles\.rtp-mpegts\.rtp\.payloadTypes\.0/);
    }
    const refs = JSON.parse(defaultText);
    refs.flows.push({ ...refs.flows[0], name: "second", src: ["@nope"] });
    refs.rules[0].match.minLength = 2000;
    refs.rules[0].match.maxLength = 100;
    expect(() => validatePolicy(refs)).toThrow(
      /unknown set "@nope".*minLength is above maxLength|minLength is above maxLength.*unknown set/,
    );
  });

  it("defaults the continuity fields and names a bad one", () => {
    const bare = JSON.parse(defaultText);
    delete bare.profiles["rtp-mpegts"].rtp.probationPackets;
    delete bare.profiles["rtp-mpegts"].rtp.handoverSilenceMs;
    delete bare.profiles["rtp-mpegts"].mpegts.psiErrors;
    const filled = validatePolicy(bare).profiles["rtp-mpegts"];
    expect(filled.rtp).toMatchObject({ probationPackets: 8, handoverSilenceMs: 50 });
    expect(filled.mpegts?.psiErrors).toBe("drop");
    const bad = JSON.parse(defaultText);
    bad.profiles["rtp-mpegts"].rtp.probationPackets = 1; // would follow any single stray packet
    bad.profiles["rtp-mpegts"].rtp.handoverSilenceMs = 0;
    bad.profiles["rtp-mpegts"].mpegts.psiErrors = "ignore";
    expect(() => validatePolicy(bad)).toThrow(/rtp\.probationPackets: .*2/);
    try {
      validatePolicy(bad);
    } catch (error) {
      const issues = (error as PolicyError).issues.join("\n");
      expect(issues).toMatch(/profiles\.rtp-mpegts\.rtp\.handoverSilenceMs/);
      expect(issues).toMatch(/profiles\.rtp-mpegts\.mpegts\.psiErrors/);
    }
  });

  it("rejects unknown fields instead of ignoring a typo", () => {
    const typo = JSON.parse(defaultText);
    typo.flows[0].dstPort = ["5000"];
    expect(() => validatePolicy(typo)).toThrow(/dstPort/);
  });

  it("rejects any random JSON value that is not a policy, without throwing anything else", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(() => validatePolicy(value)).toThrow(PolicyError);
      }),
      { numRuns: 500 },
    );
  });
});
