/**
 * What a first `sst deploy` on a real account needs and the services' own rules demand, checked on the
 * stack as built under Pulumi's mocks: constraints of the providers and of AWS that the stack must
 * respect, the order resources are created and deleted in, the rollout of a new appliance build, and
 * event delivery that retries, dead-letters and alarms instead of losing an event.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { EmfMetric } from "../../contracts/appliance-metrics.ts";
import { ApplianceArtifact } from "../../contracts/function-env.ts";
import { DELIVERY_RETRY, MEDIA_DETAIL_TYPES, windowInput } from "../../stacks/automation.ts";
import { uploadedFiles, userData } from "../../stacks/inspection.ts";
import { ACCOUNT, buildStack, fixtureRoot, type Stack } from "./harness.ts";

let stack: Stack;
const WINDOW = {
  name: "match-day",
  start: "cron(0 18 ? * SAT *)",
  stop: "cron(0 21 ? * SAT *)",
  timezone: "Europe/London",
};

beforeAll(async () => {
  stack = await buildStack({ streamWindows: [WINDOW] });
});

const json = (value: unknown) => JSON.parse(String(value));

describe("provider and service constraints", () => {
  it("lets the appliances reach S3 (their files, the Amazon Linux repositories) through the gateway endpoint", () => {
    const endpoint = stack.byName("stream-intel-test-endpoint-s3");
    const group = stack.byName("stream-intel-test-appliances");
    const rules = group.inputs.egress as {
      fromPort: number;
      prefixListIds?: string[];
      cidrBlocks?: string[];
    }[];
    const https = rules.filter((r) => r.fromPort === 443);
    // S3's addresses are the region's managed prefix list, which the gateway endpoint exposes; the VPC
    // CIDR alone never reaches them.
    expect(https.flatMap((r) => r.prefixListIds ?? [])).toEqual([endpoint.state.prefixListId]);
  });

  it("creates the service roles' policies before, and deletes them after, what uses them", () => {
    const deps = (name: string) => stack.dependencies.get(name) ?? [];
    expect(deps("stream-intel-test-flow-vpc-interface")).toContain("stream-intel-test-mediaconnect-eni");
    expect(deps("stream-intel-test-input")).toContain("stream-intel-test-medialive-access");
    expect(deps("stream-intel-test-channel")).toContain("stream-intel-test-medialive-access");
    expect(deps("stream-intel-test-appliance")).toContain("stream-intel-test-appliance-access");
    const schedules = stack.byType("scheduler/schedule:Schedule");
    expect(schedules.length).toBeGreaterThan(0);
    for (const schedule of schedules)
      expect(deps(schedule.name)).toContain("stream-intel-test-scheduler-invoke");
  });

  it("names the audio selector the audio description uses, and keeps the HLS origin to the viewers' ranges", () => {
    const channel = stack.byType("medialive/channel:Channel")[0].inputs as {
      inputAttachments: { inputSettings?: { audioSelectors?: { name: string }[] } }[];
      encoderSettings: { audioDescriptions: { audioSelectorName: string }[] };
    };
    const selectors = channel.inputAttachments
      .flatMap((a) => a.inputSettings?.audioSelectors ?? [])
      .map((s) => s.name);
    for (const audio of channel.encoderSettings.audioDescriptions)
      expect(selectors).toContain(audio.audioSelectorName);
    expect(stack.byType("mediapackage:OriginEndpoint")[0].inputs.whitelist).toEqual(
      stack.config.hlsViewerCidrs,
    );
  });

  it("pushes to the MediaPackage (v1) channel by its id, each output with the settings block that has no fields", () => {
    // MediaLive's MediaPackageOutputSettings has no fields for a v1 channel (only the v2 destination
    // settings, for channel groups); the provider sends the empty object only when the block is present.
    const channel = stack.byType("medialive/channel:Channel")[0].inputs as {
      destinations: { id: string; mediaPackageSettings?: { channelId: unknown }[] }[];
      encoderSettings: {
        outputGroups: {
          outputGroupSettings: { mediaPackageGroupSettings?: { destination: { destinationRefId: string } } };
          outputs: { outputSettings: Record<string, unknown> }[];
        }[];
      };
    };
    const packageChannel = stack.byType("mediapackage/channel:Channel")[0];
    const destination = channel.destinations.find((d) => d.mediaPackageSettings);
    expect(destination?.mediaPackageSettings).toEqual([{ channelId: packageChannel.inputs.channelId }]);
    for (const group of channel.encoderSettings.outputGroups) {
      expect(group.outputGroupSettings.mediaPackageGroupSettings?.destination.destinationRefId).toBe(
        destination?.id,
      );
      for (const output of group.outputs)
        expect(output.outputSettings).toEqual({ mediaPackageOutputSettings: {} });
    }
  });

  it("keeps every log group it creates for a limited time, and the functions' too", () => {
    const groups = stack.byType("cloudwatch/logGroup:LogGroup");
    expect(groups.length).toBeGreaterThanOrEqual(3);
    for (const group of groups) expect(group.inputs.retentionInDays, group.name).toBeGreaterThan(0);
    const sstConfig = readFileSync(new URL("../../sst.config.ts", import.meta.url), "utf8");
    expect(sstConfig).toMatch(/logging: \{ retention: "1 month"/);
  });

  it("computes the drop rate without an undocumented scalar-in-array MAX", () => {
    const alarm = stack.byName("stream-intel-test-appliance-drops").inputs.metricQueries as {
      expression?: string;
    }[];
    const expression = alarm.find((q) => q.expression)!.expression!;
    expect(expression).not.toMatch(/MAX\(\[/);
    expect(expression).toBe("IF(received > 0, 100 * dropped / received, 0)");
  });
});

describe("appliance rollout", () => {
  it("uploads and installs exactly the instance files ApplianceArtifact lists, each checked by digest", () => {
    const files = uploadedFiles(stack.root);
    const objects = stack.byType("s3/bucketObjectv2:BucketObjectv2");
    expect(objects.map((o) => o.inputs.key).sort()).toEqual(files.map((f) => f.key).sort());
    const script = Buffer.from(
      String(stack.byType("ec2/launchTemplate:LaunchTemplate")[0].inputs.userData),
      "base64",
    ).toString();
    for (const file of files) {
      expect(script).toContain(`/${file.key} ${file.installTo}`);
      expect(script).toContain(`echo "${file.sha256}  ${file.installTo}" | sha256sum --check`);
    }
    expect(files).toHaveLength(ApplianceArtifact.instanceFiles.length);
  });

  it("changes the launch template when any instance file changes, so the instance refresh rolls it out", () => {
    const boot = {
      bucket: "assets",
      policyParameter: "/stream-intel/test/policy",
      groupName: "g",
      logGroupName: "l",
    };
    const before = userData(stack.config, { ...boot, files: uploadedFiles(fixtureRoot("bundle v1")) });
    const after = userData(stack.config, { ...boot, files: uploadedFiles(fixtureRoot("bundle v2")) });
    expect(after).not.toBe(before);
    const root = fixtureRoot("bundle v1");
    writeFileSync(path.join(root, ApplianceArtifact.systemdUnit), "[Unit]\nDescription=changed\n");
    expect(userData(stack.config, { ...boot, files: uploadedFiles(root) })).not.toBe(before);
    expect(userData(stack.config, { ...boot, files: uploadedFiles(fixtureRoot("bundle v1")) })).toBe(before);
    expect(stack.byType("autoscaling/group:Group")[0].inputs.instanceRefresh).toMatchObject({
      strategy: "Rolling",
    });
  });

  it("refuses to build without the appliance bundle, naming the command that makes it", () => {
    expect(() => uploadedFiles("/nonexistent")).toThrow(/npm run build:appliance/);
  });

  it("scales on the appliances' own load, not on average CPU", () => {
    const policies = stack.byType("autoscaling/policy:Policy").map((p) => p.inputs);
    expect(JSON.stringify(policies)).not.toMatch(/ASGAverageCPUUtilization/);
    const tracking = policies.find((p) => p.policyType === "TargetTrackingScaling")!;
    expect(tracking.targetTrackingConfiguration).toMatchObject({
      customizedMetricSpecification: { metricName: EmfMetric.packetsReceived, statistic: "Average" },
      targetValue: stack.config.scaleOutPacketsPerSecond * 60,
    });
    const drops = stack.byName("stream-intel-test-appliance-socket-drops").inputs;
    expect(drops).toMatchObject({ metricName: EmfMetric.socketReceiveDrops, threshold: 0 });
    expect(drops.alarmActions).toEqual([stack.byName("stream-intel-test-appliances-drops").state.arn]);
  });
});

describe("event delivery", () => {
  const queueArn = () => stack.byName("stream-intel-test-automation-dead-letters").state.arn;

  it("gives every rule target and every schedule a retry policy and the dead-letter queue", () => {
    const targets = stack.byType("cloudwatch/eventTarget:EventTarget");
    expect(targets).toHaveLength(8);
    for (const target of targets) {
      expect(target.inputs.retryPolicy, target.name).toEqual({ ...DELIVERY_RETRY });
      expect(target.inputs.deadLetterConfig, target.name).toEqual({ arn: queueArn() });
    }
    const schedules = stack.byType("scheduler/schedule:Schedule");
    expect(schedules).toHaveLength(2);
    for (const schedule of schedules) {
      const target = schedule.inputs.target as { retryPolicy: object; deadLetterConfig: object };
      expect(target.retryPolicy).toEqual({ ...DELIVERY_RETRY });
      expect(target.deadLetterConfig).toEqual({ arn: queueArn() });
    }
    const asyncConfigs = stack.byType("lambda/functionEventInvokeConfig:FunctionEventInvokeConfig");
    expect(asyncConfigs.map((c) => c.inputs.functionName).sort()).toEqual(
      stack.specs.map((s) => s.functionName).sort(),
    );
    for (const c of asyncConfigs)
      expect(c.inputs.destinationConfig).toEqual({ onFailure: { destination: queueArn() } });
    const policy = json(stack.byType("sqs/queuePolicy:QueuePolicy")[0].inputs.policy);
    expect(policy.Statement[0].Condition.ArnEquals["aws:SourceArn"].sort()).toEqual(
      stack
        .byType("cloudwatch/eventRule:EventRule")
        .map((r) => r.state.arn)
        .sort(),
    );
  });

  it("alarms on the dead-letter queue, on each function's errors and refused events, all on the dashboard", () => {
    const alarms = stack.byType("cloudwatch/metricAlarm:MetricAlarm").map((a) => a.inputs);
    expect(alarms).toContainEqual(
      expect.objectContaining({
        namespace: "AWS/SQS",
        metricName: "ApproximateNumberOfMessagesVisible",
        threshold: 0,
      }),
    );
    for (const spec of stack.specs) {
      expect(alarms).toContainEqual(
        expect.objectContaining({
          namespace: "AWS/Lambda",
          metricName: "Errors",
          dimensions: { FunctionName: spec.functionName },
        }),
      );
    }
    for (const service of ["appliance-healer", "whitelist-rotator", "stream-manager"])
      expect(alarms).toContainEqual(
        expect.objectContaining({
          namespace: "StreamIntel",
          metricName: "InvalidEvents",
          dimensions: { service },
        }),
      );
    const body = json(stack.byType("cloudwatch/dashboard:Dashboard")[0].inputs.dashboardBody);
    const shown = JSON.stringify(body.widgets);
    expect(shown).toContain("ApproximateNumberOfMessagesVisible");
    expect(shown).toContain("InvalidEvents");
    for (const spec of stack.specs) expect(shown).toContain(spec.functionName);
    const alarmWidget = body.widgets.find((w: { type: string }) => w.type === "alarm");
    expect(alarmWidget.properties.alarms).toContain(
      `arn:aws:cloudwatch:eu-west-1:${ACCOUNT}:alarm:stream-intel-test-automation-dead-letters`,
    );
  });

  it("runs each function one invocation at a time, once per event id", () => {
    for (const spec of stack.specs) {
      expect(spec.reservedConcurrency, spec.name).toBe(1);
      expect(Object.keys(spec.environment)).toContain("IDEMPOTENCY_TABLE");
    }
    const table = stack.byName("stream-intel-test-idempotency").inputs;
    // Powertools' DynamoDB persistence layer: partition key `id`, record expiry in `expiration`.
    expect(table).toMatchObject({ hashKey: "id", ttl: { attributeName: "expiration", enabled: true } });
    const sstConfig = readFileSync(new URL("../../sst.config.ts", import.meta.url), "utf8");
    expect(sstConfig).toMatch(/concurrency: \{ reserved: spec\.reservedConcurrency \}/);
    expect(sstConfig).toMatch(/name: spec\.functionName/);
  });

  it("creates the Scheduler windows with an input the stream manager accepts as Scheduler delivers it", () => {
    const schedules = stack.byType("scheduler/schedule:Schedule");
    for (const action of ["start", "stop"] as const) {
      const schedule = schedules.find((s) => s.name === `stream-intel-test-window-match-day-${action}`)!;
      expect(schedule.inputs).toMatchObject({
        scheduleExpression: WINDOW[action],
        scheduleExpressionTimezone: WINDOW.timezone,
        flexibleTimeWindow: { mode: "OFF" },
      });
      const target = schedule.inputs.target as { arn: string; input: string; roleArn: string };
      expect(target.arn).toMatch(/function:stream-intel-test-stream-manager$/);
      expect(target.input).toBe(windowInput(stack.config, ACCOUNT, action, WINDOW.name));
      const delivered = json(target.input.replaceAll(/<aws\.scheduler\.[a-z-]+>/g, "x"));
      expect(delivered).toMatchObject({
        "detail-type": "Scheduled Event",
        source: "aws.scheduler",
        detail: { action },
      });
    }
  });

  it("has a sample in events/ for every detail-type the rules subscribe to", () => {
    const samples = readdirSync(new URL("../../events/", import.meta.url))
      .filter((f) => f.endsWith(".json"))
      .map((f) => json(readFileSync(new URL(`../../events/${f}`, import.meta.url))))
      .map((e) => `${e.source} ${e["detail-type"]}`);
    const subscribed = stack.byType("cloudwatch/eventRule:EventRule").flatMap((rule) => {
      if (rule.inputs.scheduleExpression) return ["aws.events Scheduled Event"];
      const pattern = json(rule.inputs.eventPattern);
      return (pattern.source as string[]).flatMap((source) =>
        (pattern["detail-type"] as string[])
          .filter((type) => source !== "aws.mediaconnect" || type.startsWith("MediaConnect"))
          .filter((type) => source !== "aws.medialive" || type.startsWith("MediaLive"))
          .map((type) => `${source} ${type}`),
      );
    });
    expect(new Set(subscribed).size).toBeGreaterThan(8);
    for (const kind of subscribed) expect(samples, kind).toContain(kind);
    expect(MEDIA_DETAIL_TYPES.length).toBe(4);
  });
});
