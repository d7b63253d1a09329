import type { EntityManager } from "@mikro-orm/postgresql";
import {
  createUser,
  findUserByEmail,
  issueToken,
  listTokens,
  revokeToken,
} from "../services/accounts.ts";

/** A command line that does not say what to do. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface CommandOptions {
  email?: string;
  name?: string;
  "token-name"?: string;
}

/** Runs one command and returns the lines to print; a new token is always the last line. */
export async function runCommand(
  em: EntityManager,
  [noun, verb, ...rest]: string[],
  options: CommandOptions,
): Promise<string[]> {
  const email = () => {
    if (!options.email) throw new UsageError("--email is required");
    return options.email;
  };
  switch (`${noun} ${verb}`) {
    case "users create": {
      const user = await createUser(em, email());
      const { token, secret } = await issueToken(em, user, options["token-name"] ?? "default");
      return [
        `Created user ${user.email} (${user.id}).`,
        `API token "${token.name}" (${token.id}); it is shown once, keep it safe:`,
        secret,
      ];
    }
    case "tokens create": {
      const user = await findUserByEmail(em, email());
      const { token, secret } = await issueToken(em, user, options.name ?? "default");
      return [
        `API token "${token.name}" (${token.id}) for ${user.email}; it is shown once:`,
        secret,
      ];
    }
    case "tokens list": {
      const user = await findUserByEmail(em, email());
      const tokens = await listTokens(em, user);
      if (tokens.length === 0) return [`${user.email} has no tokens.`];
      return [
        ["id", "name", "starts with", "created", "last used", "revoked"].join("\t"),
        ...tokens.map((token) =>
          [
            token.id,
            token.name,
            `${token.tokenPrefix}…`,
            token.createdAt.toISOString(),
            token.lastUsedAt?.toISOString() ?? "never",
            token.revokedAt?.toISOString() ?? "no",
          ].join("\t"),
        ),
      ];
    }
    case "tokens revoke": {
      const id = rest[0];
      if (!id) throw new UsageError("the token id is required");
      const token = await revokeToken(em, id);
      return [`Revoked token "${token.name}" (${token.id}) of ${token.user.email}.`];
    }
    default:
      throw new UsageError(`unknown command "${[noun, verb].filter(Boolean).join(" ")}"`);
  }
}
