/**
 * The contributor schedule on its own (the rotator's handler tests cover it against AWS): what is in
 * force when, and what is refused with the contracts' own error.
 */
import { describe, expect, it } from "vitest";
import {
  assign,
  CLOSED_CIDR,
  effectiveEntries,
  ScheduleError,
} from "../../contracts/contributor-schedule.ts";

const NOW = new Date("2026-12-01T12:00:00Z");
const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000).toISOString();
const sources = [
  { arn: "primary", name: "primary", cidr: undefined },
  { arn: "backup", name: "backup", cidr: undefined },
];

describe("contributor schedule", () => {
  it("keeps the entries in force at the given time, canonical and sorted", () => {
    const active = effectiveEntries(
      [
        { cidr: "198.51.100.7/32", label: "studio" },
        { cidr: "203.0.113.0/28", label: "truck", notBefore: at(-5), expiresAt: at(5) },
        { cidr: "192.0.2.64/26", label: "later", notBefore: at(1) },
        { cidr: "192.0.2.128/26", label: "gone", expiresAt: at(0) },
      ],
      NOW,
    );
    expect(active).toEqual([
      { cidr: "198.51.100.7/32", label: "studio" },
      { cidr: "203.0.113.0/28", label: "truck" },
    ]);
  });

  it("refuses the whole schedule with a ScheduleError naming every bad entry", () => {
    let error: unknown;
    try {
      effectiveEntries(
        [
          { cidr: "0.0.0.0/0", label: "everyone" },
          { cidr: "203.0.113.5/24", label: "typo" },
          { cidr: "198.51.100.0/28", label: "backwards", notBefore: at(5), expiresAt: at(1) },
          { cidr: "198.51.100.16/28", label: "fine" },
        ],
        NOW,
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ScheduleError);
    const message = (error as Error).message;
    for (const label of ["everyone", "typo", "backwards"]) expect(message).toContain(`${label}:`);
    expect(message).not.toContain("fine");
  });

  it("gives each source one CIDR, closes the rest, and refuses overlap or more entries than sources", () => {
    const plan = assign(sources, [{ cidr: "198.51.100.7/32", label: "studio" }]);
    expect([...plan]).toEqual([
      ["primary", "198.51.100.7/32"],
      ["backup", CLOSED_CIDR],
    ]);
    expect(() =>
      assign(sources, [
        { cidr: "198.51.100.0/24", label: "wide" },
        { cidr: "198.51.100.7/32", label: "inside" },
      ]),
    ).toThrow(ScheduleError);
    expect(() =>
      assign(sources, [
        { cidr: "192.0.2.8/32", label: "a" },
        { cidr: "198.51.100.7/32", label: "b" },
        { cidr: "203.0.113.9/32", label: "c" },
      ]),
    ).toThrow(/3 contributor entries are active .*refusing rather than widening/);
  });
});
