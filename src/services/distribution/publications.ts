import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { PgBoss } from "pg-boss";
import type { Logger } from "pino";
import type { Config } from "../../config.ts";
import {
  type Destination,
  type PublicationStatus,
  SERVICE_NAMES,
  SETTLED_PUBLICATION_STATUSES,
  serviceOf,
} from "../../domain/publications.ts";
import type { Episode } from "../../entities/episode.entity.ts";
import {
  type Publication,
  Publication as PublicationEntity,
} from "../../entities/publication.entity.ts";
import type { PublishingConnection } from "../../entities/publishing-connection.entity.ts";
import type { User } from "../../entities/user.entity.ts";
import type { QueueName } from "../../jobs/queues.ts";
import { engineFor, type MediaEngines, type OutputFile } from "../engines/engine.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { enqueue } from "../job-queue.ts";
import { OutputError } from "../outputs.ts";
import { findConnection, resealIfStale } from "./connections.ts";
import type { Distribution } from "./index.ts";

/**
 * Publications: one episode at one destination. publishEpisode asks for them, and each outside
 * destination's job (transistor-publisher.ts, youtube-publisher.ts) moves its publication on,
 * recording each step before the next, so a rerun of the job — a retry, a worker that died —
 * continues where the last one stopped and never makes a second remote episode or video.
 */

export interface PublicationDeps {
  orm: { em: { fork(): EntityManager } };
  boss: PgBoss;
  logger: Logger;
  config: Config;
  engines: MediaEngines;
  distribution: Distribution;
}

const QUEUE_OF: Record<Exclude<Destination, "FEED">, QueueName & `publish-to-${string}`> = {
  TRANSISTOR: "publish-to-transistor",
  YOUTUBE: "publish-to-youtube",
};

/** What the producer may choose for a YouTube video that goes public now. */
export type YouTubePrivacy = "public" | "unlisted" | "private";

/**
 * Checks that every outside destination asked for can be published to by this producer: a
 * working connection (and a Transistor show). Throws before anything is changed.
 */
export async function assertDestinationsReady(
  em: EntityManager,
  user: User,
  destinations: readonly Destination[],
): Promise<void> {
  for (const destination of destinations) {
    if (destination === "FEED") continue;
    const service = serviceOf(destination);
    const connection = await findConnection(em, user, service);
    const name = SERVICE_NAMES[service];
    if (!connection || connection.status === "PENDING") {
      throw new ConflictError(`${name} is not connected: connect it first`);
    }
    if (connection.status === "BROKEN") {
      throw new ConflictError(
        `${name}'s connection is broken (${connection.brokenReason ?? "the service refused it"}): connect it again`,
      );
    }
    if (destination === "TRANSISTOR" && !connection.transistorShowId) {
      throw new ConflictError(
        "Choose the Transistor show to publish to first (chooseTransistorShow)",
      );
    }
  }
}

/**
 * In publishEpisode's transaction: the publication of `episode` at each destination, started
 * (again) as a new run, with its job queued in the same transaction. What the destination
 * already has (the remote id, the uploaded bytes) is kept, so publishing again reschedules or
 * republishes the same remote episode rather than making another.
 */
export async function startPublications(
  tx: EntityManager,
  boss: PgBoss,
  episode: Episode,
  request: {
    destinations: readonly Destination[];
    publishAt: Date;
    feedPublished: boolean;
    youtubePrivacy: YouTubePrivacy;
  },
): Promise<void> {
  for (const destination of request.destinations) {
    const existing = await tx.findOne(PublicationEntity, { episode: episode.id, destination });
    const publication =
      existing ??
      tx.create(PublicationEntity, {
        id: crypto.randomUUID(),
        episode,
        user: episode.user,
        destination,
        run: 0,
      });
    publication.publishAt = request.publishAt;
    tx.persist(publication);
    if (destination === "FEED") {
      // The feed is Podflow's own: publishing there is the row update publishEpisode makes.
      newRun(publication, request.feedPublished ? "PUBLISHED" : "SCHEDULED");
      continue;
    }
    if (destination === "YOUTUBE") {
      publication.progress = { ...publication.progress, privacy: request.youtubePrivacy };
    }
    await queueRun(tx, boss, publication);
  }
}

/** A new run of the publication: its number, its status, and no reason left from before. */
function newRun(publication: Publication, status: PublicationStatus): void {
  publication.run += 1;
  publication.status = status;
  publication.failureReason = null;
  publication.waitingReason = null;
  publication.waitingUntil = null;
}

/**
 * Starts a new run of an outside destination's publication and queues its job in the same
 * transaction (one active job per publication: the singleton key).
 */
async function queueRun(tx: EntityManager, boss: PgBoss, publication: Publication): Promise<void> {
  const destination = publication.destination;
  if (destination === "FEED") throw new Error("the feed has no publication job");
  newRun(publication, "QUEUED");
  await tx.flush();
  await enqueue(
    boss,
    tx,
    QUEUE_OF[destination],
    { publicationId: publication.id, run: publication.run },
    { singletonKey: publication.id },
  );
}

/** The publications of these episodes, read fresh (the caller's EntityManager may hold older). */
export function publicationsOf(
  em: EntityManager,
  episodeIds: readonly string[],
): Promise<Publication[]> {
  return em.find(
    PublicationEntity,
    { episode: { $in: [...episodeIds] } },
    { orderBy: { destination: "asc" }, refresh: true },
  );
}

/** The feed's publication follows the episode's `published` flag (unpublish, a due schedule). */
export async function syncFeedPublication(tx: EntityManager, episode: Episode): Promise<void> {
  if (!episode.published && !episode.publishAt) {
    await tx.nativeDelete(PublicationEntity, { episode: episode.id, destination: "FEED" });
    return;
  }
  await tx.nativeUpdate(
    PublicationEntity,
    { episode: episode.id, destination: "FEED" },
    { status: episode.published ? "PUBLISHED" : "SCHEDULED", publishAt: episode.publishAt },
  );
}

/** Starts a FAILED publication over as a new run, from what the destination already has. */
export async function retryPublication(
  deps: { em: EntityManager; boss: PgBoss },
  user: User,
  publicationId: string,
): Promise<Publication> {
  return deps.em.transactional(async (tx) => {
    const publication = await tx.findOne(
      PublicationEntity,
      { id: publicationId, user: user.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (!publication) throw new NotFoundError("No such publication");
    if (publication.status !== "FAILED") {
      throw new ConflictError(
        `Only a failed publication can be retried; this one is ${publication.status.toLowerCase()}`,
      );
    }
    if (publication.destination === "FEED") {
      throw new ConflictError("The feed is published with publishEpisode");
    }
    await assertDestinationsReady(tx, user, [publication.destination]);
    await queueRun(tx, deps.boss, publication);
    return publication;
  });
}

/** The publication, its episode and its connection for one run of its job; null when stale. */
export interface PublicationRun {
  em: EntityManager;
  publication: Publication;
  episode: Episode;
  connection: PublishingConnection | null;
  run: number;
}

export async function loadRun(
  deps: PublicationDeps,
  payload: { publicationId: string; run: number },
): Promise<PublicationRun | null> {
  const em = deps.orm.em.fork();
  const publication = await em.findOne(
    PublicationEntity,
    { id: payload.publicationId },
    // The episode's lazy columns too: Transistor gets the transcript, YouTube the chapters and
    // the captions made from the timed transcript.
    {
      populate: [
        "episode",
        "episode.show",
        "episode.transcript",
        "episode.transcriptSegments",
        "episode.chapters",
      ],
    },
  );
  // A later run (a retry, publishing again) owns the publication now; an ended one is done.
  if (!publication || publication.run !== payload.run) return null;
  if (SETTLED_PUBLICATION_STATUSES.has(publication.status) || publication.destination === "FEED") {
    return null;
  }
  const connection = await findConnection(em, publication.user, serviceOf(publication.destination));
  if (connection?.secret) await resealIfStale(em, deps.distribution, connection);
  return {
    em,
    publication,
    episode: publication.episode,
    connection,
    run: payload.run,
  };
}

type Recordable = Partial<
  Pick<
    Publication,
    | "status"
    | "bytesSent"
    | "bytesTotal"
    | "remoteId"
    | "remoteUrl"
    | "failureReason"
    | "waitingReason"
    | "waitingUntil"
    | "progress"
  >
>;

/**
 * Records a step of the run, committed at once (and announced by the database), only while
 * the run is still the publication's: a stale job can never overwrite a newer run.
 */
export async function record(run: PublicationRun, fields: Recordable): Promise<void> {
  const changed = await run.em.nativeUpdate(
    PublicationEntity,
    { id: run.publication.id, run: run.run },
    fields,
  );
  if (changed === 0) throw new StaleRunError();
  Object.assign(run.publication, fields);
}

/** Another run took the publication over while this one worked: it stops quietly. */
export class StaleRunError extends Error {
  override name = "StaleRunError";
}

/** The destination refused for good: the publication is FAILED with this reason, no retry. */
export class PublicationRefused extends Error {
  override name = "PublicationRefused";
}

/** The destination asks to wait (YouTube's daily quota): the job comes back at `until`. */
export class PublicationWait extends Error {
  override name = "PublicationWait";
  readonly until: Date;
  constructor(message: string, until: Date) {
    super(message);
    this.until = until;
  }
}

/**
 * Runs one job of a destination with the common ending: done, refused (FAILED with the reason),
 * waiting (sent again for later, with the reason shown), stale (nothing), or an error that
 * pg-boss retries — shown on the publication meanwhile, so a producer sees why it waits.
 */
export async function runPublication(
  deps: PublicationDeps,
  payload: { publicationId: string; run: number },
  queue: QueueName,
  work: (run: PublicationRun) => Promise<void>,
): Promise<void> {
  const run = await loadRun(deps, payload);
  if (!run) {
    deps.logger.info(payload, `${queue}: nothing to do (a newer run, or ended)`);
    return;
  }
  const log = deps.logger.child({ publicationId: run.publication.id, queue });
  try {
    await work(run);
  } catch (error) {
    if (error instanceof StaleRunError) return;
    if (error instanceof PublicationRefused) {
      log.warn({ reason: error.message }, "publication failed");
      await record(run, { status: "FAILED", failureReason: error.message, waitingReason: null });
      return;
    }
    if (error instanceof PublicationWait) {
      log.info({ until: error.until, reason: error.message }, "publication waits");
      // The job that comes back is queued first: a publication never says it waits for a time
      // that no job is there to keep.
      await deps.boss.send(queue, payload, {
        startAfter: error.until,
        singletonKey: payload.publicationId,
      });
      await record(run, { waitingReason: error.message, waitingUntil: error.until });
      return;
    }
    await record(run, {
      waitingReason: `Retrying soon: ${(error as Error).message}`,
      waitingUntil: null,
    }).catch(() => undefined);
    throw error;
  }
}

/** A publication job's retries are spent: FAILED with the last error. */
export async function failPublication(
  deps: { orm: { em: { fork(): EntityManager } } },
  publicationId: string,
  run: number,
  reason: string,
): Promise<void> {
  await deps.orm.em
    .fork()
    .nativeUpdate(
      PublicationEntity,
      { id: publicationId, run, status: { $nin: [...SETTLED_PUBLICATION_STATUSES] } },
      { status: "FAILED", failureReason: reason, waitingReason: null, waitingUntil: null },
    );
}

/**
 * The episode's podcast MP3 or YouTube MP4, opened at its engine for uploading; an output that
 * is not there refuses the publication for good (retrying cannot make it appear).
 */
export async function openEpisodeOutput(
  deps: PublicationDeps,
  episode: Episode,
  which: "audio" | "video",
): Promise<OutputFile> {
  const output =
    which === "audio"
      ? { fileId: episode.audioFileId ?? null, url: episode.audioUrl ?? null, what: "podcast MP3" }
      : { fileId: episode.videoFileId ?? null, url: episode.videoUrl ?? null, what: "YouTube MP4" };
  if (!output.fileId && !output.url) {
    throw new PublicationRefused(`The episode has no ${output.what} to publish`);
  }
  try {
    return await engineFor(deps.engines, episode.engine).openOutput(output, output.what);
  } catch (error) {
    if (error instanceof OutputError) throw new PublicationRefused(error.message);
    throw error;
  }
}

/** The status a finished publication ends in: PUBLISHED, or SCHEDULED for a future time. */
export function endStatus(publishAt: Date | null | undefined): PublicationStatus {
  return publishAt && publishAt.getTime() > Date.now() ? "SCHEDULED" : "PUBLISHED";
}

/**
 * Calls `report` at most once per `everyMs`, one call at a time; values in between are dropped
 * (the caller records the final value itself once `flush` has resolved).
 */
export function throttled(everyMs: number, report: (value: number) => Promise<void>) {
  let last = 0;
  let pending: Promise<void> = Promise.resolve();
  return {
    update(value: number) {
      const now = Date.now();
      if (now - last < everyMs) return;
      last = now;
      pending = pending.then(() => report(value)).catch(() => undefined);
    },
    flush: () => pending,
  };
}
