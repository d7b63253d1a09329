import { expect } from "vitest";
import type { TaskType } from "../../src/domain/tasks.ts";
import type { Scenario, TestProducer } from "./scenario.ts";
import { waitUntil } from "./wait.ts";

export { waitUntil };

/** An episode uploaded and confirmed through the API, as a producer's client does it. */
export interface UploadedEpisode {
  /** The global id clients use. */
  id: string;
  /** The row's uuid. */
  uuid: string;
  fileId: string;
}

export async function uploadEpisode(
  scenario: Scenario,
  producer: TestProducer,
  title = "Episode",
): Promise<UploadedEpisode> {
  const prepared = await producer.gql<{ prepareUpload: { episode: { id: string } } }>(
    `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
       ... on PrepareUploadPayload { episode { id } } ... on Error { message } } }`,
    { input: { filename: "episode.mp4", title, description: "Notes", filesize: 123_456_789 } },
  );
  const id = prepared.body.data?.prepareUpload.episode.id as string;
  expect(id).toBeTruthy();
  const uuid = Buffer.from(id, "base64").toString().split(":")[1] as string;
  const file = scenario.ittybit.addFile({
    filename: "episode.mp4",
    folder: `episodes/${uuid}`,
    filesize: 123_456_789,
  });
  const confirmed = await producer.gql<{ confirmUpload: { __typename: string } }>(
    `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
    { input: { episodeId: id, fileId: file.id } },
  );
  expect(confirmed.body.data?.confirmUpload.__typename).toBe("ConfirmUploadPayload");
  return { id, uuid, fileId: file.id };
}

export interface TaskRow {
  id: string;
  type: TaskType;
  attempt: number;
  status: string;
  progress: number | null;
  engine_task_id: string;
  error_message: string | null;
  output_url: string | null;
}

export async function taskRows(scenario: Scenario, episodeUuid: string): Promise<TaskRow[]> {
  return (await scenario
    .em()
    .execute("select * from processing_tasks where episode_id = ? order by type, attempt", [
      episodeUuid,
    ])) as TaskRow[];
}

/** Waits until the worker has created `count` task rows for the episode, and returns them. */
export function waitForTasks(
  scenario: Scenario,
  episodeUuid: string,
  count = 4,
): Promise<TaskRow[]> {
  return waitUntil(
    () => taskRows(scenario, episodeUuid),
    (rows) => rows.length >= count,
    `${count} tasks of episode ${episodeUuid}`,
  );
}

export async function episodeRow(scenario: Scenario, episodeUuid: string) {
  const rows = await scenario.em().execute("select * from episodes where id = ?", [episodeUuid]);
  return rows[0] as Record<string, unknown> & { status: string; failure_reason: string | null };
}

/** Waits until the episode reaches `status`, and returns its row. */
export function waitForStatus(
  scenario: Scenario,
  episodeUuid: string,
  status: string,
  timeoutMs?: number,
) {
  return waitUntil(
    () => episodeRow(scenario, episodeUuid),
    (row) => row.status === status,
    `episode ${episodeUuid} to be ${status}`,
    timeoutMs,
  );
}

/** How many jobs of a queue exist for the episode, whatever their state. */
export async function jobCount(scenario: Scenario, queue: string, episodeUuid: string) {
  const rows = await scenario
    .em()
    .execute(
      "select count(*)::int as n from pgboss.job where name = ? and data->>'episodeId' = ?",
      [queue, episodeUuid],
    );
  return rows[0]?.n as number;
}

/** Moves the task at the stand-in and sends its webhook; returns Podflow's answer. */
export async function report(
  scenario: Scenario,
  engineTaskId: string,
  status: string,
  changes: Parameters<Scenario["ittybit"]["setTaskStatus"]>[2] = {},
) {
  scenario.ittybit.setTaskStatus(engineTaskId, status, changes);
  const delivery = await scenario.ittybit.deliverWebhook(engineTaskId);
  expect(delivery.status).toBe(200);
  return delivery;
}

export const EPISODE_QUERY = `query($id: ID!) { episode(id: $id) {
  status progress failureReason processingStartedAt processingCompletedAt
  tasks { type status progress error outputUrl engineTaskId attempt }
  outputs { audioUrl videoUrl transcriptAvailable transcript
    transcriptSegments { start end text speaker } chapters { start end title } }
} }`;
