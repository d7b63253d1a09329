import { randomBytes, randomUUID } from "node:crypto";
import type pg from "pg";
import { TASK_TYPES, type TaskType } from "../../src/domain/tasks.ts";
import { hashToken } from "../../src/services/accounts.ts";

// Load for the scenarios that need thousands of rows, written straight with SQL in the shapes
// Podflow's own code writes (see services/processing.ts): making them through the real
// pipeline would take longer than the measurement. The scenarios say so in their notes.

/** A producer and a bearer token for them. */
export async function seedProducer(
  client: pg.Client,
  label: string,
): Promise<{ userId: string; token: string }> {
  const userId = randomUUID();
  const token = `pf_${randomBytes(32).toString("base64url")}`;
  await client.query("insert into users (id, email, created_at) values ($1, $2, now())", [
    userId,
    `${label}-${userId.slice(0, 8)}@bench.example.com`,
  ]);
  await client.query(
    `insert into api_tokens (id, user_id, name, token_hash, token_prefix, created_at)
     values ($1, $2, 'bench', $3, $4, now())`,
    [randomUUID(), userId, hashToken(token), token.slice(0, 10)],
  );
  return { userId, token };
}

export interface SeededTask {
  id: string;
  episodeId: string;
  type: TaskType;
  attempt: number;
  engineTaskId: string;
  status: string;
}

export interface SeededEpisode {
  id: string;
  tasks: SeededTask[];
}

const TASK_KIND: Record<TaskType, string> = {
  AUDIO_EXTRACTION: "audio",
  VIDEO_TRANSCODE: "video",
  TRANSCRIPT_GENERATION: "speech",
  CHAPTER_DETECTION: "chapters",
};

/** Bulk inserts of at most this many rows per statement. */
const CHUNK = 2_000;

/**
 * Episodes of one producer, each with its four tasks (attempt 1). `createdAt(i)` orders them;
 * `shape(i)` says each episode's status and its tasks' statuses, and may add a retried attempt.
 */
export async function seedEpisodes(
  client: pg.Client,
  options: {
    userId: string;
    count: number;
    /** Makes engine_task_ids unique across seeds: `task_<tag>_<episode>_<type>_<attempt>`. */
    tag: string;
    episodeStatus?: (index: number) => string;
    taskStatus?: (index: number, type: TaskType) => string;
    /** Types whose attempt 1 FAILED and attempt 2 has `taskStatus`: a retried task. */
    retried?: (index: number) => TaskType[];
    /** Large text columns of a processed episode (the transcript and its segments). */
    withOutputs?: (index: number) => boolean;
    createdAt?: (index: number) => Date;
  },
): Promise<SeededEpisode[]> {
  const epoch = Date.now() - options.count * 60_000;
  const createdAt = options.createdAt ?? ((index: number) => new Date(epoch + index * 60_000));
  const episodes: SeededEpisode[] = [];
  const episodeRows: unknown[][] = [];
  const taskRows: unknown[][] = [];
  for (let index = 0; index < options.count; index += 1) {
    const id = randomUUID();
    const status = options.episodeStatus?.(index) ?? "PROCESSING";
    const outputs = options.withOutputs?.(index) ?? false;
    const transcript = outputs ? transcriptFor(index) : null;
    episodeRows.push([
      id,
      options.userId,
      `Bench episode ${options.tag} ${index}`,
      status,
      `file_${options.tag}_${index}`,
      `med_${options.tag}_${index}`,
      createdAt(index).toISOString(),
      transcript?.text ?? null,
      transcript ? JSON.stringify(transcript.segments) : null,
      outputs ? `https://media.example.com/${id}/audio.mp3` : null,
      outputs ? `https://media.example.com/${id}/video.mp4` : null,
      status === "PROCESSED" || status === "FAILED" ? createdAt(index).toISOString() : null,
    ]);
    const tasks: SeededTask[] = [];
    const retried = new Set(options.retried?.(index) ?? []);
    for (const type of TASK_TYPES) {
      const finalStatus = options.taskStatus?.(index, type) ?? "PENDING";
      const attempts = retried.has(type) ? ["FAILED", finalStatus] : [finalStatus];
      attempts.forEach((taskStatus, position) => {
        const task: SeededTask = {
          id: randomUUID(),
          episodeId: id,
          type,
          attempt: position + 1,
          engineTaskId: `task_${options.tag}_${index}_${TASK_TYPES.indexOf(type)}_${position + 1}`,
          status: taskStatus,
        };
        tasks.push(task);
        const ended = taskStatus === "COMPLETED" || taskStatus === "FAILED";
        taskRows.push([
          task.id,
          id,
          type,
          task.attempt,
          task.attempt,
          task.engineTaskId,
          taskStatus,
          taskStatus === "COMPLETED" ? 100 : taskStatus === "PROCESSING" ? 40 : null,
          taskStatus === "COMPLETED" ? `https://media.example.com/${task.id}` : null,
          taskStatus === "FAILED" ? "Processing failed" : null,
          JSON.stringify({ ref: TASK_KIND[type], kind: TASK_KIND[type] }),
          ended ? createdAt(index).toISOString() : null,
        ]);
      });
    }
    episodes.push({ id, tasks });
  }

  for (let start = 0; start < episodeRows.length; start += CHUNK) {
    const rows = episodeRows.slice(start, start + CHUNK);
    await client.query(
      `insert into episodes (id, user_id, title, status, engine, ittybit_folder, file_id,
         ittybit_media_id, original_filename, file_size, created_at, updated_at, transcript,
         transcript_segments, audio_url, video_url, processing_started_at, processing_completed_at)
       select r.id, r.user_id, r.title, r.status, 'ittybit', 'episodes/' || r.id, r.file_id, r.media_id,
         'episode.mp4', 123456789, r.created_at, r.created_at, r.transcript, r.segments,
         r.audio_url, r.video_url, r.created_at, r.completed_at
       from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::timestamptz[], $8::text[], $9::jsonb[], $10::text[], $11::text[], $12::timestamptz[])
         as r(id, user_id, title, status, file_id, media_id, created_at, transcript, segments,
           audio_url, video_url, completed_at)`,
      columns(rows, 12),
    );
  }
  for (let start = 0; start < taskRows.length; start += CHUNK) {
    const rows = taskRows.slice(start, start + CHUNK);
    await client.query(
      `insert into processing_tasks (id, episode_id, type, attempt, round, engine_task_id, status,
         progress, output_url, error_message, metadata, created_at, updated_at)
       select r.id, r.episode_id, r.type, r.attempt, r.round, r.engine_task_id, r.status,
         r.progress, r.output_url, r.error_message, r.metadata, now(), coalesce(r.ended_at, now())
       from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::int[], $6::text[],
         $7::text[], $8::int[], $9::text[], $10::text[], $11::jsonb[], $12::timestamptz[])
         as r(id, episode_id, type, attempt, round, engine_task_id, status, progress, output_url,
           error_message, metadata, ended_at)`,
      columns(rows, 12),
    );
  }
  await client.query("analyze episodes; analyze processing_tasks");
  return episodes;
}

/** Rows → one array per column, for `unnest`. */
function columns(rows: unknown[][], width: number): unknown[][] {
  return Array.from({ length: width }, (_, column) => rows.map((row) => row[column]));
}

/** A transcript of about 8 KB in 100 timed segments: a short show's worth. */
function transcriptFor(index: number): {
  text: string;
  segments: Array<{ start: number; end: number; text: string }>;
} {
  const segments = Array.from({ length: 100 }, (_, segment) => ({
    start: segment * 6,
    end: segment * 6 + 6,
    text: `Segment ${segment} of episode ${index}: the hosts talk about podcasting and automation.`,
  }));
  return { text: segments.map((segment) => segment.text).join(" "), segments };
}
