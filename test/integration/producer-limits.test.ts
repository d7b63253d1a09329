import { randomUUID } from "node:crypto";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { createTestDatabase } from "../support/database.ts";
import { graphql } from "../support/http.ts";
import { startTestPodflow } from "../support/podflow.ts";

// Attacks on the per-producer limits: a producer creating episodes (prepareUpload) or retrying
// failed ones (retryEpisode) faster than an hour allows. The refusal is a RateLimitError naming
// the setting and when the next is possible; nothing is created, moved or queued. The count is
// the database's, so a second instance refuses too, and concurrent requests cannot both take
// the last place.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let podflow: RunningPodflow;
/** A second API instance on the same database. */
let other: RunningPodflow;

const env = {
  PODFLOW_ROLES: "api",
  PODFLOW_MEDIA_ENGINE: "local",
  PODFLOW_MAX_EPISODES_PER_HOUR: "3",
  PODFLOW_MAX_RETRIES_PER_HOUR: "2",
};

beforeAll(async () => {
  database = await createTestDatabase();
  podflow = await startTestPodflow({ databaseUrl: database.url, env });
  other = await startTestPodflow({ databaseUrl: database.url, env });
});
afterAll(async () => {
  await Promise.all([podflow?.stop(), other?.stop()]);
  await database?.drop();
});

let producers = 0;
async function producer(): Promise<{ userId: string; headers: Record<string, string> }> {
  const em = podflow.deps.orm.em.fork();
  producers += 1;
  const user = await createUser(em, `limits${producers}@example.com`);
  const token = (await issueToken(em, user)).secret;
  return { userId: user.id, headers: { authorization: `Bearer ${token}` } };
}

const PREPARE = `mutation($input: PrepareUploadInput!) {
  prepareUpload(input: $input) {
    __typename
    ... on PrepareUploadPayload { episode { id } }
    ... on Error { message }
    ... on RateLimitError { setting limit resetsAt }
  }
}`;

type Result = {
  __typename: string;
  message?: string;
  setting?: string;
  limit?: number;
  resetsAt?: string;
};

async function prepare(instance: RunningPodflow, headers: Record<string, string>) {
  const { status, body } = await graphql<{ prepareUpload: Result }>(
    instance.url ?? "",
    PREPARE,
    { input: { filename: "take.mp3", title: "A take", filesize: 1_000 } },
    headers,
  );
  expect(status).toBe(200);
  expect(body.errors).toBeUndefined();
  return body.data?.prepareUpload as Result;
}

async function rows(userId: string) {
  const em = podflow.deps.orm.em.fork();
  const episodes = await em.execute<Array<{ id: string; status: string; round: number }>>(
    `select id, status, processing_round as round from episodes where user_id = ? order by created_at, id`,
    [userId],
  );
  const [jobs] = await em.execute<Array<{ n: string }>>(
    `select count(*) as n from pgboss.job where name = 'process-episode'
     and data->>'episodeId' in (select id::text from episodes where user_id = ?)`,
    [userId],
  );
  return { episodes, jobs: Number(jobs?.n) };
}

describe("episodes per hour (PODFLOW_MAX_EPISODES_PER_HOUR)", () => {
  it("refuses a producer's fourth episode within the hour, on either instance, creating nothing", async () => {
    const alice = await producer();
    const made = [];
    for (const instance of [podflow, other, podflow]) {
      const result = await prepare(instance, alice.headers);
      expect(result.__typename).toBe("PrepareUploadPayload");
      made.push(result);
    }
    const before = await rows(alice.userId);
    expect(before.episodes).toHaveLength(3);
    const [first] = await podflow.deps.orm.em
      .fork()
      .execute<Array<{ created_at: Date }>>(
        "select min(created_at) as created_at from episodes where user_id = ?",
        [alice.userId],
      );

    for (const instance of [podflow, other]) {
      const refused = await prepare(instance, alice.headers);
      expect(refused.__typename).toBe("RateLimitError");
      expect(refused.setting).toBe("PODFLOW_MAX_EPISODES_PER_HOUR");
      expect(refused.limit).toBe(3);
      // The next is possible when the oldest of the three is an hour old.
      expect(new Date(refused.resetsAt ?? "").getTime()).toBe(
        new Date(first?.created_at ?? 0).getTime() + 3_600_000,
      );
      expect(refused.message).toMatch(
        /At most 3 new episodes per hour \(PODFLOW_MAX_EPISODES_PER_HOUR\); the next is possible at /,
      );
    }
    expect(await rows(alice.userId)).toEqual(before);

    // Another producer is not affected.
    expect((await prepare(podflow, (await producer()).headers)).__typename).toBe(
      "PrepareUploadPayload",
    );
    // Once the oldest is more than an hour old, one more fits, and only one.
    await podflow.deps.orm.em
      .fork()
      .execute(
        "update episodes set created_at = created_at - interval '61 minutes' where id = (select id from episodes where user_id = ? order by created_at limit 1)",
        [alice.userId],
      );
    expect((await prepare(other, alice.headers)).__typename).toBe("PrepareUploadPayload");
    expect((await prepare(podflow, alice.headers)).__typename).toBe("RateLimitError");
  });

  it("lets exactly three of ten concurrent requests through, across both instances", async () => {
    const bob = await producer();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => prepare(i % 2 ? podflow : other, bob.headers)),
    );
    const kinds = results.map((result) => result.__typename).sort();
    expect(kinds.filter((kind) => kind === "PrepareUploadPayload")).toHaveLength(3);
    expect(kinds.filter((kind) => kind === "RateLimitError")).toHaveLength(7);
    expect((await rows(bob.userId)).episodes).toHaveLength(3);
  });
});

describe("retries per hour (PODFLOW_MAX_RETRIES_PER_HOUR)", () => {
  const RETRY = `mutation($id: ID!) {
    retryEpisode(id: $id) {
      __typename
      ... on Error { message }
      ... on RateLimitError { setting limit resetsAt }
    }
  }`;

  async function failedEpisode(userId: string): Promise<string> {
    const id = randomUUID();
    await podflow.deps.orm.em.fork().execute(
      `insert into episodes (id, user_id, title, status, engine, file_id, failure_reason, processing_round, created_at, updated_at)
       values (?, ?, 'Failed take', 'FAILED', 'local', 'file_abc', 'it broke', 1, now(), now())`,
      [id, userId],
    );
    return id;
  }

  async function retry(instance: RunningPodflow, headers: Record<string, string>, id: string) {
    const { body } = await graphql<{ retryEpisode: Result }>(
      instance.url ?? "",
      RETRY,
      { id: encodeGlobalID("Episode", id) },
      headers,
    );
    expect(body.errors).toBeUndefined();
    return body.data?.retryEpisode as Result;
  }

  it("refuses a producer's third retry within the hour, leaving the episode FAILED and nothing queued", async () => {
    const carol = await producer();
    const ids = [];
    for (let i = 0; i < 4; i += 1) ids.push(await failedEpisode(carol.userId));
    expect((await retry(podflow, carol.headers, ids[0] ?? "")).__typename).toBe(
      "RetryEpisodePayload",
    );
    expect((await retry(other, carol.headers, ids[1] ?? "")).__typename).toBe(
      "RetryEpisodePayload",
    );
    const before = await rows(carol.userId);
    expect(before.jobs).toBe(2);

    for (const [instance, id] of [
      [podflow, ids[2]],
      [other, ids[3]],
    ] as const) {
      const refused = await retry(instance, carol.headers, id ?? "");
      expect(refused.__typename).toBe("RateLimitError");
      expect(refused.setting).toBe("PODFLOW_MAX_RETRIES_PER_HOUR");
      expect(refused.limit).toBe(2);
      expect(refused.message).toMatch(
        /At most 2 retries per hour \(PODFLOW_MAX_RETRIES_PER_HOUR\)/,
      );
      const resetsIn = new Date(refused.resetsAt ?? "").getTime() - Date.now();
      expect(resetsIn).toBeGreaterThan(3_500_000);
      expect(resetsIn).toBeLessThanOrEqual(3_600_000);
    }
    // Still FAILED in round 1, nothing queued.
    expect(await rows(carol.userId)).toEqual(before);
    expect(before.episodes.filter((episode) => episode.status === "FAILED")).toHaveLength(2);

    // A refused retry of an episode that may not be retried is not counted either: another
    // producer's allowance is their own, and a conflict is a conflict, not a rate limit.
    const dave = await producer();
    const theirs = await failedEpisode(dave.userId);
    expect((await retry(podflow, dave.headers, theirs)).__typename).toBe("RetryEpisodePayload");
    expect((await retry(podflow, dave.headers, theirs)).__typename).toBe("ConflictError");
    expect((await retry(podflow, dave.headers, await failedEpisode(dave.userId))).__typename).toBe(
      "RetryEpisodePayload",
    );

    // An hour later the log has room again.
    await podflow.deps.orm.em
      .fork()
      .execute(
        "update episode_retries set created_at = created_at - interval '61 minutes' where user_id = ?",
        [carol.userId],
      );
    expect((await retry(other, carol.headers, ids[2] ?? "")).__typename).toBe(
      "RetryEpisodePayload",
    );
  });
});
