import { lexicographicSortSchema, printSchema } from "graphql";
import { builder } from "./builder.ts";
import { resolveNodeIdsInStep } from "./global-ids.ts";
import "./errors.ts";
import "./health.ts";
import "./viewer.ts";
import "./task.ts";
import "./episode.ts";
import "./show.ts";
import "./distribution.ts";
import "./publishing.ts";
import "./upload.ts";
import "./processing.ts";
import "./subscription.ts";

export const schema = resolveNodeIdsInStep(builder.toSchema());

/** The SDL committed as schema.graphql; a test fails when the two differ. */
export function printPodflowSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
