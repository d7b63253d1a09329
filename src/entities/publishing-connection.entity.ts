import { defineEntity, p } from "@mikro-orm/core";
import { CONNECTION_SERVICES, CONNECTION_STATUSES } from "../domain/publications.ts";
import { User } from "./user.entity.ts";

/**
 * A producer's account at a publishing service (one per service). Secrets are sealed with the
 * installation's secret box (src/services/secret-box.ts) and never leave the server.
 */
export const PublishingConnectionSchema = defineEntity({
  name: "PublishingConnection",
  tableName: "publishing_connections",
  properties: {
    id: p.uuid().primary(),
    user: () => p.manyToOne(User).deleteRule("cascade"),
    service: p.enum(CONNECTION_SERVICES),
    status: p.enum(CONNECTION_STATUSES),
    /** Why a BROKEN connection stopped working, in words for the producer. */
    brokenReason: p.text().nullable(),
    /** Sealed: Transistor's API key, or YouTube's refresh token. */
    secret: p.text().nullable(),
    /** YouTube: the sealed current access token and when it expires. */
    accessToken: p.text().nullable(),
    accessTokenExpiresAt: p.datetime().nullable(),
    /** YouTube: the scopes the producer granted (space-separated). */
    scopes: p.text().nullable(),
    /** Who the account is, as the service names it: the Transistor user, the YouTube channel. */
    accountName: p.string().length(255).nullable(),
    accountId: p.string().length(128).nullable(),
    /** Transistor: the show episodes are published to, chosen from the account's shows. */
    transistorShowId: p.string().length(64).nullable(),
    transistorShowTitle: p.string().length(255).nullable(),
    transistorShowTimeZone: p.string().length(64).nullable(),
    /** YouTube's consent in progress: SHA-256 of the `state`, and the sealed PKCE verifier. */
    oauthStateHash: p.string().length(64).nullable().unique(),
    oauthVerifier: p.text().nullable(),
    oauthStartedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [{ properties: ["user", "service"] }],
});

export class PublishingConnection extends PublishingConnectionSchema.class {}
PublishingConnectionSchema.setClass(PublishingConnection);
