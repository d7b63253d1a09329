import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { PgBoss } from "pg-boss";
import { z } from "zod";
import type { EngineKind } from "../domain/engines.ts";
import type { EpisodeStatus } from "../domain/episode-lifecycle.ts";
import { isUuid } from "../domain/ids.ts";
import { isTaskEnded, TASK_TYPES, type TaskStatus, type TaskType } from "../domain/tasks.ts";
import { type Chapter, Episode, type TranscriptSegment } from "../entities/episode.entity.ts";
import { ProcessingTask } from "../entities/processing-task.entity.ts";
import type { User } from "../entities/user.entity.ts";
import { engineFor, type MediaEngines, type UploadTarget } from "./engines/engine.ts";
import {
  ConflictError,
  InvalidMediaError,
  NotFoundError,
  ProcessingUnavailableError,
  validateInput,
} from "./errors.ts";
import { EXPORT_FLAGS_SQL, type ExportFlags } from "./exports/exports.ts";
import { enqueue } from "./job-queue.ts";
import { changeEpisode, moveEpisode } from "./lifecycle.ts";
import { assertEpisodeAllowance, lockProducer } from "./producer-limits.ts";
import { findShow } from "./shows.ts";

/** What the media engines accept for processing into audio, video, transcript and chapters. */
export const MEDIA_EXTENSIONS = [
  "mp4",
  "mov",
  "mkv",
  "webm",
  "m4a",
  "mp3",
  "wav",
  "flac",
  "aac",
  "ogg",
] as const;

export interface PrepareUploadInput {
  filename: string;
  title: string;
  description?: string | null;
  filesize: number;
  /** The uuid of one of the user's shows to put the episode in. */
  showId?: string | null;
}

export interface PreparedUpload {
  episode: Episode;
  upload: UploadTarget;
}

function prepareUploadSchema(maxUploadBytes: number) {
  return z.object({
    title: z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters"),
    description: z
      .string()
      .trim()
      .max(5000, "must be at most 5000 characters")
      .nullish()
      .transform((value) => value || null),
    filename: z
      .string()
      .trim()
      .min(1, "must not be empty")
      .max(255, "must be at most 255 characters")
      .refine((name) => !/[/\\\0]/.test(name), "must be a file name, not a path")
      .refine(
        (name) => (MEDIA_EXTENSIONS as readonly string[]).includes(extensionOf(name)),
        `must end in one of .${MEDIA_EXTENSIONS.join(", .")}`,
      ),
    filesize: z
      .number()
      .int("must be a whole number of bytes")
      .positive("must be more than 0 bytes")
      .max(maxUploadBytes, `must be at most ${maxUploadBytes} bytes`),
  });
}

function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf(".");
  return dot < 0 ? "" : filename.slice(dot + 1).toLowerCase();
}

/**
 * Creates an episode awaiting its upload, with where to send the file — processed by this
 * server's media engine, which the episode keeps. The engine is asked for the upload target
 * before anything is stored, so a refusal leaves nothing behind. A producer creates at most
 * `maxEpisodesPerHour` episodes in any hour (a RateLimitError, checked before the engine is
 * asked and again, under the producer's lock, when the episode is stored).
 */
export async function prepareUpload(
  deps: {
    em: EntityManager;
    engines: MediaEngines;
    engine: EngineKind;
    maxUploadBytes: number;
    maxEpisodesPerHour: number;
  },
  user: User,
  input: PrepareUploadInput,
): Promise<PreparedUpload> {
  const valid = validateInput(prepareUploadSchema(deps.maxUploadBytes), input);
  const show = input.showId == null ? null : await findShow(deps.em, user, input.showId);
  if (input.showId != null && !show) throw new NotFoundError("No such show");
  await assertEpisodeAllowance(deps.em, user.id, deps.maxEpisodesPerHour);
  const id = randomUUID();
  const { target, folder } = await engineFor(deps.engines, deps.engine).prepareUpload({
    episodeId: id,
    filename: valid.filename,
    filesize: valid.filesize,
  });
  const episode = await deps.em.transactional(async (tx) => {
    await lockProducer(tx, user.id);
    await assertEpisodeAllowance(tx, user.id, deps.maxEpisodesPerHour);
    return tx.create(Episode, {
      id,
      user,
      title: valid.title,
      description: valid.description,
      originalFilename: valid.filename,
      fileSize: valid.filesize,
      engine: deps.engine,
      ittybitFolder: folder,
      status: "AWAITING_UPLOAD",
      show,
    });
  });
  return { episode, upload: target };
}

export interface ConfirmUploadInput {
  episodeId: string;
  fileId: string;
}

/**
 * Records the uploaded file and queues processing, in one transaction. Confirming again with
 * the same file is answered with the episode as it is and queues nothing; another file once
 * one was confirmed is a conflict. Concurrent confirms serialise on the episode's row lock.
 */
export async function confirmUpload(
  deps: { em: EntityManager; engines: MediaEngines; boss: PgBoss; maxUploadBytes: number },
  user: User,
  input: ConfirmUploadInput,
): Promise<Episode> {
  const { fileId } = validateInput(
    z.object({
      episodeId: z.string(),
      fileId: z
        .string()
        .trim()
        .min(1, "must not be empty")
        .max(64, "is too long")
        .regex(/^[A-Za-z0-9_-]+$/, "must be letters, digits, '_' or '-'"),
    }),
    input,
  );
  const episode = await findEpisode(deps.em, user, input.episodeId);
  if (!episode) throw new NotFoundError("No such episode");
  if (episode.fileId === fileId) return episode;
  assertCanConfirm(episode, fileId);
  const file = await engineFor(deps.engines, episode.engine).checkUploadedFile(episode, fileId);
  assertUploadedSize(episode, fileId, file.bytes, deps.maxUploadBytes);

  const confirmed = await changeEpisode(deps.em, { id: episode.id }, async (locked, tx) => {
    // Another confirm may have won the lock while the engine looked at the file.
    if (locked.fileId === fileId) return locked;
    assertCanConfirm(locked, fileId);
    locked.fileId = fileId;
    moveEpisode(locked, "UPLOADED");
    await enqueue(deps.boss, tx, "process-episode", { episodeId: locked.id });
    return locked;
  });
  if (!confirmed) throw new NotFoundError("No such episode");
  return confirmed;
}

/**
 * The real file is what prepareUpload declared, and within the upload limit: the declared size
 * was checked then, the bytes only now (an Ittybit upload is not bounded by Podflow).
 */
function assertUploadedSize(
  episode: Episode,
  fileId: string,
  bytes: number | null,
  maxUploadBytes: number,
): void {
  if (bytes === null) {
    throw new ProcessingUnavailableError(
      `The size of file ${fileId} is not known yet; confirm again in a moment`,
    );
  }
  if (bytes > maxUploadBytes) {
    throw new InvalidMediaError(
      `File ${fileId} is ${bytes} bytes, over the upload limit of ${maxUploadBytes} bytes`,
    );
  }
  if (episode.fileSize != null && bytes !== episode.fileSize) {
    throw new InvalidMediaError(
      `File ${fileId} is ${bytes} bytes, not the ${episode.fileSize} bytes declared in prepareUpload`,
    );
  }
}

function assertCanConfirm(episode: Episode, fileId: string): void {
  if (episode.status !== "AWAITING_UPLOAD") {
    throw new ConflictError(
      `This episode is ${episode.status.toLowerCase().replace("_", " ")} with file ${episode.fileId}; it cannot take file ${fileId}`,
    );
  }
}

/** The user's episode with this id, or null — also for a malformed id or another's episode. */
export async function findEpisode(
  em: EntityManager,
  user: User,
  episodeId: string,
): Promise<Episode | null> {
  if (!z.uuid().safeParse(episodeId).success) return null;
  return em.findOne(Episode, { id: episodeId, user: user.id });
}

/** The user's episodes among these ids, in no particular order (for batched loading). */
export async function findEpisodes(
  em: EntityManager,
  user: User,
  episodeIds: readonly string[],
): Promise<Episode[]> {
  const valid = episodeIds.filter((id) => z.uuid().safeParse(id).success);
  if (valid.length === 0) return [];
  return em.find(Episode, { id: { $in: valid }, user: user.id });
}

/** Position of an episode in the newest-first order, as a page's cursor names it. */
export interface EpisodeCursor {
  createdAt: Date;
  id: string;
}

type LazyEpisodeColumn = "transcript" | "transcriptSegments" | "chapters";

/**
 * What GraphQL shows of an episode: an Episode entity, or an EpisodeRow (a list's). Relations
 * are only their ids; the lazy columns may be missing (undefined), as on an entity.
 */
export type EpisodeView = Omit<Episode, "user" | "show" | LazyEpisodeColumn> & {
  user: { id: string };
  show?: { id: string } | null;
  /**
   * A list's row: the latest attempt of each task, when the list read them with the page
   * (`withTasks`). Absent on entities and on rows read without them: the tasks loader then.
   */
  latestTasks?: TaskView[];
} & Partial<Pick<Episode, LazyEpisodeColumn>>;

/**
 * An episode of a list: the row's columns (those the list asked for: listEpisodes'
 * `properties`), converted as the ORM converts them, without an entity. A list changes
 * nothing, and building 100 entities (identity map, change tracking, property accessors) was
 * most of what a page cost once its tasks were plain rows too.
 */
export class EpisodeRow {}

/** The columns and conversions of EpisodeRow, from the entity's metadata (so none is missed). */
function episodeRowShape(em: EntityManager) {
  const meta = em.getMetadata().get(Episode);
  const props = meta.props.filter(
    (prop) => !prop.lazy && (prop.kind === "scalar" || prop.kind === "m:1"),
  );
  const converted = props.filter(
    (prop) => prop.kind === "scalar" && prop.customType && prop.runtimeType === "number",
  );
  const platform = em.getPlatform();
  const columnsOf = (selected: typeof props) =>
    selected.flatMap((prop) => prop.fieldNames.map((name) => `e."${name}"`)).join(", ");
  return {
    meta,
    columns: columnsOf(props),
    /**
     * The select list of only these properties, and of those a row always has: the id, the
     * user and createdAt (the keyset's). Unknown names are ignored.
     */
    columnsOf: (names: ReadonlySet<string>) =>
      columnsOf(props.filter((prop) => ALWAYS_READ.has(prop.name) || names.has(prop.name))),
    relations: props.filter((prop) => prop.kind === "m:1").map((prop) => prop.name),
    convert: (data: Record<string, unknown>) => {
      for (const prop of converted) {
        const value = data[prop.name];
        if (value != null) data[prop.name] = prop.customType?.convertToJSValue(value, platform);
      }
    },
  };
}

/** What every EpisodeRow holds, whichever columns its list asked for. */
const ALWAYS_READ: ReadonlySet<string> = new Set(["id", "user", "createdAt"]);

let rowShape: ReturnType<typeof episodeRowShape> | null = null;

/**
 * Up to `limit` of the user's episodes, newest first, after a position, by keyset on
 * (createdAt, id): stable while episodes are added, and one indexed query whatever the page.
 * Read-only rows (EpisodeRow), without the lazy columns.
 */
export async function listEpisodes(
  em: EntityManager,
  user: User,
  options: {
    limit: number;
    after?: EpisodeCursor | null;
    status?: EpisodeStatus | null;
    /**
     * Also the latest attempt of each task of each (as latestTaskViews), in the same statement:
     * each row's `latestTasks`.
     */
    withTasks?: boolean;
    /**
     * Only these properties of each episode (and the id, user and createdAt): what the list
     * shows. Every column but the lazy ones when omitted. A row read without a property has it
     * undefined; it is not for anything that reads more than the list asked for.
     */
    properties?: ReadonlySet<string> | null;
  },
): Promise<{ episodes: EpisodeView[] }> {
  const { limit, after, status, withTasks = false, properties } = options;
  rowShape ??= episodeRowShape(em);
  const shape = rowShape;
  const where = ["e.user_id = ?"];
  const params: unknown[] = [user.id];
  if (status) {
    where.push("e.status = ?");
    params.push(status);
  }
  if (after) {
    where.push("(e.created_at, e.id) < (cast(? as timestamptz), cast(? as uuid))");
    params.push(after.createdAt.toISOString(), after.id);
  }
  params.push(limit);
  const rows = await em.execute<Array<Record<string, unknown>>>(
    `select ${properties ? shape.columnsOf(properties) : shape.columns}${withTasks ? `, ${LATEST_TASKS_JSON}` : ""}
     from episodes e where ${where.join(" and ")}
     order by e.created_at desc, e.id desc limit ?`,
    params,
  );
  const episodes = rows.map((row) => episodeRowOf(shape, em, row, withTasks));
  return { episodes };
}

/** Episode ids as one uuid[] parameter (ids that are no uuid left out); null when none is left. */
export function episodeIdsParam(episodeIds: readonly string[]): string | null {
  const valid = [...new Set(episodeIds.filter(isUuid))];
  return valid.length === 0 ? null : `{${valid.join(",")}}`;
}

/**
 * The select list (episodes aliased `e`) of an episode as a read-only row (EpisodeRow) with the
 * latest attempt of each of its tasks (TaskView), and what makes a row of it that pair: how the
 * live feed reads each committed state (src/services/episode-feed/loader.ts), in one statement
 * with the tokens it checks.
 */
export function episodeViewSelect(em: EntityManager): {
  columns: string;
  view: (row: Record<string, unknown>) => { episode: EpisodeView; tasks: TaskView[] };
} {
  rowShape ??= episodeRowShape(em);
  const shape = rowShape;
  return {
    columns: `${shape.columns}, ${LATEST_TASKS_JSON}`,
    view: (row) => {
      const episode = episodeRowOf(shape, em, row, true);
      return { episode, tasks: episode.latestTasks ?? [] };
    },
  };
}

/**
 * An EpisodeRow from the columns of `shape`, converted as the ORM converts them, with its latest
 * tasks when the row has LATEST_TASKS_JSON. The ORM's mapping passes the tasks column (named as
 * the property) through as it is; the object it builds becomes the row itself (copying ~30
 * columns onto a new EpisodeRow, and first out of the row without the tasks, was most of what
 * mapping a page cost).
 */
function episodeRowOf(
  shape: ReturnType<typeof episodeRowShape>,
  em: EntityManager,
  row: Record<string, unknown>,
  withTasks: boolean,
): EpisodeView {
  const data = em.getComparator().mapResult(shape.meta, row as never) as Record<string, unknown>;
  shape.convert(data);
  for (const relation of shape.relations) {
    const id = data[relation];
    // Undefined: not read (a list that asked for less).
    if (id !== undefined) data[relation] = id === null ? null : { id };
  }
  const episode = Object.setPrototypeOf(data, EpisodeRow.prototype) as EpisodeView;
  if (withTasks) {
    const latest = data.latestTasks as TaskViewTuple[] | null;
    episode.latestTasks = sortTasks(latest ?? [], taskViewOfTuple);
  }
  return episode;
}

/**
 * latestTaskViews's rows of one episode (alias `e`), as a JSON array of arrays of text
 * (TaskViewTuple): a column of the page. Tuples rather than objects: building and parsing ten
 * keys per task made this column cost more than the rest of the page, in PostgreSQL and in Node
 * alike. Arrays of text rather than json_build_array, and the time as epoch milliseconds: the
 * statement took PostgreSQL about a tenth less (json_build_array dispatches on each value's
 * type), and Node makes a Date of a number faster than of a date string.
 */
const LATEST_TASKS_JSON = `(select coalesce(array_to_json(array_agg(array[
    t.id::text, t.type::text, t.status::text, t.progress::text, t.error_message, t.output_url,
    t.engine_task_id, t.attempt::text, floor(extract(epoch from t.updated_at) * 1000)::int8::text
  ])), '[]')
  from (select distinct on (p.type) p.id, p.type, p.status, p.progress, p.error_message,
          p.output_url, p.engine_task_id, p.attempt, p.updated_at
        from processing_tasks p where p.episode_id = e.id
        order by p.type, p.attempt desc) t) as "latestTasks"`;

/**
 * One task of LATEST_TASKS_JSON, in its order: every value as text. A task's announcement
 * carries its row in the same form (see the task_states migration).
 */
export type TaskViewTuple = [
  id: string,
  type: TaskType,
  status: TaskStatus,
  progress: string | null,
  errorMessage: string | null,
  outputUrl: string | null,
  engineTaskId: string,
  attempt: string,
  /** Milliseconds since 1970. */
  updatedAt: string,
];

export function taskViewOfTuple(tuple: TaskViewTuple): TaskView {
  const [id, type, status, progress, errorMessage, outputUrl, engineTaskId, attempt, updatedAt] =
    tuple;
  return {
    id,
    type,
    status,
    progress: progress === null ? null : Number(progress),
    errorMessage,
    outputUrl,
    engineTaskId,
    attempt: Number(attempt),
    updatedAt: new Date(Number(updatedAt)),
  };
}

function taskView(row: TaskViewRow): TaskView {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    progress: row.progress,
    errorMessage: row.error_message,
    outputUrl: row.output_url,
    engineTaskId: row.engine_task_id,
    attempt: row.attempt,
    updatedAt: new Date(row.updated_at),
  };
}

/**
 * The episode with `task` as the latest attempt of its type, as loading it again would show it
 * (a new object; the given one is left as it is), or null when `task` is an earlier attempt than
 * the one shown, which changes nothing a subscriber sees.
 */
export function withLatestTask(
  update: { episode: EpisodeView; tasks: readonly TaskView[] },
  task: TaskView,
): { episode: EpisodeView; tasks: TaskView[] } | null {
  const shown = update.tasks.find((candidate) => candidate.type === task.type);
  if (shown && shown.attempt > task.attempt) return null;
  const others = update.tasks.filter((candidate) => candidate !== shown);
  const tasks = sortTasks([...others, task], (view) => view);
  const episode = Object.setPrototypeOf(
    { ...update.episode, latestTasks: tasks },
    Object.getPrototypeOf(update.episode),
  ) as EpisodeView;
  return { episode, tasks };
}

/** In TASK_TYPES order, as every list of an episode's tasks is. */
function sortTasks<T>(rows: readonly T[], view: (row: T) => TaskView): TaskView[] {
  const order = (task: TaskView) => TASK_TYPES.indexOf(task.type);
  return rows.map(view).sort((a, b) => order(a) - order(b));
}

/**
 * The latest attempt of each task type for each episode, in one query whatever the number of
 * episodes (for a page of episodes through a dataloader).
 */
export async function latestTasksByEpisode(
  em: EntityManager,
  episodeIds: readonly string[],
): Promise<Map<string, ProcessingTask[]>> {
  const tasks = await em.find(
    ProcessingTask,
    { episode: { $in: [...episodeIds] } },
    { orderBy: { attempt: "asc" } },
  );
  const latest = new Map<string, Map<string, ProcessingTask>>();
  for (const task of tasks) {
    const episodeId = task.episode.id;
    const byType = latest.get(episodeId) ?? new Map<string, ProcessingTask>();
    byType.set(task.type, task);
    latest.set(episodeId, byType);
  }
  const order = (task: ProcessingTask) => TASK_TYPES.indexOf(task.type);
  return new Map(
    episodeIds.map((id) => [
      id,
      [...(latest.get(id)?.values() ?? [])].sort((a, b) => order(a) - order(b)),
    ]),
  );
}

/** What GraphQL shows of a processing task: a ProcessingTask, or the same columns as a plain row. */
export type TaskView = Pick<
  ProcessingTask,
  | "id"
  | "type"
  | "status"
  | "progress"
  | "errorMessage"
  | "outputUrl"
  | "engineTaskId"
  | "attempt"
  | "updatedAt"
>;

interface TaskViewRow {
  id: string;
  episode_id: string;
  type: TaskType;
  status: TaskStatus;
  progress: number | null;
  error_message: string | null;
  output_url: string | null;
  engine_task_id: string;
  attempt: number;
  /** As the ORM's connection returns timestamps (and JSON holds them): text. */
  updated_at: string;
}

/**
 * latestTasksByEpisode for reading only (GraphQL lists): the latest attempt of each task type
 * picked by the database, as plain rows of the columns shown. A page of episodes' tasks
 * through the ORM spent most of a listing's time building entities nobody changes.
 */
export async function latestTaskViews(
  em: EntityManager,
  episodeIds: readonly string[],
): Promise<Map<string, TaskView[]>> {
  const byEpisode = new Map<string, TaskView[]>(episodeIds.map((id) => [id, []]));
  // Ids of episodes already loaded; checked only so a stray one cannot fail the cast.
  const ids = episodeIdsParam(episodeIds);
  if (ids === null) return byEpisode;
  const rows = await em.execute<TaskViewRow[]>(
    `select distinct on (episode_id, type) id, episode_id, type, status, progress, error_message,
       output_url, engine_task_id, attempt, updated_at
     from processing_tasks where episode_id = any(cast(? as uuid[]))
     order by episode_id, type, attempt desc`,
    [ids],
  );
  const rowsOf = new Map<string, TaskViewRow[]>();
  for (const row of rows) {
    const episodeRows = rowsOf.get(row.episode_id);
    if (episodeRows) episodeRows.push(row);
    else rowsOf.set(row.episode_id, [row]);
  }
  for (const [episodeId, episodeRows] of rowsOf) {
    if (byEpisode.has(episodeId)) byEpisode.set(episodeId, sortTasks(episodeRows, taskView));
  }
  return byEpisode;
}

/** What GraphQL may read of an episode's lazy columns (see Episode): each, or their flags. */
export type EpisodeOutputField = "transcript" | "transcriptSegments" | "chapters" | "flags";

export interface EpisodeOutputs {
  transcript?: string | null;
  transcriptSegments?: TranscriptSegment[] | null;
  chapters?: Chapter[] | null;
  flags?: ExportFlags;
}

const OUTPUT_COLUMNS: Record<Exclude<EpisodeOutputField, "flags">, string> = {
  transcript: "e.transcript",
  transcriptSegments: "e.transcript_segments",
  chapters: "e.chapters",
};

interface OutputRow {
  id: string;
  transcript?: string | null;
  transcript_segments?: TranscriptSegment[] | null;
  chapters?: Chapter[] | null;
  has_transcript?: boolean;
  has_timed?: boolean;
  has_chapters?: boolean;
  has_text?: boolean;
}

/**
 * The asked lazy columns (and/or their flags) of these episodes, in one statement whatever their
 * number: for GraphQL's outputs and exports fields, whose episodes were loaded without them.
 * Access is the caller's: the ids are of episodes it already holds.
 */
export async function loadEpisodeOutputs(
  em: EntityManager,
  episodeIds: readonly string[],
  fields: ReadonlySet<EpisodeOutputField>,
): Promise<Map<string, EpisodeOutputs>> {
  const selected = ["e.id"];
  for (const field of fields) {
    selected.push(field === "flags" ? EXPORT_FLAGS_SQL : OUTPUT_COLUMNS[field]);
  }
  const ids = [...new Set(episodeIds)];
  const rows = await em.execute<OutputRow[]>(
    `select ${selected.join(", ")} from episodes e where e.id = any(cast(? as uuid[]))`,
    [`{${ids.join(",")}}`],
  );
  return new Map(
    rows.map((row) => [
      row.id,
      {
        transcript: row.transcript,
        transcriptSegments: row.transcript_segments,
        chapters: row.chapters,
        flags:
          row.has_transcript === undefined
            ? undefined
            : {
                transcript: row.has_transcript,
                timed: Boolean(row.has_timed),
                chapters: Boolean(row.has_chapters),
                text: Boolean(row.has_text),
              },
      },
    ]),
  );
}

/** 0–100: the share of the episode's tasks that ended (completed, failed or skipped). */
export function episodeProgress(episode: EpisodeView, tasks: readonly TaskView[]): number {
  if (episode.status === "PROCESSED") return 100;
  const ended = tasks.filter((task) => isTaskEnded(task.status));
  return Math.floor((100 * ended.length) / TASK_TYPES.length);
}
