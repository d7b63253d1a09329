import SchemaBuilder from "@pothos/core";
import DataloaderPlugin from "@pothos/plugin-dataloader";
import ErrorsPlugin from "@pothos/plugin-errors";
import RelayPlugin from "@pothos/plugin-relay";
import { DateTimeResolver, SafeIntResolver } from "graphql-scalars";
import type { GraphQLContext } from "./context.ts";

/** Pothos configuration only; types live in one file per domain (DESIGN §3). */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    SafeInt: { Input: number; Output: number };
    ID: { Input: string; Output: string | number };
  };
}>({
  plugins: [ErrorsPlugin, RelayPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
  },
  errors: {
    defaultTypes: [],
  },
});

builder.addScalarType("DateTime", DateTimeResolver, {
  description: "A date and time in UTC, as an ISO 8601 string.",
});
builder.addScalarType("SafeInt", SafeIntResolver, {
  description: "A whole number exact up to 2^53 - 1, such as a size in bytes.",
});

builder.queryType({ description: "Everything a producer can read." });
