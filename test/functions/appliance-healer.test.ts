import {
  DescribeAutoScalingGroupsCommand,
  type Instance,
  SetDesiredCapacityCommand,
  SetInstanceHealthCommand,
} from "@aws-sdk/client-auto-scaling";
import { GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { beforeEach, describe, expect, it } from "vitest";
import { GENEVE_PORT } from "../../contracts/gwlb.ts";
import { handler } from "../../functions/appliance-healer.ts";
import { mockFunctionClients, TARGET_GROUP_ARN as TG } from "../support/aws-mocks.ts";
import { capture, idempotencyTable, sampleEvent } from "./support.ts";

const { elb, autoScaling, ec2, cloudWatch } = mockFunctionClients();
const table = idempotencyTable();
const LONG_AGO = new Date(Date.now() - 3600_000);

function instance(id: string, lifecycle = "InService", health = "Healthy"): Instance {
  return {
    InstanceId: id,
    LifecycleState: lifecycle as Instance["LifecycleState"],
    HealthStatus: health,
    AvailabilityZone: "eu-west-1a",
    ProtectedFromScaleIn: false,
  };
}

function world(options: {
  /** Each target's GWLB health state, by instance id. */
  targets: Record<string, string>;
  instances: Instance[];
  desired?: number;
  max?: number;
  launched?: Date;
}) {
  elb.on(DescribeTargetHealthCommand, { TargetGroupArn: TG }).resolves({
    TargetHealthDescriptions: Object.entries(options.targets).map(([id, state]) => ({
      Target: { Id: id, Port: GENEVE_PORT },
      TargetHealth: { State: state as "healthy" },
    })),
  });
  autoScaling
    .on(DescribeAutoScalingGroupsCommand, { AutoScalingGroupNames: ["stream-intel-dev-appliances"] })
    .resolves({
      AutoScalingGroups: [
        {
          AutoScalingGroupName: "stream-intel-dev-appliances",
          MinSize: 2,
          MaxSize: options.max ?? 4,
          DesiredCapacity: options.desired ?? options.instances.length,
          HealthCheckGracePeriod: 300,
          Instances: options.instances,
          DefaultCooldown: 300,
          AvailabilityZones: ["eu-west-1a", "eu-west-1b"],
          HealthCheckType: "ELB",
          CreatedTime: LONG_AGO,
        },
      ],
    });
  ec2.on(DescribeInstancesCommand).callsFake((input: { InstanceIds: string[] }) => ({
    Reservations: [
      {
        Instances: input.InstanceIds.map((id) => ({
          InstanceId: id,
          LaunchTime: options.launched ?? LONG_AGO,
        })),
      },
    ],
  }));
}

/** Three in-service appliances, i-3's GWLB health check in the given state. */
function threeInService(i3: "healthy" | "unhealthy") {
  world({
    targets: { "i-1": "healthy", "i-2": "healthy", "i-3": i3 },
    instances: [instance("i-1"), instance("i-2"), instance("i-3")],
  });
}
/** Health checks all pass: a stall is all that can be wrong. */
const threeHealthy = () => threeInService("healthy");
const threeWithI3Unhealthy = () => threeInService("unhealthy");

describe("appliance healer", () => {
  beforeEach(() => {
    elb.reset();
    autoScaling.reset();
    ec2.reset();
    cloudWatch.reset();
    table.reset();
    process.env.TARGET_GROUP_ARN = TG;
    process.env.ASG_NAME = "stream-intel-dev-appliances";
    process.env.MIN_HEALTHY_APPLIANCES = "2";
  });

  it("replaces the unhealthy appliance named by the target group, once", async () => {
    threeWithI3Unhealthy();
    const { result, metrics } = await capture(() => handler(sampleEvent("alarm-unhealthy-hosts")));
    expect(result).toMatchObject({ action: "replace", instanceId: "i-3" });
    expect(autoScaling.commandCalls(SetInstanceHealthCommand).map((c) => c.args[0].input)).toEqual([
      { InstanceId: "i-3", HealthStatus: "Unhealthy", ShouldRespectGracePeriod: true },
    ]);
    expect(metrics).toMatchObject({ ReplacementsRequested: 1, UnhealthyTargetsSeen: 1 });
  });

  it("does nothing when the alarm returns to OK", async () => {
    const ok = sampleEvent("alarm-unhealthy-hosts");
    (ok.detail.state as { value: string }).value = "OK";
    const { result } = await capture(() => handler(ok));
    expect(result).toEqual({ action: "none", reason: "alarm stream-intel-dev-unhealthy-appliances is OK" });
    expect(elb.calls()).toHaveLength(0);
    expect(autoScaling.calls()).toHaveLength(0);
  });

  it("acts on the instance the stall alarm names even though its health checks pass", async () => {
    world({
      targets: { "i-0abc1234def567890": "healthy", "i-2": "healthy", "i-3": "healthy" },
      instances: [instance("i-0abc1234def567890"), instance("i-2"), instance("i-3")],
    });
    const { result } = await capture(() => handler(sampleEvent("alarm-forwarding-stalled")));
    expect(result).toMatchObject({ action: "replace", instanceId: "i-0abc1234def567890" });
  });

  it("finds which appliance tripped the Stage-wide stall alarm from each instance's own series", async () => {
    threeHealthy();
    // Newest first: i-2 stalled in both of the alarm's periods; i-1 only in the latest; i-3 has a gap.
    cloudWatch.on(GetMetricDataCommand).callsFake((input) => ({
      MetricDataResults: input.MetricDataQueries.map((q: { Id: string; Label: string }) => ({
        Id: q.Id,
        Label: q.Label,
        StatusCode: "Complete",
        Values: { "i-1": [1, 0, 0], "i-2": [1, 1, 0], "i-3": [1] }[q.Label],
      })),
    }));
    const { result } = await capture(() => handler(sampleEvent("alarm-forwarding-stalled-stage")));
    expect(result).toMatchObject({ action: "replace", instanceId: "i-2" });
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(1);
    const [query] = cloudWatch.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
    expect(query.ScanBy).toBe("TimestampDescending");
    expect(query.MetricDataQueries?.map((q) => q.MetricStat)).toEqual(
      ["i-1", "i-2", "i-3"].map((id) => ({
        Metric: {
          Namespace: "StreamIntel/Appliance",
          MetricName: "ForwardingStalled",
          Dimensions: [
            { Name: "Stage", Value: "dev" },
            { Name: "InstanceId", Value: id },
          ],
        },
        Period: 60,
        Stat: "Maximum",
      })),
    );
  });

  it("replaces nothing when no instance's series confirms the Stage-wide stall alarm", async () => {
    world({
      targets: { "i-1": "healthy", "i-2": "healthy" },
      instances: [instance("i-1"), instance("i-2")],
    });
    cloudWatch.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: "i0", Label: "i-1", Values: [1, 0] },
        { Id: "i1", Label: "i-2", Values: [] },
      ],
    });
    const { result } = await capture(() => handler(sampleEvent("alarm-forwarding-stalled-stage")));
    expect(result).toMatchObject({ action: "none" });
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(0);
  });

  it("keeps at most one replacement in flight: a replayed alarm changes nothing", async () => {
    world({
      targets: { "i-1": "healthy", "i-2": "healthy", "i-3": "unhealthy" },
      instances: [instance("i-1"), instance("i-2"), instance("i-3", "InService", "Unhealthy")],
    });
    const { result, metrics } = await capture(() => handler(sampleEvent("alarm-unhealthy-hosts")));
    expect(result).toMatchObject({ action: "skip", instanceId: "i-3" });
    expect((result as { reason: string }).reason).toMatch(/already in flight/);
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(0);
    expect(metrics).toMatchObject({ ReplacementsSkipped: 1 });
  });

  it("scales out first when a replacement would leave fewer than the minimum in service", async () => {
    world({
      targets: { "i-1": "healthy", "i-2": "unhealthy" },
      instances: [instance("i-1"), instance("i-2")],
      desired: 2,
      max: 4,
    });
    const { result, metrics } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(result).toMatchObject({ action: "scale-out", desiredCapacity: 3 });
    expect(autoScaling.commandCalls(SetDesiredCapacityCommand)[0].args[0].input).toEqual({
      AutoScalingGroupName: "stream-intel-dev-appliances",
      DesiredCapacity: 3,
      HonorCooldown: false,
    });
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(0);
    expect(metrics).toMatchObject({ ScaleOutsBeforeReplacement: 1 });
  });

  it("skips, and says why, when the group is at its max and the minimum would be broken", async () => {
    world({
      targets: { "i-1": "healthy", "i-2": "unhealthy" },
      instances: [instance("i-1"), instance("i-2")],
      desired: 2,
      max: 2,
    });
    const { result } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(result).toMatchObject({ action: "skip", instanceId: "i-2" });
    expect(autoScaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
  });

  it("leaves instances inside their grace period alone", async () => {
    world({
      targets: { "i-1": "healthy", "i-2": "healthy", "i-3": "unhealthy" },
      instances: [instance("i-1"), instance("i-2"), instance("i-3")],
      launched: new Date(Date.now() - 60_000),
    });
    const { result } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(result).toMatchObject({ action: "none" });
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(0);
  });

  it("finds the ForwardingStalled series in a metric-math alarm wherever it is listed", async () => {
    threeHealthy();
    cloudWatch.on(GetMetricDataCommand).callsFake((input) => ({
      MetricDataResults: input.MetricDataQueries.map((q: { Id: string; Label: string }) => ({
        Id: q.Id,
        Label: q.Label,
        Values: q.Label === "i-3" ? [1, 1] : [0, 0],
      })),
    }));
    const event = sampleEvent("alarm-forwarding-stalled-math");
    const metricsListed = (event.detail.configuration as { metrics: { expression?: string }[] }).metrics;
    expect(metricsListed[0].expression).toBeDefined(); // AWS's example: the expression comes first
    const { result } = await capture(() => handler(event));
    expect(result).toMatchObject({ action: "replace", instanceId: "i-3" });
    const [query] = cloudWatch.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
    expect(query.MetricDataQueries?.[0].MetricStat?.Metric?.MetricName).toBe("ForwardingStalled");
  });

  it("acts once on a duplicate delivery of the same alarm event (same id)", async () => {
    threeWithI3Unhealthy();
    const first = await capture(() => handler(sampleEvent("alarm-unhealthy-hosts")));
    // The ASG has not caught up yet: were the work done again, it would replace i-3 a second time.
    const again = await capture(() => handler(sampleEvent("alarm-unhealthy-hosts")));
    expect(again.result).toEqual(first.result);
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(1);
    expect(elb.commandCalls(DescribeTargetHealthCommand)).toHaveLength(1);
    expect([...table.items.values()].map((i) => i.status.S)).toEqual(["COMPLETED"]);
    // A different alarm event is a new decision.
    const later = sampleEvent("alarm-unhealthy-hosts");
    later.id = "later-delivery";
    await capture(() => handler(later));
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(2);
  });

  it("rejects a malformed event with the reason, changing nothing", async () => {
    const { error, metrics } = await capture(() => handler(sampleEvent("malformed-alarm-missing-state")));
    expect(error?.name).toBe("InvalidInputError");
    expect(error?.message).toMatch(/alarm detail is malformed: state/);
    expect(elb.calls()).toHaveLength(0);
    expect(metrics).toMatchObject({ InvalidEvents: 1 });
    const { error: wrong } = await capture(() => handler({ ...sampleEvent("start-stream") }));
    expect(wrong?.message).toMatch(/unexpected event stream-intel \/ Start Stream/);
  });

  it("fails loudly on a bad configuration or an AWS error, without acting", async () => {
    process.env.TARGET_GROUP_ARN = "not-an-arn";
    const { error } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(error?.message).toMatch(/TARGET_GROUP_ARN: expected a elasticloadbalancing ARN/);
    process.env.TARGET_GROUP_ARN = TG;
    elb
      .on(DescribeTargetHealthCommand)
      .rejects(Object.assign(new Error("Rate exceeded"), { name: "Throttling" }));
    const { error: throttled } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(throttled?.name).toBe("Throttling");
    expect(autoScaling.commandCalls(SetInstanceHealthCommand)).toHaveLength(0);
    elb.reset();
    elb.on(DescribeTargetHealthCommand).resolves({ TargetHealthDescriptions: [] });
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    const { error: missing } = await capture(() => handler(sampleEvent("schedule-sweep")));
    expect(missing?.message).toMatch(/Auto Scaling group stream-intel-dev-appliances not found/);
  });
});
