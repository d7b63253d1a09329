import { createReadStream } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { MultiBar, Presets, SingleBar } from "cli-progress";
import { Upload } from "tus-js-client";
import { ApiError, type PodflowApi } from "./api.ts";

// The commands that use Podflow's public API as a producer would: upload, episodes, watch,
// retry. Progress goes to standard error (bars on a terminal, plain lines otherwise); answers
// (ids, output URLs, tables) to standard output.

/** What a command ends with: 0 done (PROCESSED), 1 failed (FAILED or refused). */
export type ExitCode = 0 | 1;

export interface Output {
  /** Standard output: the command's answer. */
  out(line: string): void;
  /** Standard error: progress and reasons. */
  err(line: string): void;
  /** Whether bars can be drawn (standard error is a terminal). */
  tty: boolean;
}

const ERROR_FIELDS = "... on Error { __typename message }";

const EPISODE_FIELDS = `id title status progress failureReason
  tasks { type status progress error outputUrl }
  outputs { audioUrl videoUrl transcriptAvailable }`;

interface WatchedEpisode {
  id: string;
  title: string;
  status: string;
  progress: number;
  failureReason: string | null;
  tasks: Array<{
    type: string;
    status: string;
    progress: number | null;
    error: string | null;
    outputUrl: string | null;
  }>;
  outputs: { audioUrl: string | null; videoUrl: string | null; transcriptAvailable: boolean };
}

type Result<T> = T | { __typename: string; message: string };

function refused<T extends object>(result: Result<T>): string | null {
  return "message" in result && "__typename" in result && typeof result.message === "string"
    ? `${result.__typename}: ${result.message}`
    : null;
}

// --- upload -------------------------------------------------------------------------------

export interface UploadOptions {
  title: string;
  description?: string;
  show?: string;
  watch?: boolean;
  /** Where unfinished uploads are remembered, so the same command resumes them. */
  stateDir?: string;
  /** Podflow's base URL: part of what identifies an unfinished upload. */
  url: string;
}

interface UnfinishedUpload {
  episodeId: string;
  /** The tus upload's own URL, once created. */
  uploadUrl?: string;
}

interface UploadTarget {
  url: string;
  method: string;
  tusUrl: string | null;
}

/**
 * prepareUpload → the bytes to the upload URL (tus when offered: resumable; else one PUT) →
 * confirmUpload, then optionally watch. An interrupted tus upload is remembered by file (path,
 * size, modification time) and server, and the same command line resumes it into the same
 * episode.
 */
export async function uploadCommand(
  api: PodflowApi,
  file: string,
  options: UploadOptions,
  output: Output,
  signal: AbortSignal,
): Promise<ExitCode> {
  const absolute = path.resolve(file);
  const info = await stat(absolute).catch(() => null);
  if (!info?.isFile()) throw new UsageProblem(`${file} is not a readable file`);
  const state = new UploadState(
    options.stateDir ?? path.join(homedir(), ".podflow"),
    `${options.url}|${absolute}|${info.size}|${info.mtimeMs}`,
  );

  let unfinished = await state.read();
  if (unfinished && !(await stillAwaitingUpload(api, unfinished.episodeId))) {
    unfinished = null;
    await state.clear();
  }
  let episodeId: string;
  let target: UploadTarget | null = null;
  if (unfinished) {
    episodeId = unfinished.episodeId;
    output.err(`Resuming the upload of episode ${episodeId}.`);
  } else {
    const prepared = await api.request<{
      prepareUpload: Result<{ episode: { id: string }; upload: UploadTarget }>;
    }>(
      `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
        ... on PrepareUploadPayload { episode { id } upload { url method tusUrl } } ${ERROR_FIELDS} } }`,
      {
        input: {
          title: options.title,
          description: options.description,
          filename: path.basename(absolute),
          filesize: info.size,
          ...(options.show ? { showId: options.show } : {}),
        },
      },
    );
    const reason = refused(prepared.prepareUpload);
    if (reason) {
      output.err(`podflow: the upload was refused: ${reason}`);
      return 1;
    }
    const payload = prepared.prepareUpload as { episode: { id: string }; upload: UploadTarget };
    episodeId = payload.episode.id;
    target = payload.upload;
    output.err(`Episode ${episodeId} created.`);
  }

  const progress = transferProgress(output, info.size);
  let fileId: string;
  try {
    if (unfinished?.uploadUrl || target?.tusUrl) {
      fileId = await tusUpload(absolute, {
        endpoint: target?.tusUrl ?? undefined,
        uploadUrl: unfinished?.uploadUrl,
        onUrl: (uploadUrl) => state.write({ episodeId, uploadUrl }),
        onProgress: progress.update,
        signal,
      });
    } else if (target) {
      await state.clear();
      fileId = await putUpload(absolute, info.size, target, progress.update, signal);
    } else {
      throw new ApiError("the unfinished upload can no longer be resumed; start it again");
    }
  } catch (error) {
    progress.stop();
    if (signal.aborted) {
      output.err("Upload interrupted. Run the same command again to resume it where it stopped.");
      return 1;
    }
    throw error;
  }
  progress.stop();

  const confirmed = await api.request<{ confirmUpload: Result<{ episode: { status: string } }> }>(
    `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) {
      ... on ConfirmUploadPayload { episode { status } } ${ERROR_FIELDS} } }`,
    { input: { episodeId, fileId } },
  );
  await state.clear();
  const reason = refused(confirmed.confirmUpload);
  if (reason) {
    output.err(`podflow: the upload was not accepted: ${reason}`);
    return 1;
  }
  output.out(episodeId);
  output.err(`Uploaded; processing is queued. Follow it with: podflow watch ${episodeId}`);
  return options.watch ? watchCommand(api, episodeId, output) : 0;
}

/** A problem with what the user typed (exit 2), found only once the command runs. */
export class UsageProblem extends Error {
  override name = "UsageProblem";
}

async function stillAwaitingUpload(api: PodflowApi, episodeId: string): Promise<boolean> {
  const found = await api.request<{ episode: { status: string } | null }>(
    "query($id: ID!) { episode(id: $id) { status } }",
    { id: episodeId },
  );
  return found.episode?.status === "AWAITING_UPLOAD";
}

/** Unfinished uploads, one small JSON file per user, keyed by file and server. */
class UploadState {
  readonly #file: string;
  readonly #key: string;
  constructor(directory: string, key: string) {
    this.#file = path.join(directory, "uploads.json");
    this.#key = key;
  }
  async #all(): Promise<Record<string, UnfinishedUpload>> {
    try {
      return JSON.parse(await readFile(this.#file, "utf8")) as Record<string, UnfinishedUpload>;
    } catch {
      return {};
    }
  }
  async read(): Promise<UnfinishedUpload | null> {
    return (await this.#all())[this.#key] ?? null;
  }
  async write(entry: UnfinishedUpload): Promise<void> {
    const all = await this.#all();
    all[this.#key] = entry;
    await mkdir(path.dirname(this.#file), { recursive: true });
    await writeFile(this.#file, JSON.stringify(all, null, 2), { mode: 0o600 });
  }
  async clear(): Promise<void> {
    const all = await this.#all();
    if (!(this.#key in all)) return;
    delete all[this.#key];
    await writeFile(this.#file, JSON.stringify(all, null, 2), { mode: 0o600 });
  }
}

function tusUpload(
  file: string,
  options: {
    endpoint: string | undefined;
    uploadUrl: string | undefined;
    onUrl: (url: string) => Promise<void>;
    onProgress: (sent: number) => void;
    signal: AbortSignal;
  },
): Promise<string> {
  return new Promise((resolve, reject) => {
    let saving: Promise<void> = Promise.resolve();
    const upload = new Upload(createReadStream(file), {
      endpoint: options.endpoint,
      uploadUrl: options.uploadUrl,
      // A dropped connection is resumed from the server's offset, a few times.
      retryDelays: [0, 1_000, 3_000, 5_000, 10_000],
      // Resumption is the command's own (by file and server), not tus-js-client's storage.
      storeFingerprintForResuming: false,
      removeFingerprintOnSuccess: false,
      onUploadUrlAvailable: () => {
        if (upload.url) saving = options.onUrl(upload.url);
      },
      onProgress: (sent) => options.onProgress(sent),
      onError: reject,
      onSuccess: () => {
        // The file id is the last path segment of the upload's own URL.
        const id = new URL(upload.url ?? "").pathname.split("/").pop() ?? "";
        saving.then(() => resolve(id), reject);
      },
    });
    options.signal.addEventListener(
      "abort",
      () => {
        upload.abort().finally(() => reject(new Error("interrupted")));
      },
      { once: true },
    );
    upload.start();
  });
}

/** One PUT of the whole file, streamed, counting the bytes as they leave. */
async function putUpload(
  file: string,
  size: number,
  target: UploadTarget,
  onProgress: (sent: number) => void,
  signal: AbortSignal,
): Promise<string> {
  let sent = 0;
  const source = createReadStream(file);
  source.on("data", (chunk) => {
    sent += chunk.length;
    onProgress(sent);
  });
  const response = await fetch(target.url, {
    method: target.method,
    headers: { "content-length": String(size), "content-type": "application/octet-stream" },
    body: source as unknown as BodyInit,
    duplex: "half",
    signal,
  } as RequestInit);
  const body = (await response.json().catch(() => null)) as { id?: string; error?: string } | null;
  if (!response.ok || !body?.id) {
    throw new ApiError(
      `the upload failed: HTTP ${response.status}${body?.error ? ` (${body.error})` : ""}`,
    );
  }
  return body.id;
}

/** Bytes, speed and time left: a bar on a terminal, a line per tenth otherwise. */
function transferProgress(output: Output, total: number) {
  const started = Date.now();
  const speed = (sent: number) => sent / Math.max((Date.now() - started) / 1000, 0.001);
  if (output.tty) {
    const bar = new SingleBar(
      {
        format:
          "Uploading {bar} {percentage}% | {sentText} of {totalText} | {speedText} | ETA {eta_formatted}",
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    bar.start(total, 0, { sentText: mib(0), totalText: mib(total), speedText: "" });
    return {
      update: (sent: number) =>
        bar.update(sent, { sentText: mib(sent), speedText: `${mib(speed(sent))}/s` }),
      stop: () => bar.stop(),
    };
  }
  let lastTenth = -1;
  return {
    update: (sent: number) => {
      const tenth = Math.floor((sent / Math.max(total, 1)) * 10);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      output.err(`uploaded ${tenth * 10}% (${mib(sent)} of ${mib(total)}, ${mib(speed(sent))}/s)`);
    },
    stop: () => undefined,
  };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// --- watch ----------------------------------------------------------------------------------

/**
 * Follows an episode live (the episodeUpdated subscription) until it is PROCESSED (exit 0,
 * output URLs printed) or FAILED (exit 1, the reason printed): one bar per task on a terminal,
 * a line per change otherwise.
 */
export async function watchCommand(
  api: PodflowApi,
  episodeId: string,
  output: Output,
): Promise<ExitCode> {
  const view = taskView(output);
  let ended: WatchedEpisode | null = null;
  const see = (episode: WatchedEpisode | null): boolean => {
    if (!episode) throw new ApiError(`no episode ${episodeId} of yours`);
    view.show(episode);
    if (episode.status === "PROCESSED" || episode.status === "FAILED") ended = episode;
    return ended != null;
  };
  // Subscribed first, then read: a change between the two is seen either way.
  const live = api.subscribe<{ episodeUpdated: WatchedEpisode }>(
    `subscription($id: ID!) { episodeUpdated(id: $id) { ${EPISODE_FIELDS} } }`,
    { id: episodeId },
    (data) => see(data.episodeUpdated),
  );
  // Its failure is awaited below; until then it must not count as unhandled.
  live.catch(() => undefined);
  const now = await api.request<{ episode: WatchedEpisode | null }>(
    `query($id: ID!) { episode(id: $id) { ${EPISODE_FIELDS} } }`,
    { id: episodeId },
  );
  try {
    if (!see(now.episode)) await live;
  } finally {
    view.stop();
    await api.close();
  }
  const last = ended as WatchedEpisode | null;
  if (!last) throw new ApiError("the live connection ended before the episode did");
  if (last.status === "FAILED") {
    output.err(`Episode ${last.id} FAILED: ${last.failureReason ?? "no reason given"}`);
    output.err(`Try again with: podflow retry ${last.id} --watch`);
    return 1;
  }
  output.out(`Episode ${last.id} PROCESSED: ${last.title}`);
  if (last.outputs.audioUrl) output.out(`audio: ${last.outputs.audioUrl}`);
  if (last.outputs.videoUrl) output.out(`video: ${last.outputs.videoUrl}`);
  for (const task of last.tasks) {
    if (task.type === "TRANSCRIPT_GENERATION" && task.outputUrl) {
      output.out(`transcript: ${task.outputUrl}`);
    }
    if (task.type === "CHAPTER_DETECTION" && task.outputUrl) {
      output.out(`chapters: ${task.outputUrl}`);
    }
  }
  return 0;
}

function taskView(output: Output) {
  if (output.tty) {
    const bars = new MultiBar(
      { format: "{task} {bar} {percentage}% {status}", hideCursor: true, clearOnComplete: false },
      Presets.shades_classic,
    );
    const byType = new Map<string, ReturnType<MultiBar["create"]>>();
    return {
      show(episode: WatchedEpisode) {
        for (const task of episode.tasks) {
          const value = task.status === "COMPLETED" ? 100 : (task.progress ?? 0);
          const payload = { task: task.type.padEnd(22), status: task.status };
          const bar = byType.get(task.type);
          if (bar) bar.update(value, payload);
          else byType.set(task.type, bars.create(100, value, payload));
        }
      },
      stop: () => bars.stop(),
    };
  }
  const seen = new Map<string, string>();
  let lastStatus = "";
  return {
    show(episode: WatchedEpisode) {
      if (episode.status !== lastStatus) {
        lastStatus = episode.status;
        output.err(`episode ${episode.status}`);
      }
      for (const task of episode.tasks) {
        const line = `${task.type} ${task.status}${task.progress != null ? ` ${task.progress}%` : ""}${task.error ? ` — ${task.error}` : ""}`;
        if (seen.get(task.type) === line) continue;
        seen.set(task.type, line);
        output.err(line);
      }
    },
    stop: () => undefined,
  };
}

// --- episodes, retry --------------------------------------------------------------------------

/** The producer's episodes, newest first, as a table. */
export async function episodesCommand(
  api: PodflowApi,
  options: { first: number },
  output: Output,
): Promise<ExitCode> {
  const { episodes } = await api.request<{
    episodes: {
      edges: Array<{
        node: { id: string; title: string; status: string; progress: number; createdAt: string };
      }>;
      pageInfo: { hasNextPage: boolean };
    };
  }>(
    `query($first: Int) { episodes(first: $first) {
      edges { node { id title status progress createdAt } } pageInfo { hasNextPage } } }`,
    { first: options.first },
  );
  const rows = [
    ["ID", "STATUS", "PROGRESS", "CREATED", "TITLE"],
    ...episodes.edges.map(({ node }) => [
      node.id,
      node.status,
      `${node.progress}%`,
      node.createdAt.slice(0, 16).replace("T", " "),
      node.title,
    ]),
  ];
  const widths = rows[0]?.map((_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? "").length)),
  ) as number[];
  for (const row of rows) {
    output.out(
      row
        .map((cell, column) =>
          column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0),
        )
        .join("  "),
    );
  }
  if (episodes.edges.length === 0) output.err("No episodes yet: podflow upload <file> --title …");
  if (episodes.pageInfo.hasNextPage) output.err(`More with --first ${options.first + 20}.`);
  return 0;
}

/** retryEpisode: a FAILED episode's failed tasks start over. */
export async function retryCommand(
  api: PodflowApi,
  episodeId: string,
  options: { watch?: boolean },
  output: Output,
): Promise<ExitCode> {
  const { retryEpisode } = await api.request<{
    retryEpisode: Result<{ episode: { status: string } }>;
  }>(
    `mutation($id: ID!) { retryEpisode(id: $id) {
      ... on RetryEpisodePayload { episode { status } } ${ERROR_FIELDS} } }`,
    { id: episodeId },
  );
  const reason = refused(retryEpisode);
  if (reason) {
    output.err(`podflow: cannot retry: ${reason}`);
    return 1;
  }
  output.err(
    `Episode ${episodeId} is ${(retryEpisode as { episode: { status: string } }).episode.status} again.`,
  );
  return options.watch ? watchCommand(api, episodeId, output) : 0;
}
