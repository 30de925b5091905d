/**
 * Zod issues as a person reads them: one `path: message` per problem, so whoever wrote the event, the
 * policy or the configuration sees every field to fix at once, not only the first.
 */
import type { z } from "zod";

/** One `path: message` line per issue; a problem with the value as a whole is named `(root)`. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map(
    (issue) => `${issue.path.length ? issue.path.join(".") : "(root)"}: ${issue.message}`,
  );
}

/** Every issue on one line, `; `-separated, for an error message. */
export function formatIssues(error: z.ZodError): string {
  return describeIssues(error).join("; ");
}
