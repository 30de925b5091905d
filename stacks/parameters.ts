/**
 * The SSM parameters the system runs on: the appliance policy (seeded from the shipped default,
 * validated with the shared schema before anything is deployed), the contributor schedule (seeded
 * from the stage whitelist; the rotator's source of truth) and the stream manager's small state.
 * After the first deploy the rotator owns their values: later deploys do not overwrite them.
 */
import { readFileSync } from "node:fs";
import { ssm } from "@pulumi/aws";
import { validatePolicy } from "../contracts/policy.ts";
import { named, type StageConfig } from "./config.ts";

export interface Parameters {
  policy: ssm.Parameter;
  contributors: ssm.Parameter;
  streamState: ssm.Parameter;
}

export function seedPolicy(config: StageConfig, policyFile: string): string {
  const policy = JSON.parse(readFileSync(policyFile, "utf8"));
  const mediaConnect = [...config.mediaConnectSubnets];
  const mediaLive = [...config.mediaLiveSubnets];
  policy.sets = {
    ...policy.sets,
    mediaconnect: mediaConnect,
    medialive: mediaLive,
    contributors: config.whitelist.map((w) => w.cidr),
  };
  policy.flows = policy.flows.map((flow: { dstPorts?: unknown }) => ({
    ...flow,
    dstPorts: [`${config.mediaPorts.from}-${config.mediaPorts.to}`],
  }));
  validatePolicy(policy, `${config.stage} appliance policy`);
  return JSON.stringify(policy, null, 2);
}

export function createParameters(config: StageConfig, policyFile: string): Parameters {
  const base = `/stream-intel/${config.stage}`;
  const managed = { ignoreChanges: ["value"] };
  return {
    policy: new ssm.Parameter(
      named(config, "policy"),
      {
        name: `${base}/policy`,
        type: "String",
        tier: "Advanced",
        value: seedPolicy(config, policyFile),
        description: "Appliance policy (contracts/policy.ts)",
      },
      managed,
    ),
    contributors: new ssm.Parameter(
      named(config, "contributors"),
      {
        name: `${base}/contributors`,
        type: "String",
        value: JSON.stringify(config.whitelist, null, 2),
        description: "Contributor whitelist schedule",
      },
      managed,
    ),
    streamState: new ssm.Parameter(
      named(config, "stream-state"),
      {
        name: `${base}/stream-state`,
        type: "String",
        value: "{}",
        description: "Stream manager state (idle tracking)",
      },
      managed,
    ),
  };
}
