import type { EntityManager } from "@mikro-orm/postgresql";
import type { PgBoss } from "pg-boss";
import type { Logger } from "pino";
import { z } from "zod";
import { EPISODE_TYPES, type EpisodeType } from "../domain/apple-categories.ts";
import { DESTINATIONS, type Destination } from "../domain/publications.ts";
import { Episode } from "../entities/episode.entity.ts";
import type { User } from "../entities/user.entity.ts";
import {
  assertDestinationsReady,
  startPublications,
  syncFeedPublication,
  type YouTubePrivacy,
} from "./distribution/publications.ts";
import { engineFor, type MediaEngines } from "./engines/engine.ts";
import { findEpisode } from "./episodes.ts";
import { ConflictError, NotFoundError, validateInput } from "./errors.ts";
import { enqueue } from "./job-queue.ts";
import { changeEpisode } from "./lifecycle.ts";
import { OutputError } from "./outputs.ts";
import { findShow } from "./shows.ts";

/**
 * Shows and publication, as column changes of `episodes` made through changeEpisode: the
 * database announces each to subscribers and bumps the show's feed version (triggers).
 */

/** Puts the episode in the show (null: in none). Another producer's show is not found. */
export async function setEpisodeShow(
  em: EntityManager,
  user: User,
  input: { episodeId: string; showId: string | null },
): Promise<Episode> {
  const show = input.showId == null ? null : await findShow(em, user, input.showId);
  if (input.showId != null && !show) throw new NotFoundError("No such show");
  const episode = await findEpisode(em, user, input.episodeId);
  if (!episode) throw new NotFoundError("No such episode");
  const changed = await changeEpisode(em, { id: episode.id, user: user.id }, (locked) => {
    locked.show = show;
    return locked;
  });
  if (!changed) throw new NotFoundError("No such episode");
  return changed;
}

export interface PublishInput {
  episodeId: string;
  /** Now when omitted; a past time publishes at once with that date. */
  publishAt?: Date | null;
  episodeNumber?: number | null;
  seasonNumber?: number | null;
  episodeType?: EpisodeType | null;
  /**
   * The item GUID at the first publication, for an episode moved from another host, whose
   * subscribers' apps know it by its old GUID; the episode's id otherwise. Fixed from then on.
   */
  guid?: string | null;
  /** Where to publish: the show's feed (the default), Transistor, YouTube. */
  destinations?: readonly Destination[] | null;
  /** The YouTube video's privacy once it is out; public by default. */
  youtubePrivacy?: YouTubePrivacy | null;
}

const positive = (what: string) =>
  z
    .number()
    .int(`must be a whole ${what}`)
    .positive("must be more than 0")
    .max(1_000_000, "is too large")
    .nullish();

const publishSchema = z.object({
  episodeId: z.string(),
  publishAt: z.date().nullish(),
  episodeNumber: positive("number"),
  seasonNumber: positive("number"),
  episodeType: z.enum(EPISODE_TYPES).nullish(),
  guid: z
    .string()
    .trim()
    .min(1, "must not be empty")
    .max(128, "must be at most 128 characters")
    .nullish(),
  destinations: z
    .array(z.enum(DESTINATIONS))
    .min(1, "must name at least one destination")
    .transform((list) => [...new Set(list)])
    .nullish(),
  youtubePrivacy: z.enum(["public", "unlisted", "private"]).nullish(),
});

export interface PublishDeps {
  em: EntityManager;
  boss: PgBoss;
  engines: MediaEngines;
  logger: Logger;
}

/**
 * Publishes a PROCESSED episode at `publishAt` to each destination asked for (the show's feed
 * by default). The feed: now, or — for a later time — by a publish-episode job queued with
 * `startAfter` in the same transaction; the item's GUID is fixed at the first publication.
 * Transistor and YouTube: a publication each, whose job is queued in the same transaction and
 * uploads at once (the services schedule the going-public themselves). Publishing again changes
 * the time and the numbers; a job for an earlier schedule or run then finds nothing to do.
 */
export async function publishEpisode(
  deps: PublishDeps,
  user: User,
  input: PublishInput,
): Promise<Episode> {
  const valid = validateInput(publishSchema, input);
  const destinations = valid.destinations ?? ["FEED"];
  const toFeed = destinations.includes("FEED");
  const found = await findEpisode(deps.em, user, valid.episodeId);
  if (!found) throw new NotFoundError("No such episode");
  assertPublishable(found, destinations);
  await assertDestinationsReady(deps.em, user, destinations);
  // Episodes processed before sizes were recorded are measured now (outside the row lock).
  const audio =
    !toFeed || found.audioBytes != null
      ? { bytes: found.audioBytes ?? null }
      : await measure(deps, found);

  const published = await changeEpisode(
    deps.em,
    { id: found.id, user: user.id },
    async (episode, tx) => {
      assertPublishable(episode, destinations);
      // A past time publishes at once under that date: a back catalogue keeps its dates.
      const now = new Date();
      const publishAt = valid.publishAt ?? now;
      if (valid.episodeNumber !== undefined) episode.episodeNumber = valid.episodeNumber;
      if (valid.seasonNumber !== undefined) episode.seasonNumber = valid.seasonNumber;
      if (valid.episodeType != null) episode.episodeType = valid.episodeType;
      await startPublications(tx, deps.boss, episode, {
        destinations,
        publishAt,
        feedPublished: publishAt <= now,
        youtubePrivacy: valid.youtubePrivacy ?? "public",
      });
      if (!toFeed) return episode;
      if (episode.audioBytes == null && audio.bytes != null) {
        episode.audioBytes = audio.bytes;
        if ("durationSeconds" in audio) episode.audioDurationSeconds = audio.durationSeconds;
      }
      if (valid.guid && episode.feedGuid && valid.guid !== episode.feedGuid) {
        throw new ConflictError(
          `The episode's GUID was fixed at its first publication (${episode.feedGuid}); it never changes`,
        );
      }
      if (!episode.feedGuid && valid.guid) await assertGuidFree(tx, episode, valid.guid);
      episode.feedGuid ??= valid.guid ?? episode.id;
      episode.publishAt = publishAt;
      episode.published = publishAt <= now;
      if (!episode.published) {
        await enqueue(
          deps.boss,
          tx,
          "publish-episode",
          { episodeId: episode.id, publishAt: publishAt.toISOString() },
          { startAfter: publishAt },
        );
      }
      return episode;
    },
  );
  if (!published) throw new NotFoundError("No such episode");
  return published;
}

/** Two items of one feed never share a GUID: apps would take them for one episode. */
async function assertGuidFree(tx: EntityManager, episode: Episode, guid: string): Promise<void> {
  const taken = await tx.count(Episode, {
    show: episode.show?.id,
    feedGuid: guid,
    id: { $ne: episode.id },
  });
  if (taken > 0) throw new ConflictError(`Another episode of this show has the GUID ${guid}`);
}

function assertPublishable(episode: Episode, destinations: readonly Destination[]): void {
  if (episode.status !== "PROCESSED") {
    throw new ConflictError(
      `Only a processed episode can be published; this one is ${episode.status.toLowerCase().replace("_", " ")}`,
    );
  }
  if (destinations.includes("FEED") && !episode.show) {
    throw new ConflictError("The episode belongs to no show: put it in one with setEpisodeShow");
  }
  const audio = destinations.includes("FEED") || destinations.includes("TRANSISTOR");
  if (audio && !episode.audioUrl) {
    throw new ConflictError("The episode has no podcast MP3 to publish");
  }
  if (destinations.includes("YOUTUBE") && !episode.videoUrl) {
    throw new ConflictError("The episode has no YouTube MP4 to publish");
  }
}

async function measure(deps: PublishDeps, episode: Episode) {
  try {
    return await engineFor(deps.engines, episode.engine).measureAudio({
      fileId: episode.audioFileId ?? null,
      url: episode.audioUrl ?? null,
    });
  } catch (error) {
    deps.logger.warn({ episodeId: episode.id, err: error }, "the MP3 could not be measured");
    const reason = error instanceof OutputError ? error.message : "its server did not answer";
    throw new ConflictError(
      `The feed needs the MP3's exact size, and it could not be measured (${reason}); try again later`,
    );
  }
}

/** Takes the episode out of its show's feed (a pending schedule included); the GUID stays. */
export async function unpublishEpisode(
  em: EntityManager,
  user: User,
  episodeId: string,
): Promise<Episode> {
  const episode = await findEpisode(em, user, episodeId);
  if (!episode) throw new NotFoundError("No such episode");
  const changed = await changeEpisode(em, { id: episode.id, user: user.id }, async (locked, tx) => {
    locked.published = false;
    locked.publishAt = null;
    await syncFeedPublication(tx, locked);
    return locked;
  });
  if (!changed) throw new NotFoundError("No such episode");
  return changed;
}

/**
 * The publish-episode job, at its time: publishes the episode if this is still its schedule.
 * Safe to run again (at-least-once): a published episode or another schedule is left alone.
 */
export async function publishWhenDue(
  deps: { orm: { em: { fork(): EntityManager } }; logger: Logger },
  payload: { episodeId: string; publishAt: string },
): Promise<void> {
  const due = new Date(payload.publishAt).getTime();
  const published = await changeEpisode(
    deps.orm.em.fork(),
    { id: payload.episodeId },
    async (ep, tx) => {
      if (
        ep.published ||
        ep.publishAt?.getTime() !== due ||
        ep.status !== "PROCESSED" ||
        !ep.show
      ) {
        return false;
      }
      ep.published = true;
      await syncFeedPublication(tx, ep);
      return true;
    },
  );
  deps.logger.info(
    { episodeId: payload.episodeId, published: published === true },
    published ? "scheduled episode published" : "publish-episode: nothing to do",
  );
}
