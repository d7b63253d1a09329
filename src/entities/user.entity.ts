import { defineEntity, p } from "@mikro-orm/core";

/** A producer: owns episodes and API tokens. */
export const UserSchema = defineEntity({
  name: "User",
  tableName: "users",
  properties: {
    id: p.uuid().primary(),
    /** Stored lower-cased, so uniqueness ignores case. */
    email: p.string().length(320).unique(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export class User extends UserSchema.class {}
UserSchema.setClass(User);
