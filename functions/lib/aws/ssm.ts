import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { call } from "./call.ts";

export const ssmClient = new SSMClient({});

/** The parameter's value (decrypted when asked: the contributor list may be a SecureString). */
export async function getParameter(name: string, decrypt = false): Promise<string | undefined> {
  const result = await call(`GetParameter ${name}`, () =>
    ssmClient.send(new GetParameterCommand(decrypt ? { Name: name, WithDecryption: true } : { Name: name })),
  );
  return result.Parameter?.Value;
}

/** Overwrites a String parameter. */
export async function putParameter(name: string, value: string): Promise<void> {
  await call(`PutParameter ${name}`, () =>
    ssmClient.send(new PutParameterCommand({ Name: name, Value: value, Type: "String", Overwrite: true })),
  );
}
