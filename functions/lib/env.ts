/** Reads a function's settings from its environment, once, with a clear error naming what is wrong. */
import { z } from "zod";
import { formatIssues } from "../../contracts/validation.ts";
import { InvalidInputError } from "./errors.ts";

export function readEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv = process.env): z.output<T> {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new InvalidInputError(`function configuration is invalid: ${formatIssues(result.error)}`);
  }
  return result.data;
}

export const arn = (service: string) =>
  z
    .string()
    .regex(new RegExp(`^arn:aws[a-z-]*:${service}:[a-z0-9-]+:\\d{12}:.+`), `expected a ${service} ARN`);
