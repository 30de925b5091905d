import {
  CloudWatchClient,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  type MetricDataResult,
} from "@aws-sdk/client-cloudwatch";
import { call } from "./call.ts";

export const cloudWatchClient = new CloudWatchClient({});

export async function metricData(input: GetMetricDataCommandInput): Promise<MetricDataResult[]> {
  const result = await call("GetMetricData", () => cloudWatchClient.send(new GetMetricDataCommand(input)));
  return result.MetricDataResults ?? [];
}
