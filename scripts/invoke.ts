/**
 * Runs a Lambda handler locally against a sample event without touching AWS: every SDK client answers
 * from the canned state in events/dry-run/world.json, and every command the function sends is printed
 * with its input ("WOULD SEND" for the ones that change something), so you see what it would do.
 *
 *   node scripts/invoke.ts appliance-healer events/alarm-unhealthy-hosts.json
 *   node scripts/invoke.ts whitelist-rotator events/whitelist-rotation-requested.json
 *   node scripts/invoke.ts stream-manager events/start-stream.json
 *
 * Settings come from the environment as in Lambda (see contracts/function-env.ts); dev-stage
 * placeholders fill whatever is unset. With `sst dev`, the same handlers run live against your account.
 */
import { readFileSync } from "node:fs";
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { MediaConnectClient } from "@aws-sdk/client-mediaconnect";
import { MediaLiveClient } from "@aws-sdk/client-medialive";
import { SSMClient } from "@aws-sdk/client-ssm";

const [name, eventFile] = process.argv.slice(2);
const handlers = ["appliance-healer", "whitelist-rotator", "stream-manager"];
if (!handlers.includes(name) || !eventFile) {
  console.error(`usage: node scripts/invoke.ts <${handlers.join("|")}> <event.json>`);
  process.exit(2);
}

const region = "eu-west-1";
const account = "111122223333";
const defaults: Record<string, string> = {
  AWS_REGION: region,
  AWS_EC2_METADATA_DISABLED: "true",
  STAGE: "dev",
  TARGET_GROUP_ARN: `arn:aws:elasticloadbalancing:${region}:${account}:targetgroup/stream-intel-dev-geneve/73e2d6bc24d8a067`,
  ASG_NAME: "stream-intel-dev-appliances",
  CONTRIBUTORS_PARAMETER: "/stream-intel/dev/contributors",
  POLICY_PARAMETER: "/stream-intel/dev/policy",
  STATE_PARAMETER: "/stream-intel/dev/stream-state",
  FLOW_ARN: `arn:aws:mediaconnect:${region}:${account}:flow:1-AbCdEfGhIjKlMnOp-abcdef123455:stream-intel-dev-contribution`,
  CHANNEL_ID: "1234567",
  IDEMPOTENCY_TABLE: "stream-intel-dev-idempotency",
};
for (const [key, value] of Object.entries(defaults)) process.env[key] ??= value;

const world: Record<string, unknown> = JSON.parse(
  readFileSync(new URL("../events/dry-run/world.json", import.meta.url), "utf8"),
);
world["GetParameterCommand:/stream-intel/dev/policy"] = {
  Parameter: {
    Value: readFileSync(new URL("../appliance/policy.default.json", import.meta.url), "utf8"),
    Version: 1,
  },
};
const clients = [
  AutoScalingClient,
  CloudWatchClient,
  DynamoDBClient,
  EC2Client,
  ElasticLoadBalancingV2Client,
  EventBridgeClient,
  MediaConnectClient,
  MediaLiveClient,
  SSMClient,
];
// Every client answers from the canned world and prints what it was asked: nothing leaves the machine.
for (const client of clients) {
  client.prototype.send = async function (
    this: unknown,
    command: { constructor: { name: string }; input: Record<string, unknown> },
  ) {
    const commandName = command.constructor.name;
    const key = `${commandName}:${String(command.input.Name ?? "")}`;
    const answer = world[key] ?? world[commandName] ?? {};
    const mutating = !/^(Describe|Get|List)/.test(commandName);
    console.log(
      `${mutating ? "WOULD SEND" : "reads    "} ${client.name.replace(/Client$/, "")} ${commandName} ${JSON.stringify(command.input)}`,
    );
    return answer;
  } as never;
}

const module = await import(`../functions/${name}.ts`);
const event = JSON.parse(readFileSync(eventFile, "utf8"));
try {
  const result = await module.handler(event);
  console.log(`result: ${JSON.stringify(result, null, 2)}`);
} catch (error) {
  console.log(`failed: ${(error as Error).name}: ${(error as Error).message}`);
  process.exitCode = 1;
}
