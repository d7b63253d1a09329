import { defineEntity, p } from "@mikro-orm/core";
import { User } from "./user.entity.ts";

/**
 * A producer's podcast: what its RSS feed says about it, and where the feed is. Episodes belong
 * to at most one show (`episodes.show_id`).
 */
export const ShowSchema = defineEntity({
  name: "Show",
  tableName: "shows",
  properties: {
    id: p.uuid().primary(),
    user: () => p.manyToOne(User).deleteRule("cascade"),
    title: p.string().length(255),
    description: p.text(),
    author: p.string().length(255),
    ownerName: p.string().length(255),
    ownerEmail: p.string().length(320),
    /** ISO 639 language, optionally with a region: `en`, `en-us`. */
    language: p.string().length(16),
    /** Apple's category and optional subcategory (src/domain/apple-categories.ts). */
    category: p.string().length(64),
    subcategory: p.string().length(64).nullable(),
    explicit: p.boolean().default(false),
    /**
     * The cover art (JPEG or PNG, 1400–3000 px square), checked when set: a URL elsewhere, or
     * Podflow's own `/covers/` URL of an uploaded one. Apple requires it; null until given.
     */
    imageUrl: p.text().nullable(),
    link: p.text().nullable(),
    /** `podcast:locked`: other hosts may not import the feed (unlock it to move elsewhere). */
    locked: p.boolean().default(true),
    /** Moving away: `itunes:new-feed-url`, which tells apps to follow the podcast there. */
    newFeedUrl: p.text().nullable(),
    /**
     * The feed's path: the slug (a public show) or an unguessable token (a private one). Fixed at
     * creation, so the feed URL podcast apps subscribed to never changes.
     */
    feedKey: p.string().length(64).unique(),
    isPrivate: p.boolean().default(false),
    /** `podcast:guid`: UUIDv5 of the feed URL at creation; never changes. */
    podcastGuid: p.uuid(),
    /**
     * Bumped by the database whenever the show or one of its episodes changes (triggers in the
     * shows migration): the feed's cache key and ETag, so a repeated request reads only this row.
     */
    feedVersion: p.integer().default(1),
    feedUpdatedAt: p.datetime().onCreate(() => new Date()),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  indexes: [{ properties: ["user", "createdAt", "id"] }],
});

export class Show extends ShowSchema.class {}
ShowSchema.setClass(Show);
