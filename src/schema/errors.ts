import {
  ConflictError,
  type DomainError,
  type FieldProblem,
  InvalidMediaError,
  NotFoundError,
  ProcessingUnavailableError,
  UnknownFileError,
  ValidationError,
} from "../services/errors.ts";
import { RateLimitError } from "../services/producer-limits.ts";
import { builder } from "./builder.ts";

/** Every domain error a mutation can return as a result, rather than as a GraphQL error. */
export const ErrorInterface = builder.interfaceRef<Error>("Error").implement({
  description: "Something the request could not do. Nothing was changed.",
  fields: (t) => ({
    message: t.exposeString("message", { description: "What went wrong, for a person to read." }),
  }),
});

const FieldProblemRef = builder.objectRef<FieldProblem>("FieldProblem").implement({
  description: "One invalid input field.",
  fields: (t) => ({
    field: t.exposeString("field", { description: "The input field, e.g. `title`." }),
    message: t.exposeString("message", { description: "Why its value is not accepted." }),
  }),
});

builder.objectType(ValidationError, {
  name: "ValidationError",
  description: "The input was invalid; `fields` names each offending field.",
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ValidationError,
  fields: (t) => ({
    fields: t.stringList({
      description: "The names of the invalid input fields.",
      resolve: (error) => error.problems.map((problem) => problem.field),
    }),
    problems: t.field({
      type: [FieldProblemRef],
      description: "Each invalid field with the reason.",
      resolve: (error) => error.problems,
    }),
  }),
});

function simpleError(errorClass: typeof DomainError, name: string, description: string) {
  builder.objectType(errorClass, {
    name,
    description,
    interfaces: [ErrorInterface],
    isTypeOf: (value) => value instanceof errorClass,
  });
}

simpleError(NotFoundError, "NotFoundError", "No such object, or not yours.");
simpleError(ConflictError, "ConflictError", "The request contradicts the object's current state.");
simpleError(
  UnknownFileError,
  "UnknownFileError",
  "The media engine has no file with that id for this episode.",
);
simpleError(
  InvalidMediaError,
  "InvalidMediaError",
  "The uploaded file is not audio or video the media engine can read.",
);
simpleError(
  ProcessingUnavailableError,
  "ProcessingUnavailableError",
  "Media processing is not configured or Ittybit could not be reached; try again later.",
);

builder.objectType(RateLimitError, {
  name: "RateLimitError",
  description:
    "The producer did this as often as an hour allows (a per-producer limit); try again at `resetsAt`.",
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RateLimitError,
  fields: (t) => ({
    setting: t.exposeString("setting", {
      description: "The setting that sets the limit, e.g. `PODFLOW_MAX_EPISODES_PER_HOUR`.",
    }),
    limit: t.exposeInt("limit", { description: "How many an hour allows." }),
    resetsAt: t.field({
      type: "DateTime",
      description: "When one more is possible.",
      resolve: (error) => error.resetsAt,
    }),
  }),
});
