import { describe, expect, it } from "vitest";
import { AwsCallError, call } from "../../functions/lib/aws/call.ts";

describe("an AWS call that fails", () => {
  it("says what was asked, keeps the SDK's exception name and the SDK's error as its cause", async () => {
    const sdk = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    const error = await call("GetParameter /stream-intel/dev/policy", () => Promise.reject(sdk)).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(AwsCallError);
    expect(error.name).toBe("ThrottlingException");
    expect(error.message).toBe("GetParameter /stream-intel/dev/policy failed: Rate exceeded");
    expect(error.cause).toBe(sdk);
  });

  it("returns what the call answered", async () => {
    expect(await call("DescribeFlow", () => Promise.resolve({ Flow: { Status: "ACTIVE" } }))).toEqual({
      Flow: { Status: "ACTIVE" },
    });
  });
});
