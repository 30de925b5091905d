/// <reference path="./.sst/platform/config.d.ts" />

// Stream Intelligence on AWS: `npm run deploy -- --stage <name>` (builds the appliance bundle, then
// `sst deploy`). Stacks are plain Pulumi modules in stacks/, imported inside run() (SST forbids
// top-level imports here); only the Lambda functions, which need the SST CLI, are built in this file.
export default $config({
  app(input) {
    return {
      name: "stream-intel",
      home: "aws",
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
      providers: {
        aws: { region: "eu-west-1", version: "7.20.0" },
        "aws-native": { region: "eu-west-1", version: "1.79.0" },
      },
    };
  },
  async run() {
    const { stageConfig } = await import("./stacks/config.ts");
    const { buildInfrastructure } = await import("./stacks/app.ts");
    const { createTriggers, functionSpecs } = await import("./stacks/automation.ts");
    const config = stageConfig($app.stage);
    const infra = buildInfrastructure(config, process.cwd());

    const deployed = {} as Record<
      "applianceHealer" | "whitelistRotator" | "streamManager",
      { arn: $util.Output<string>; name: $util.Output<string> }
    >;
    for (const spec of functionSpecs(config, infra.automationRefs)) {
      const fn = new sst.aws.Function(spec.name, {
        name: spec.functionName,
        handler: spec.handler,
        runtime: "nodejs24.x",
        architecture: "arm64",
        memory: "256 MB",
        timeout: "60 seconds",
        environment: spec.environment,
        permissions: spec.permissions,
        concurrency: { reserved: spec.reservedConcurrency },
        logging: { retention: "1 month" },
      });
      deployed[spec.name] = { arn: fn.arn, name: fn.name };
    }
    createTriggers(config, infra.automationRefs, deployed);

    return {
      gatewayLoadBalancer: infra.inspection.gwlb.arn,
      appliances: infra.inspection.group.name,
      flow: infra.media.flow.flowArn,
      channel: infra.media.channel.channelId,
      hls: infra.media.hlsEndpoint.url,
      dashboard: infra.monitoring.dashboard.dashboardName,
      deadLetters: infra.delivery.deadLetters.url,
    };
  },
});
