import type { Episode } from "../../entities/episode.entity.ts";
import { toSrt } from "../exports/captions.ts";
import { ConnectionBrokenError, youtubeAccessToken } from "./connections.ts";
import {
  endStatus,
  openEpisodeOutput,
  type PublicationDeps,
  PublicationRefused,
  type PublicationRun,
  PublicationWait,
  record,
  runPublication,
} from "./publications.ts";
import {
  type UploadState,
  type YouTubeClient,
  YouTubeError,
  YouTubeSessionExpiredError,
  type YouTubeVideoMetadata,
} from "./youtube-client.ts";
import { nextPacificMidnight, youtubeDescription, youtubeTitle } from "./youtube-metadata.ts";

const MP4 = "video/mp4";

/**
 * publish-to-youtube: MP4 → YouTube with title, description (show notes and chapters), privacy
 * or a scheduled publishAt, then a caption track from the transcript. The resumable upload's
 * session URI is recorded before the first byte is sent; every run asks YouTube which bytes it
 * holds and continues from there, so a worker killed mid-upload never re-sends what YouTube
 * has, and the same job run twice makes one video. YouTube's daily quota makes the job wait
 * for midnight Pacific time, said on the publication; other refusals fail it with the reason.
 */
export function publishToYouTube(
  deps: PublicationDeps,
  payload: { publicationId: string; run: number },
  signal?: AbortSignal,
): Promise<void> {
  return runPublication(deps, payload, "publish-to-youtube", async (run) => {
    const { connection } = run;
    if (connection?.status !== "CONNECTED") {
      throw new PublicationRefused(connection?.brokenReason ?? "YouTube is not connected");
    }
    let token: string;
    try {
      token = await youtubeAccessToken({ ...deps, em: run.em }, connection);
    } catch (error) {
      if (error instanceof ConnectionBrokenError) throw new PublicationRefused(error.message);
      throw error;
    }
    const refresh = async () => {
      token = await youtubeAccessToken({ ...deps, em: run.em }, connection, { force: true });
      return token;
    };
    const client = deps.distribution.youtube;
    try {
      if (!run.publication.remoteId) {
        await upload(deps, run, client, () => token, refresh, signal);
      }
      await addCaptions(run, client, () => token, refresh);
      await record(run, {
        status: endStatus(run.publication.publishAt),
        waitingReason: null,
        waitingUntil: null,
      });
      deps.logger.info(
        { publicationId: run.publication.id, videoId: run.publication.remoteId },
        "episode published to YouTube",
      );
    } catch (error) {
      throw classify(error);
    }
  });
}

/** A YouTube error as the run's ending: wait for the quota, refuse for good, or retry. */
function classify(error: unknown): unknown {
  if (error instanceof ConnectionBrokenError) return new PublicationRefused(error.message);
  if (!(error instanceof YouTubeError)) return error;
  if (error.kind === "quota") {
    const until = nextPacificMidnight(new Date());
    return new PublicationWait(
      `YouTube's daily quota for this project is spent; the upload continues after it resets at midnight Pacific time (${until.toISOString()})`,
      until,
    );
  }
  if (error.kind === "fatal") {
    return new PublicationRefused(`YouTube refused the video: ${error.message}`);
  }
  return error;
}

/** Calls YouTube, refreshing the access token once when it answers 401. */
async function withToken<T>(
  token: () => string,
  refresh: () => Promise<string>,
  call: (token: string) => Promise<T>,
): Promise<T> {
  try {
    return await call(token());
  } catch (error) {
    if (!(error instanceof YouTubeError) || error.kind !== "auth") throw error;
    return call(await refresh());
  }
}

async function upload(
  deps: PublicationDeps,
  run: PublicationRun,
  client: YouTubeClient,
  token: () => string,
  refresh: () => Promise<string>,
  signal?: AbortSignal,
): Promise<void> {
  const file = await openEpisodeOutput(deps, run.episode, "video");
  const total = file.bytes;
  let state = await resumeOrStart(run, client, token, refresh, total);
  const sessionUri = run.publication.progress.sessionUri as string;
  if (run.publication.status !== "UPLOADING") {
    await record(run, { status: "UPLOADING", bytesTotal: total });
  }
  while (!state.done) {
    signal?.throwIfAborted();
    const start: number = state.offset;
    await record(run, { bytesSent: start });
    const length = Math.min(deps.distribution.chunkBytes, total - start);
    const chunk = await file.read(start, length, signal);
    state = await withToken(token, refresh, (t) =>
      client.uploadChunk(t, sessionUri, { start, chunk, total, contentType: MP4, signal }),
    );
  }
  await record(run, {
    status: "PROCESSING",
    bytesSent: total,
    remoteId: state.videoId,
    remoteUrl: `https://www.youtube.com/watch?v=${state.videoId}`,
  });
}

/**
 * Where the upload stands: the recorded session's state as YouTube reports it (done, or the next
 * byte it wants), or a new session — recorded before any byte is sent, so a rerun continues it
 * and never starts a second video. An expired session starts over from byte 0.
 */
async function resumeOrStart(
  run: PublicationRun,
  client: YouTubeClient,
  token: () => string,
  refresh: () => Promise<string>,
  total: number,
): Promise<UploadState> {
  const recorded = run.publication.progress.sessionUri;
  if (recorded) {
    try {
      return await withToken(token, refresh, (t) => client.queryUpload(t, recorded, total));
    } catch (error) {
      if (!(error instanceof YouTubeSessionExpiredError)) throw error;
    }
  }
  const metadata = videoMetadata(run.episode, run);
  const sessionUri = await withToken(token, refresh, (t) =>
    client.startUpload(t, { metadata, bytes: total, contentType: MP4 }),
  );
  await record(run, {
    status: "UPLOADING",
    bytesSent: 0,
    bytesTotal: total,
    progress: { ...run.publication.progress, sessionUri },
  });
  return { done: false, offset: 0 };
}

/** What YouTube is told about the video, within its limits (youtube-metadata.ts). */
function videoMetadata(episode: Episode, run: PublicationRun): YouTubeVideoMetadata {
  const publishAt = run.publication.publishAt;
  const scheduled = publishAt && publishAt.getTime() > Date.now();
  const duration =
    Number(episode.audioDurationSeconds ?? 0) ||
    (episode.chapters ?? []).reduce(
      (end, chapter) => Math.max(end, chapter.end ?? chapter.start),
      0,
    );
  return {
    title: youtubeTitle(episode.title),
    description: youtubeDescription({
      notes: episode.description ?? "",
      chapters: (episode.chapters ?? []).map((c) => ({ startSeconds: c.start, title: c.title })),
      durationSeconds: duration,
    }),
    // A scheduled video stays private until YouTube publishes it at publishAt.
    privacyStatus: scheduled ? "private" : (run.publication.progress.privacy ?? "public"),
    ...(scheduled ? { publishAt: publishAt.toISOString() } : {}),
    madeForKids: false,
  };
}

/** The show's language as BCP-47 (`en-us` → `en-US`); English for an episode in no show. */
function captionLanguage(episode: Episode): string {
  const [language = "en", region] = (episode.show?.language ?? "en").split("-");
  return region ? `${language.toLowerCase()}-${region.toUpperCase()}` : language.toLowerCase();
}

/** The transcript as an SRT caption track; a track already there (a rerun) counts as done. */
async function addCaptions(
  run: PublicationRun,
  client: YouTubeClient,
  token: () => string,
  refresh: () => Promise<string>,
): Promise<void> {
  const { progress, remoteId } = run.publication;
  if (progress.captionId || progress.captionsSkipped || !remoteId) return;
  const segments = run.episode.transcriptSegments ?? [];
  if (segments.length === 0) {
    await record(run, {
      progress: { ...progress, captionsSkipped: "the episode has no timed transcript" },
    });
    return;
  }
  try {
    const caption = await withToken(token, refresh, (t) =>
      client.insertCaption(t, {
        videoId: remoteId,
        language: captionLanguage(run.episode),
        name: "Transcript",
        body: toSrt(segments),
        contentType: "application/octet-stream",
      }),
    );
    await record(run, { progress: { ...run.publication.progress, captionId: caption.id } });
  } catch (error) {
    if (error instanceof YouTubeError && error.reason === "captionExists") {
      await record(run, { progress: { ...run.publication.progress, captionId: "existing" } });
      return;
    }
    // The video is up: a caption YouTube refuses for good is said, not a failed publication.
    if (error instanceof YouTubeError && error.kind === "fatal") {
      await record(run, {
        progress: {
          ...run.publication.progress,
          captionsSkipped: `YouTube refused the captions: ${error.message}`,
        },
      });
      return;
    }
    throw error;
  }
}
