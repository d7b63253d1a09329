import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { OutputFile } from "../engines/engine.ts";
import { markBroken, transistorKey } from "./connections.ts";
import {
  endStatus,
  openEpisodeOutput,
  type PublicationDeps,
  PublicationRefused,
  type PublicationRun,
  record,
  runPublication,
  throttled,
} from "./publications.ts";
import {
  type TransistorClient,
  type TransistorEpisode,
  TransistorError,
  transistorPublishedAt,
} from "./transistor-client.ts";

/** Looks at Transistor's audio processing this many times per run before the job retries. */
const PROCESSING_POLLS = 24;
/** A run died between creating the remote episode and saving its id: look for it this far back. */
const ADOPT_WINDOW_MS = 10 * 60 * 1000;

/**
 * publish-to-transistor: MP3 → Transistor → published or scheduled. Steps, each recorded before
 * the next: the audio's URL at Transistor (uploaded through authorize_upload, or Ittybit's public
 * URL passed as it is), the remote episode's id (a marker is recorded just before creating it,
 * so a run that died in between adopts the draft it made instead of making another), the end of
 * Transistor's audio processing, and the publish call (idempotent: it sets a status).
 */
export function publishToTransistor(
  deps: PublicationDeps,
  payload: { publicationId: string; run: number },
  signal?: AbortSignal,
): Promise<void> {
  return runPublication(deps, payload, "publish-to-transistor", async (run) => {
    const { connection } = run;
    const client = deps.distribution.transistor;
    if (connection?.status !== "CONNECTED" || !connection.transistorShowId) {
      throw new PublicationRefused(
        connection?.brokenReason ?? "Transistor is not connected (or no show is chosen)",
      );
    }
    const apiKey = transistorKey(deps.distribution, connection);
    const showId = connection.transistorShowId;
    try {
      let remote: TransistorEpisode | null = null;
      if (!run.publication.remoteId) {
        const audioUrl =
          run.publication.progress.audioUrl ??
          (await uploadAudio(deps, run, client, apiKey, signal));
        remote = await adoptOrCreate(run, client, apiKey, showId, audioUrl);
      }
      const remoteId = run.publication.remoteId as string;
      await record(run, { status: "PROCESSING", waitingReason: null });
      remote = await waitForAudio(deps, client, apiKey, remoteId, remote, signal);
      const publishAt = run.publication.publishAt;
      const status = endStatus(publishAt);
      const published = await client.publishEpisode(apiKey, remoteId, {
        status: status === "SCHEDULED" ? "scheduled" : "published",
        ...(status === "SCHEDULED" && publishAt
          ? {
              publishedAt: transistorPublishedAt(
                publishAt,
                connection.transistorShowTimeZone ?? null,
              ),
            }
          : {}),
      });
      await record(run, {
        status,
        remoteUrl: published.shareUrl ?? remote?.shareUrl ?? null,
        waitingReason: null,
        waitingUntil: null,
      });
      deps.logger.info(
        { publicationId: run.publication.id, remoteId, status },
        "episode published to Transistor",
      );
    } catch (error) {
      if (!(error instanceof TransistorError)) throw error;
      if (error.status === 401 || error.status === 403) {
        const reason = `Transistor refused the stored API key (HTTP ${error.status}): connect Transistor again`;
        await markBroken(run.em, connection, reason);
        throw new PublicationRefused(reason);
      }
      if (error.status === 404 && run.publication.remoteId) {
        // The remote episode was deleted at Transistor: a retry makes a new one.
        await record(run, {
          remoteId: null,
          remoteUrl: null,
          progress: { ...run.publication.progress, creatingSince: undefined },
        });
        throw new PublicationRefused(
          "The episode was deleted at Transistor: retry to publish it again",
        );
      }
      if (!error.retryable)
        throw new PublicationRefused(`Transistor refused the episode: ${error.message}`);
      throw error;
    }
  });
}

/**
 * The MP3's URL for Transistor: Ittybit's public URL as it is, or — for the local engine, whose
 * files are Podflow's own — uploaded to Transistor's signed upload URL, with progress recorded.
 */
async function uploadAudio(
  deps: PublicationDeps,
  run: PublicationRun,
  client: TransistorClient,
  apiKey: string,
  signal?: AbortSignal,
): Promise<string> {
  const { episode } = run;
  if (episode.engine === "ittybit" && episode.audioUrl) {
    await record(run, { progress: { ...run.publication.progress, audioUrl: episode.audioUrl } });
    return episode.audioUrl;
  }
  const file = await openEpisodeOutput(deps, episode, "audio");
  await record(run, { status: "UPLOADING", bytesSent: 0, bytesTotal: file.bytes });
  const target = await client.authorizeUpload(apiKey, `${episode.id}.mp3`);
  const progress = throttled(1_000, (sent) => record(run, { bytesSent: sent }));
  await client.uploadAudio(
    target,
    () => streamOf(file, signal),
    file.bytes,
    (sent) => progress.update(sent),
    signal,
  );
  await progress.flush();
  await record(run, {
    bytesSent: file.bytes,
    progress: { ...run.publication.progress, audioUrl: target.audioUrl },
  });
  return target.audioUrl;
}

/** The file as a stream of 1 MiB pieces, read as it is consumed. */
function streamOf(file: OutputFile, signal?: AbortSignal): NodeJS.ReadableStream {
  const piece = 1024 * 1024;
  return Readable.from(
    (async function* () {
      for (let start = 0; start < file.bytes; start += piece) {
        signal?.throwIfAborted();
        yield await file.read(start, piece, signal);
      }
    })(),
  );
}

async function adoptOrCreate(
  run: PublicationRun,
  client: TransistorClient,
  apiKey: string,
  showId: string,
  audioUrl: string,
): Promise<TransistorEpisode> {
  const { episode, publication } = run;
  const title = episode.title;
  const marker = publication.progress.creatingSince;
  if (marker) {
    // A run died after asking Transistor to create the episode and before saving its id: the
    // episode it made (a draft, or published by a run that got further) is adopted, never made
    // twice.
    const since = new Date(marker).getTime() - ADOPT_WINDOW_MS;
    const found = await client.findEpisodes(apiKey, { showId, query: title });
    const made = found.find(
      (draft) =>
        draft.title === title && (!draft.createdAt || new Date(draft.createdAt).getTime() >= since),
    );
    if (made) {
      await record(run, { remoteId: made.id, remoteUrl: made.shareUrl });
      return made;
    }
  }
  await record(run, {
    progress: { ...publication.progress, creatingSince: new Date().toISOString() },
  });
  const created = await client.createEpisode(apiKey, {
    showId,
    title,
    summary: summaryOf(episode.description),
    description: episode.description ?? undefined,
    audioUrl,
    transcriptText: episode.transcript ?? undefined,
    season: episode.seasonNumber ?? null,
    number: episode.episodeNumber ?? null,
    type: episode.episodeType,
  });
  await record(run, { remoteId: created.id, remoteUrl: created.shareUrl });
  return created;
}

/** Transistor's summary is a short plain text: the notes' first paragraph, at most 250 chars. */
function summaryOf(description: string | null | undefined): string | undefined {
  const first = description
    ?.split(/\n\s*\n/)[0]
    ?.replace(/\s+/g, " ")
    .trim();
  if (!first) return undefined;
  return first.length <= 250 ? first : `${first.slice(0, 249).trimEnd()}…`;
}

/** Waits (within the rate limit) until Transistor has processed the audio. */
async function waitForAudio(
  deps: PublicationDeps,
  client: TransistorClient,
  apiKey: string,
  remoteId: string,
  known: TransistorEpisode | null,
  signal?: AbortSignal,
): Promise<TransistorEpisode> {
  let remote = known ?? (await client.getEpisode(apiKey, remoteId));
  for (let poll = 0; remote.audioProcessing; poll++) {
    if (poll >= PROCESSING_POLLS) {
      throw new Error("Transistor is still processing the audio");
    }
    await sleep(deps.distribution.transistorPollMs, undefined, { signal });
    remote = await client.getEpisode(apiKey, remoteId);
  }
  return remote;
}
