import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { type GraphQLSchema, isObjectType } from "graphql";
import { isUuid } from "../domain/ids.ts";

/**
 * The uuid inside a global id of `typename`, or null for anything else: another type, a
 * malformed id, or one whose inside is no uuid (which finds nothing rather than failing in the
 * database).
 */
export function uuidFromGlobalId(globalId: string, typename: string): string | null {
  try {
    const decoded = decodeGlobalID(globalId);
    return decoded.typename === typename && isUuid(decoded.id) ? decoded.id : null;
  } catch {
    return null;
  }
}

/** The id inside every node's global id: each node type's entity or row carries it as `id`. */
export const nodeId = { resolve: (node: { id: string }) => node.id };

/**
 * Every Node type's `id` field resolved in step. plugin-relay's resolver for it is an async
 * function (it awaits the raw id's resolver, which may be async in general), so each node on a
 * page cost a promise and a turn of the executor's microtask queue (a listing of 100 episodes,
 * 100 of each). Here the raw id is always `nodeId`, a property read, so the global id is encoded
 * directly, exactly as plugin-relay encodes it (the builder sets no encodeGlobalID of its own).
 * Run once on the built schema, before anything executes or compiles against it.
 */
export function resolveNodeIdsInStep(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || !type.getInterfaces().some((node) => node.name === "Node")) continue;
    const field = type.getFields().id;
    if (!field) throw new Error(`${type.name} is a Node without an id field`);
    const typename = type.name;
    field.resolve = (node: { id: string }) => encodeGlobalID(typename, nodeId.resolve(node));
  }
  return schema;
}
