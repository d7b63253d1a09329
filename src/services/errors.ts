import type { z } from "zod";

/**
 * Domain errors: what a producer can get wrong or run into, as opposed to bugs. The GraphQL
 * layer turns each into a typed result (the errors plugin); job handlers record them.
 */
export class DomainError extends Error {
  override name = "DomainError";
}

export interface FieldProblem {
  /** The input field, as the client named it (e.g. `title`). */
  field: string;
  message: string;
}

/** Bad input: names every offending field. Nothing was changed. */
export class ValidationError extends DomainError {
  override name = "ValidationError";
  readonly problems: FieldProblem[];
  constructor(problems: FieldProblem[]) {
    super(
      `Invalid input: ${problems.map((problem) => `${problem.field}: ${problem.message}`).join("; ")}`,
    );
    this.problems = problems;
  }
}

/** Parses input with a zod schema; its issues become one ValidationError naming each field once. */
export function validateInput<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const seen = new Set<string>();
  const problems = parsed.error.issues
    .map((issue) => ({ field: issue.path.join(".") || "input", message: issue.message }))
    .filter((problem) => !seen.has(problem.field) && seen.add(problem.field));
  throw new ValidationError(problems);
}

/** Missing — or not the caller's, which looks the same from outside. */
export class NotFoundError extends DomainError {
  override name = "NotFoundError";
}

/** The request contradicts the current state (e.g. another file after processing started). */
export class ConflictError extends DomainError {
  override name = "ConflictError";
}

/** The media engine has no such file for this episode (never uploaded, or uploaded for another). */
export class UnknownFileError extends DomainError {
  override name = "UnknownFileError";
}

/** The uploaded file is not media the engine can read (ffprobe finds no audio or video in it). */
export class InvalidMediaError extends DomainError {
  override name = "InvalidMediaError";
}

/** Ittybit is not configured, or could not be reached after retries; trying later may work. */
export class ProcessingUnavailableError extends DomainError {
  override name = "ProcessingUnavailableError";
}
