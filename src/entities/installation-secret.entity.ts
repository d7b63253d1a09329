import { defineEntity, p } from "@mikro-orm/core";

/**
 * A secret of this installation that every instance must share, made once on first use: the key
 * that signs the local engine's upload URLs, for example. Kept in the database because that is
 * what every instance already shares; it never leaves the server.
 */
export const InstallationSecretSchema = defineEntity({
  name: "InstallationSecret",
  tableName: "installation_secrets",
  properties: {
    name: p.string().length(64).primary(),
    /** Hex of 32 random bytes. */
    value: p.string().length(64),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export class InstallationSecret extends InstallationSecretSchema.class {}
InstallationSecretSchema.setClass(InstallationSecret);
