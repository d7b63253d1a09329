import { defineEntity, p } from "@mikro-orm/core";
import { EPISODE_TYPES } from "../domain/apple-categories.ts";
import { ENGINE_KINDS } from "../domain/engines.ts";
import { EPISODE_STATUSES } from "../domain/episode-lifecycle.ts";
import { Show } from "./show.entity.ts";
import { User } from "./user.entity.ts";

/** One timed piece of a transcript, in seconds from the start of the episode. */
export interface TranscriptSegment {
  start: number;
  end: number;
  text: string;
  speaker?: string | null;
}

/** A chapter marker, in seconds from the start of the episode. */
export interface Chapter {
  start: number;
  end: number | null;
  title: string;
}

/** An episode a producer uploaded, and everything Podflow made of it. */
export const EpisodeSchema = defineEntity({
  name: "Episode",
  tableName: "episodes",
  properties: {
    id: p.uuid().primary(),
    user: () => p.manyToOne(User).deleteRule("cascade"),
    title: p.string().length(200),
    description: p.text().nullable(),
    originalFilename: p.string().length(255).nullable(),
    /** Bytes; bigint in the database, exact as a JS number up to 2^53. */
    fileSize: p.bigint("number").nullable(),
    /** Changed only through src/services/lifecycle.ts, by the moves of the episode lifecycle. */
    status: p.enum(EPISODE_STATUSES).default("AWAITING_UPLOAD"),
    failureReason: p.text().nullable(),
    /**
     * The media engine this episode is processed with, fixed when it is created: changing the
     * setting never moves an episode already under way to another engine.
     */
    engine: p.enum(ENGINE_KINDS),
    /** Ittybit only: the folder its upload was signed for. */
    ittybitFolder: p.string().length(255).nullable(),
    /** The uploaded file's id at the episode's engine, once confirmed. */
    fileId: p.string().length(64).nullable(),
    ittybitMediaId: p.string().length(64).nullable(),
    audioFileId: p.string().length(64).nullable(),
    audioUrl: p.text().nullable(),
    videoFileId: p.string().length(64).nullable(),
    videoUrl: p.text().nullable(),
    /**
     * The three big columns are lazy: a query loads them only when asked (`populate`), so a list
     * of episodes carries none of them. Unloaded, they read `undefined` (loaded and empty: null);
     * GraphQL reads them through the context's `episodeOutputs` loader, exports with `populate`.
     */
    transcript: p.text().nullable().lazy(),
    transcriptSegments: p.json<TranscriptSegment[]>().nullable().lazy(),
    chapters: p.json<Chapter[]>().nullable().lazy(),
    /**
     * 1 for the first processing; each `retryEpisode` adds one. Tasks record the round that
     * created them, so only an explicit retry starts a failed task over.
     */
    processingRound: p.integer().default(1),
    /** The last round for which complete-episode was queued: it is queued once per round. */
    completionQueuedRound: p.integer().default(0),
    /** Bytes of the podcast MP3 (the feed's enclosure length), measured when processing ends. */
    audioBytes: p.bigint("number").nullable(),
    /** Seconds of the podcast MP3, when the engine tells. */
    audioDurationSeconds: p.double().nullable(),
    /** The show whose feed the episode belongs to; changed with setEpisodeShow. */
    show: () => p.manyToOne(Show).nullable().deleteRule("set null"),
    /** When the episode is (to be) in its show's feed: its `pubDate`. Null when not published. */
    publishAt: p.datetime().nullable(),
    /**
     * True while the episode is in its show's feed: set by publishEpisode (now) or by the
     * publish-episode job at `publishAt`, cleared by unpublishEpisode.
     */
    published: p.boolean().default(false),
    /** The feed item's `<guid>`, fixed at the first publication and never changed. */
    feedGuid: p.string().length(128).nullable(),
    episodeNumber: p.integer().nullable(),
    seasonNumber: p.integer().nullable(),
    episodeType: p.enum(EPISODE_TYPES).default("full"),
    processingStartedAt: p.datetime().nullable(),
    processingCompletedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  indexes: [
    // The episodes connection: a user's episodes, newest first, optionally by status.
    { properties: ["user", "createdAt", "id"] },
    { properties: ["user", "status", "createdAt", "id"] },
    // A show's feed: its published episodes, newest first.
    { properties: ["show", "published", "publishAt"] },
  ],
});

export class Episode extends EpisodeSchema.class {}
EpisodeSchema.setClass(Episode);
