import { randomUUID } from "node:crypto";
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { type GraphQLResolveInfo, isObjectType } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../../src/schema/index.ts";

// The schema's Node types resolve their global ids in step (resolveNodeIdsInStep), in place of
// plugin-relay's async resolver: the ids must be the ones plugin-relay would have made.
describe("node ids", () => {
  const nodeTypes = Object.values(schema.getTypeMap()).filter(
    (type) => isObjectType(type) && type.getInterfaces().some((node) => node.name === "Node"),
  );

  it("covers every node type of the schema", () => {
    expect(nodeTypes.map((type) => type.name).sort()).toEqual(["Episode", "Show"]);
  });

  it.each(nodeTypes.map((type) => [type.name]))(
    "%s: the id is plugin-relay's encoding of the row's id, returned in step",
    (typename) => {
      const type = schema.getType(typename);
      if (!isObjectType(type)) throw new Error(`${typename} is not an object type`);
      const resolve = type.getFields().id?.resolve;
      if (!resolve) throw new Error(`${typename}.id has no resolver`);
      const id = randomUUID();
      const globalId = resolve({ id }, {}, {}, {} as GraphQLResolveInfo);
      expect(globalId).not.toBeInstanceOf(Promise);
      expect(globalId).toBe(encodeGlobalID(typename, id));
      expect(decodeGlobalID(globalId as string)).toEqual({ typename, id });
    },
  );
});
