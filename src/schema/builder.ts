import SchemaBuilder from "@pothos/core";
import ErrorsPlugin from "@pothos/plugin-errors";
import RelayPlugin from "@pothos/plugin-relay";
import { GraphQLScalarType } from "graphql";
import { DateTimeResolver, SafeIntResolver } from "graphql-scalars";
import type { GraphQLContext } from "./context.ts";
import { isoDateTime } from "./date-time.ts";

/** Pothos configuration only; types live in one file per domain (docs/architecture.md). */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    SafeInt: { Input: number; Output: number };
    ID: { Input: string; Output: string | number };
  };
}>({
  plugins: [ErrorsPlugin, RelayPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    nodeQueryOptions: {
      description: "Any object with a global id that the viewer may see; null otherwise.",
    },
    nodesQueryOptions: {
      description: "The objects with these global ids that the viewer may see.",
    },
  },
  errors: {
    defaultTypes: [],
  },
});

/**
 * graphql-scalars' DateTime, serialised to the ISO string its Date would become in JSON anyway:
 * a result holding Date objects sends JSON.stringify down its slow path (a toJSON call for each),
 * which made serialising a page of 100 episodes with their tasks over ten times slower. A Date
 * is formatted by isoDateTime (toISOString's string, in a third of its time); anything else as
 * graphql-scalars does.
 */
const DateTimeScalar = new GraphQLScalarType({
  ...DateTimeResolver.toConfig(),
  serialize: (value) =>
    isoDateTime(
      value instanceof Date && !Number.isNaN(value.getTime())
        ? value
        : (DateTimeResolver.serialize(value) as Date),
    ),
});

builder.addScalarType("DateTime", DateTimeScalar, {
  description: "A date and time in UTC, as an ISO 8601 string.",
});
builder.addScalarType("SafeInt", SafeIntResolver, {
  description: "A whole number exact up to 2^53 - 1, such as a size in bytes.",
});

builder.queryType({ description: "Everything a producer can read." });
builder.mutationType({ description: "Everything a producer can change." });
