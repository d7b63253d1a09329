import { User } from "../entities/user.entity.ts";
import { builder } from "./builder.ts";
import { requireViewer } from "./context.ts";

export const UserRef = builder.objectType(User, {
  name: "User",
  description: "A producer: the owner of episodes and API tokens.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The user's id." }),
    email: t.exposeString("email", { description: "The user's email address, lower-cased." }),
    createdAt: t.field({
      type: "DateTime",
      description: "When the user was created.",
      resolve: (user) => user.createdAt,
    }),
  }),
});

builder.queryField("viewer", (t) =>
  t.field({
    type: UserRef,
    description: "The user the API token belongs to.",
    resolve: (_root, _args, context) => requireViewer(context),
  }),
);
