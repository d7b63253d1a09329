import { defineEntity, p } from "@mikro-orm/core";
import { User } from "./user.entity.ts";

/**
 * A bearer token for the API. Only the SHA-256 of the token is stored: the token itself is shown
 * once, when it is created.
 */
export const ApiTokenSchema = defineEntity({
  name: "ApiToken",
  tableName: "api_tokens",
  properties: {
    id: p.uuid().primary(),
    user: () => p.manyToOne(User).deleteRule("cascade"),
    name: p.string().length(100),
    /** Hex SHA-256 of the token. */
    tokenHash: p.string().length(64).unique(),
    /** The first characters of the token, so a producer can tell tokens apart in a list. */
    tokenPrefix: p.string().length(16),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
  },
});

export class ApiToken extends ApiTokenSchema.class {}
ApiTokenSchema.setClass(ApiToken);
