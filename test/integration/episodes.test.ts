import { randomUUID } from "node:crypto";
import { EntityManager } from "@mikro-orm/postgresql";
import { type GraphQLField, GraphQLObjectType, getNamedType, isLeafType } from "graphql";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { User } from "../../src/entities/user.entity.ts";
import { schema } from "../../src/schema/index.ts";
import { listEpisodes } from "../../src/services/episodes.ts";
import {
  ITTYBIT_TEST_ATTEMPTS,
  type Scenario,
  startScenario,
  type TestProducer,
} from "../support/scenario.ts";

const sqlLog: string[] = [];
let scenario: Scenario;
let alice: TestProducer;
let bob: TestProducer;

beforeAll(async () => {
  // The API alone: confirmed episodes stay UPLOADED with their job queued, so these tests see
  // exactly what confirmUpload did.
  scenario = await startScenario({
    env: { PODFLOW_ROLES: "api", PODFLOW_MAX_UPLOAD_BYTES: String(4 * 1024 ** 3) },
    start: { onSqlQuery: (sql) => sqlLog.push(sql) },
  });
  alice = await scenario.producer();
  bob = await scenario.producer();
});
afterAll(() => scenario.stop());

const PREPARE = `
  mutation Prepare($input: PrepareUploadInput!) {
    prepareUpload(input: $input) {
      __typename
      ... on PrepareUploadPayload {
        episode { id title description status progress originalFilename fileSize createdAt tasks { id } outputs { audioUrl videoUrl transcriptAvailable } }
        upload { url method expiresAt }
      }
      ... on Error { message }
      ... on ValidationError { fields problems { field message } }
    }
  }`;

const CONFIRM = `
  mutation Confirm($input: ConfirmUploadInput!) {
    confirmUpload(input: $input) {
      __typename
      ... on ConfirmUploadPayload { episode { id status fileId } }
      ... on Error { message }
    }
  }`;

interface PreparedEpisode {
  id: string;
  title: string;
  status: string;
  fileSize: number;
}

async function prepare(producer: TestProducer, input: Record<string, unknown> = {}) {
  const { body } = await producer.gql<{ prepareUpload: Record<string, unknown> }>(PREPARE, {
    input: { filename: "episode-42.mp4", title: "Episode 42", filesize: 1_000_000, ...input },
  });
  expect(body.errors).toBeUndefined();
  return body.data?.prepareUpload as {
    __typename: string;
    message?: string;
    fields?: string[];
    episode: PreparedEpisode;
    upload: { url: string; method: string; expiresAt: string };
  };
}

/** A file uploaded through the episode's signed URL: in its folder, at the declared size. */
function uploadedFile(globalEpisodeId: string, fields: Record<string, unknown> = {}) {
  const uuid = Buffer.from(globalEpisodeId, "base64").toString().split(":")[1];
  return scenario.ittybit.addFile({ folder: `episodes/${uuid}`, filesize: 1_000_000, ...fields });
}

async function confirm(producer: TestProducer, episodeId: string, fileId: string) {
  const { body } = await producer.gql<{ confirmUpload: Record<string, unknown> }>(CONFIRM, {
    input: { episodeId, fileId },
  });
  expect(body.errors).toBeUndefined();
  return body.data?.confirmUpload as {
    __typename: string;
    message?: string;
    episode: { id: string; status: string; fileId: string };
  };
}

async function episodeCount(): Promise<number> {
  const rows = await scenario.em().execute("select count(*)::int as n from episodes");
  return rows[0]?.n as number;
}

async function processJobs(globalEpisodeId: string): Promise<number> {
  const { id } = JSON.parse(
    `{"id":"${Buffer.from(globalEpisodeId, "base64").toString().split(":")[1]}"}`,
  ) as { id: string };
  const rows = await scenario
    .em()
    .execute(
      "select count(*)::int as n from pgboss.job where name = 'process-episode' and data->>'episodeId' = ?",
      [id],
    );
  return rows[0]?.n as number;
}

describe("prepareUpload", () => {
  it("creates an episode awaiting its upload and a signed PUT URL from Ittybit for its folder", async () => {
    const before = scenario.ittybit.signatures.length;
    const result = await prepare(alice, {
      title: "  The Pilot  ",
      description: "Show notes",
      filename: "pilot.MOV",
    });
    expect(result.__typename).toBe("PrepareUploadPayload");
    expect(result.episode).toMatchObject({
      title: "The Pilot",
      description: "Show notes",
      status: "AWAITING_UPLOAD",
      progress: 0,
      originalFilename: "pilot.MOV",
      tasks: [],
      outputs: { audioUrl: null, videoUrl: null, transcriptAvailable: false },
    });
    expect(result.upload.method).toBe("PUT");
    expect(new Date(result.upload.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const signature = scenario.ittybit.signatures.at(-1);
    expect(scenario.ittybit.signatures.length).toBe(before + 1);
    expect(result.upload.url).toBe(signature?.url);
    const uuid = Buffer.from(result.episode.id, "base64").toString().split(":")[1];
    expect(signature).toMatchObject({ folder: `episodes/${uuid}`, filename: "pilot.MOV" });
  });

  it("keeps a 2.5 GB file size exact", async () => {
    const size = 2_684_354_561; // 2.5 GiB + 1 byte: beyond 32-bit integers
    const result = await prepare(alice, { filesize: size });
    expect(result.episode.fileSize).toBe(size);
    const { body } = await alice.gql<{ episode: { fileSize: number } }>(
      "query($id: ID!) { episode(id: $id) { fileSize } }",
      { id: result.episode.id },
    );
    expect(body.data?.episode.fileSize).toBe(size);
  });

  it.each([
    ["an empty title", { title: "" }, ["title"]],
    ["a title of spaces", { title: "    " }, ["title"]],
    ["a title over 200 characters", { title: "x".repeat(201) }, ["title"]],
    ["a file without a media extension", { filename: "notes.txt" }, ["filename"]],
    ["a file without an extension", { filename: "episode" }, ["filename"]],
    ["a path instead of a file name", { filename: "../etc/episode.mp4" }, ["filename"]],
    ["a zero file size", { filesize: 0 }, ["filesize"]],
    ["a negative file size", { filesize: -5 }, ["filesize"]],
    ["a file over the upload limit", { filesize: 4 * 1024 ** 3 + 1 }, ["filesize"]],
    [
      "several bad fields at once",
      { title: "", filename: "a.doc", filesize: 0 },
      ["title", "filename", "filesize"],
    ],
  ])(
    "refuses %s with a ValidationError naming the field, creating nothing",
    async (_case, input, fields) => {
      const episodes = await episodeCount();
      const signatures = scenario.ittybit.signatures.length;
      const result = await prepare(alice, input);
      expect(result.__typename).toBe("ValidationError");
      expect(result.fields?.sort()).toEqual([...fields].sort());
      expect(result.message).toMatch(/Invalid input/);
      expect(await episodeCount()).toBe(episodes);
      expect(scenario.ittybit.signatures.length).toBe(signatures);
    },
  );

  it("accepts a title of exactly 200 characters and every media extension", async () => {
    expect((await prepare(alice, { title: "y".repeat(200) })).__typename).toBe(
      "PrepareUploadPayload",
    );
    for (const extension of [
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
    ]) {
      expect((await prepare(alice, { filename: `show.${extension}` })).__typename).toBe(
        "PrepareUploadPayload",
      );
    }
  });

  it("answers an Ittybit outage with ProcessingUnavailableError and stores nothing", async () => {
    const episodes = await episodeCount();
    scenario.ittybit.failNext({
      method: "POST",
      path: "/signatures",
      status: 503,
      times: ITTYBIT_TEST_ATTEMPTS,
    });
    const result = await prepare(alice);
    expect(result.__typename).toBe("ProcessingUnavailableError");
    expect(await episodeCount()).toBe(episodes);
  });

  it("requires a token", async () => {
    const { body } = await scenario.producer().then(() =>
      fetch(`${scenario.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          query: PREPARE,
          variables: { input: { filename: "a.mp4", title: "t", filesize: 1 } },
        }),
      }).then(async (response) => ({
        body: (await response.json()) as { errors?: Array<{ extensions?: { code?: string } }> },
      })),
    );
    expect(body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });
});

describe("confirmUpload", () => {
  it("stores the file, sets UPLOADED and queues processing once", async () => {
    const { episode } = await prepare(alice);
    const file = uploadedFile(episode.id, { filename: "episode-42.mp4" });
    const result = await confirm(alice, episode.id, file.id);
    expect(result.__typename).toBe("ConfirmUploadPayload");
    expect(result.episode).toMatchObject({
      id: episode.id,
      status: "UPLOADED",
      fileId: file.id,
    });
    expect(await processJobs(episode.id)).toBe(1);
  });

  it("answers a repeat with the same file unchanged and queues nothing more", async () => {
    const { episode } = await prepare(alice);
    const file = uploadedFile(episode.id);
    await confirm(alice, episode.id, file.id);
    const again = await confirm(alice, episode.id, file.id);
    expect(again.episode).toMatchObject({ status: "UPLOADED", fileId: file.id });
    expect(await processJobs(episode.id)).toBe(1);
  });

  it("queues exactly one job when the same confirm is sent several times at once", async () => {
    for (let round = 0; round < 5; round += 1) {
      const { episode } = await prepare(alice);
      const file = uploadedFile(episode.id);
      const results = await Promise.all(
        Array.from({ length: 4 }, () => confirm(alice, episode.id, file.id)),
      );
      for (const result of results) expect(result.episode.status).toBe("UPLOADED");
      expect(await processJobs(episode.id)).toBe(1);
    }
  });

  it("refuses another file once one is confirmed, changing nothing", async () => {
    const { episode } = await prepare(alice);
    const first = uploadedFile(episode.id);
    const second = uploadedFile(episode.id);
    await confirm(alice, episode.id, first.id);
    const result = await confirm(alice, episode.id, second.id);
    expect(result.__typename).toBe("ConflictError");
    const { body } = await alice.gql<{ episode: { fileId: string } }>(
      "query($id: ID!) { episode(id: $id) { fileId } }",
      { id: episode.id },
    );
    expect(body.data?.episode.fileId).toBe(first.id);
    expect(await processJobs(episode.id)).toBe(1);
  });

  it("answers a file Ittybit does not know with UnknownFileError, changing nothing", async () => {
    const { episode } = await prepare(alice);
    const result = await confirm(alice, episode.id, "file_doesnotexist0000");
    expect(result.__typename).toBe("UnknownFileError");
    const { body } = await alice.gql<{ episode: { status: string } }>(
      "query($id: ID!) { episode(id: $id) { status } }",
      { id: episode.id },
    );
    expect(body.data?.episode.status).toBe("AWAITING_UPLOAD");
    expect(await processJobs(episode.id)).toBe(0);
  });

  it("refuses a file uploaded for another episode, changing nothing", async () => {
    const { episode: mine } = await prepare(alice);
    const { episode: theirs } = await prepare(bob);
    const theirUuid = Buffer.from(theirs.id, "base64").toString().split(":")[1];
    const theirFile = scenario.ittybit.addFile({
      folder: `episodes/${theirUuid}`,
      filesize: 1_000_000,
    });
    const result = await confirm(alice, mine.id, theirFile.id);
    expect(result.__typename).toBe("UnknownFileError");
    expect(result.message).toMatch(/not uploaded for this episode/);
    expect(await processJobs(mine.id)).toBe(0);
    const mineUuid = Buffer.from(mine.id, "base64").toString().split(":")[1];
    const ownFile = scenario.ittybit.addFile({
      folder: `episodes/${mineUuid}`,
      filesize: 1_000_000,
    });
    expect((await confirm(alice, mine.id, ownFile.id)).__typename).toBe("ConfirmUploadPayload");
  });

  it("refuses file ids that are not ids before asking Ittybit anything", async () => {
    const { episode } = await prepare(alice);
    const before = scenario.ittybit.requests.length;
    for (const input of [
      { ittybitFileId: ".." },
      { fileId: "../tasks" },
      { fileId: "file_%2e%2e" },
      { fileId: "x".repeat(65) },
    ]) {
      const { body } = await alice.gql<{ confirmUpload: { __typename: string } }>(CONFIRM, {
        input: { episodeId: episode.id, ...input },
      });
      expect(body.data?.confirmUpload.__typename).toBe("ValidationError");
    }
    // Well-formed, but not an Ittybit file id: refused by the engine, still before any request.
    expect((await confirm(alice, episode.id, "task_abc")).__typename).toBe("UnknownFileError");
    expect(scenario.ittybit.requests.slice(before)).toEqual([]);
    expect(await processJobs(episode.id)).toBe(0);
  });

  it("refuses a file in no folder as not this episode's, changing nothing", async () => {
    const { episode } = await prepare(alice);
    const loose = scenario.ittybit.addFile({ filesize: 1_000_000 });
    const result = await confirm(alice, episode.id, loose.id);
    expect(result.__typename).toBe("UnknownFileError");
    expect(result.message).toMatch(/not uploaded for this episode/);
    expect(await processJobs(episode.id)).toBe(0);
  });

  it("checks the real file's size against the declared size and the upload limit", async () => {
    const { episode } = await prepare(alice);
    const smaller = await confirm(
      alice,
      episode.id,
      uploadedFile(episode.id, { filesize: 999 }).id,
    );
    expect(smaller.__typename).toBe("InvalidMediaError");
    expect(smaller.message).toMatch(/is 999 bytes, not the 1000000 bytes declared/);

    const { episode: large } = await prepare(alice, { filesize: 4 * 1024 ** 3 });
    const huge = uploadedFile(large.id, { filesize: 5 * 1024 ** 3 });
    const over = await confirm(alice, large.id, huge.id);
    expect(over.__typename).toBe("InvalidMediaError");
    expect(over.message).toMatch(/over the upload limit of 4294967296 bytes/);
    for (const id of [episode.id, large.id]) {
      const { body } = await alice.gql<{ episode: { status: string; fileId: string | null } }>(
        "query($id: ID!) { episode(id: $id) { status fileId } }",
        { id },
      );
      expect(body.data?.episode).toEqual({ status: "AWAITING_UPLOAD", fileId: null });
      expect(await processJobs(id)).toBe(0);
    }
    expect((await confirm(alice, episode.id, uploadedFile(episode.id).id)).__typename).toBe(
      "ConfirmUploadPayload",
    );
  });

  it("answers an unknown episode id with NotFoundError", async () => {
    const file = scenario.ittybit.addFile();
    const unknown = Buffer.from(`Episode:${randomUUID()}`).toString("base64");
    expect((await confirm(alice, unknown, file.id)).__typename).toBe("NotFoundError");
    expect((await confirm(alice, "not-an-id", file.id)).__typename).toBe("NotFoundError");
  });
});

describe("another producer's episode", () => {
  it("is indistinguishable from a missing one everywhere", async () => {
    const { episode } = await prepare(alice, { title: "Alice only" });
    const missing = Buffer.from(`Episode:${randomUUID()}`).toString("base64");

    for (const id of [episode.id, missing]) {
      const { body } = await bob.gql<{ episode: unknown; node: unknown; nodes: unknown[] }>(
        "query($id: ID!) { episode(id: $id) { id } node(id: $id) { id } nodes(ids: [$id]) { id } }",
        { id },
      );
      expect(body.errors).toBeUndefined();
      expect(body.data).toEqual({ episode: null, node: null, nodes: [null] });
    }

    const file = scenario.ittybit.addFile();
    const denied = await confirm(bob, episode.id, file.id);
    const absent = await confirm(bob, missing, file.id);
    expect(denied).toEqual(absent);
    expect(denied.__typename).toBe("NotFoundError");
    expect(await processJobs(episode.id)).toBe(0);

    const { body } = await bob.gql<{ episodes: { edges: Array<{ node: { title: string } }> } }>(
      "{ episodes(first: 100) { edges { node { title } } } }",
    );
    expect(body.data?.episodes.edges.map((edge) => edge.node.title)).not.toContain("Alice only");

    const own = await alice.gql<{ node: { title: string } }>(
      "query($id: ID!) { node(id: $id) { ... on Episode { title } } }",
      { id: episode.id },
    );
    expect(own.body.data?.node.title).toBe("Alice only");
  });
});

describe("episodes", () => {
  const LIST = `
    query($first: Int, $after: String, $status: EpisodeStatus) {
      episodes(first: $first, after: $after, status: $status) {
        edges { cursor node { id title status tasks { type status } progress } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }`;

  interface Page {
    episodes: {
      edges: Array<{ cursor: string; node: { id: string; title: string; status: string } }>;
      pageInfo: {
        hasNextPage: boolean;
        hasPreviousPage: boolean;
        startCursor: string | null;
        endCursor: string | null;
      };
    };
  }

  it("pages through every episode, newest first, with no gaps or repeats, and filters by status", async () => {
    const carol = await scenario.producer();
    const titles: string[] = [];
    for (let index = 0; index < 23; index += 1) {
      titles.push(`Carol ${index}`);
      await prepare(carol, { title: `Carol ${index}` });
    }
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const response: { body: { data?: Page; errors?: unknown } } = await carol.gql<Page>(LIST, {
        first: 10,
        after,
      });
      expect(response.body.errors).toBeUndefined();
      const page: Page["episodes"] | undefined = response.body.data?.episodes;
      expect(page?.pageInfo.hasPreviousPage).toBe(after != null);
      expect(page?.pageInfo.startCursor).toBe(page?.edges[0]?.cursor);
      expect(page?.pageInfo.endCursor).toBe(page?.edges.at(-1)?.cursor);
      seen.push(...(page?.edges.map((edge) => edge.node.title) ?? []));
      after = page?.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      pages += 1;
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toEqual([...titles].reverse());

    const empty = await carol.gql<Page>(LIST, { first: 5, status: "PROCESSED" });
    expect(empty.body.data?.episodes).toEqual({
      edges: [],
      pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
    });
    const none = await carol.gql<Page>(LIST, { first: 0 });
    expect(none.body.data?.episodes.edges).toEqual([]);
    expect(none.body.data?.episodes.pageInfo.hasNextPage).toBe(true);

    const { episode } = await prepare(carol, { title: "Carol uploaded" });
    await confirm(carol, episode.id, uploadedFile(episode.id).id);
    const { body } = await carol.gql<Page>(LIST, { first: 100, status: "UPLOADED" });
    expect(body.data?.episodes.edges.map((edge) => edge.node.title)).toEqual(["Carol uploaded"]);
  });

  it("refuses pages over 100, backward paging and cursors it did not make", async () => {
    const tooMany = await alice.gql(LIST, { first: 101 });
    expect(tooMany.body.errors?.[0]?.message).toMatch(/between 0 and 100/);
    const negative = await alice.gql(LIST, { first: -1 });
    expect(negative.body.errors?.[0]?.message).toMatch(/between 0 and 100/);
    for (const backwards of ["last: 5", 'before: "x"']) {
      const refused = await alice.gql(`{ episodes(${backwards}) { edges { cursor } } }`);
      expect(refused.body.errors?.[0]?.message).toMatch(/Unknown argument "(last|before)"/);
    }
    const badCursor = await alice.gql(LIST, { first: 10, after: "garbage" });
    expect(badCursor.body.errors?.[0]?.message).toMatch(/cursor/);
  });

  it("loads tasks for a page of episodes with a constant number of SQL statements", async () => {
    const dave = await scenario.producer();
    for (let index = 0; index < 30; index += 1) await prepare(dave, { title: `Dave ${index}` });
    // Give every episode its four tasks, as processing would.
    await scenario.em().execute(
      `insert into processing_tasks (id, episode_id, type, attempt, engine_task_id, status, created_at, updated_at)
       select gen_random_uuid(), e.id, t.type, 1, 'task_' || replace(gen_random_uuid()::text, '-', ''), 'PROCESSING', now(), now()
       from episodes e cross join (values ('AUDIO_EXTRACTION'), ('VIDEO_TRANSCODE'), ('TRANSCRIPT_GENERATION'), ('CHAPTER_DETECTION')) as t(type)
       where e.user_id = ?`,
      [dave.userId],
    );
    const statementsFor = async (first: number) => {
      sqlLog.length = 0;
      const { body } = await dave.gql<Page>(LIST, { first });
      expect(body.data?.episodes.edges).toHaveLength(first);
      for (const edge of body.data?.episodes.edges ?? []) {
        expect((edge.node as unknown as { tasks: unknown[] }).tasks).toHaveLength(4);
      }
      return sqlLog.length;
    };
    const small = await statementsFor(2);
    const large = await statementsFor(30);
    expect(large).toBe(small);
    // The token lookup, the page and the tasks of the whole page.
    expect(small).toBeLessThanOrEqual(3);
  });

  // Queries run compiled (src/schema/compiled-queries.ts): a resolver's failure must still reach
  // the client masked, at its path, as the standard executor's does.
  it("masks an internal failure of a listing as for any operation", async () => {
    const erin = await scenario.producer();
    await prepare(erin, { title: "Erin 1" });
    const execute = EntityManager.prototype.execute;
    const failing = vi.spyOn(EntityManager.prototype, "execute").mockImplementation(function (
      this: EntityManager,
      ...args: Parameters<typeof execute>
    ) {
      if (String(args[0]).includes("from episodes e where")) {
        return Promise.reject(new Error('column "secret_column" does not exist'));
      }
      return execute.apply(this, args);
    });
    try {
      const { body } = await erin.gql<Page>(LIST, { first: 5 });
      expect(body.data).toBeNull();
      expect(body.errors).toEqual([
        expect.objectContaining({ message: "Unexpected error.", path: ["episodes"] }),
      ]);
      expect(JSON.stringify(body)).not.toContain("secret_column");
    } finally {
      failing.mockRestore();
    }
    const { body } = await erin.gql<Page>(LIST, { first: 5 });
    expect(body.data?.episodes.edges.map((edge) => edge.node.title)).toEqual(["Erin 1"]);
  });
});

describe("a page of episodes and their outputs", () => {
  const LIST = `query { episodes(first: 10) { edges { node {
    id title status progress tasks { type status progress } } } } }`;
  const WITH_OUTPUTS = `query { episodes(first: 10) { edges { node {
    id title status progress tasks { type status progress }
    outputs { transcriptAvailable transcript transcriptSegments { text } chapters { title } }
    exports { textUrl vttUrl chaptersUrl } } } } }`;

  interface Node {
    id: string;
    title: string;
    tasks: unknown[];
    outputs?: {
      transcriptAvailable: boolean;
      transcript: string | null;
      transcriptSegments: Array<{ text: string }> | null;
      chapters: Array<{ title: string }> | null;
    };
    exports?: { textUrl: string | null; vttUrl: string | null; chaptersUrl: string | null };
  }
  type Edges = { episodes: { edges: Array<{ node: Node }> } };

  /** Processed episodes with a transcript, one with only blanks, one with nothing. */
  async function seedOutputs(producer: TestProducer) {
    for (const title of ["Nothing", "Blank", "Full"]) await prepare(producer, { title });
    await scenario.em().execute(
      `update episodes set status = 'PROCESSED',
         transcript = case title when 'Full' then 'Hello there.' when 'Blank' then E' \\n\\u00a0\\u2028 ' end,
         transcript_segments = case title when 'Full' then '[{"start":0,"end":1,"text":"Hello there."}]'::jsonb end,
         chapters = case title when 'Full' then '[{"start":0,"end":null,"title":"Intro"}]'::jsonb end
       where user_id = ?`,
      [producer.userId],
    );
    await scenario.em().execute(
      `insert into processing_tasks (id, episode_id, type, attempt, engine_task_id, status, created_at, updated_at)
       select gen_random_uuid(), e.id, t.type, 1, 'task_' || replace(gen_random_uuid()::text, '-', ''), 'COMPLETED', now(), now()
       from episodes e cross join (values ('AUDIO_EXTRACTION'), ('VIDEO_TRANSCODE'), ('TRANSCRIPT_GENERATION'), ('CHAPTER_DETECTION')) as t(type)
       where e.user_id = ?`,
      [producer.userId],
    );
  }

  /** seedOutputs, and a value in every other column a field shows; the show's id. */
  async function seedEveryColumn(producer: TestProducer): Promise<string> {
    await seedOutputs(producer);
    const showId = randomUUID();
    await scenario.em().execute(
      `insert into shows (id, user_id, title, description, author, owner_name, owner_email, language,
         category, feed_key, podcast_guid, feed_updated_at, created_at, updated_at)
       values (?, ?, 'Hana''s show', 'About things.', 'Hana', 'Hana', 'hana@example.com', 'en',
         'Technology', ?, gen_random_uuid(), now(), now(), now())`,
      [showId, producer.userId, randomUUID().replaceAll("-", "")],
    );
    await scenario
      .em()
      .execute("update episodes set show_id = ? where user_id = ? and title = 'Full'", [
        showId,
        producer.userId,
      ]);
    await scenario.em().execute(
      `update episodes set file_size = 4000000000, audio_bytes = 12345678901,
         audio_duration_seconds = 61.5, publish_at = now(), episode_number = 7,
         failure_reason = case title when 'Blank' then 'Broken' end,
         description = 'Notes on ' || title, file_id = 'file_' || title, season_number = 2,
         feed_guid = 'guid-' || id, audio_url = 'https://cdn.example/' || id || '.mp3',
         video_url = 'https://cdn.example/' || id || '.mp4', published = true,
         processing_started_at = now() - interval '1 hour', processing_completed_at = now()
       where user_id = ?`,
      [producer.userId],
    );
    return showId;
  }

  it("lists with tasks, without transcripts, segments or chapters, in two statements", async () => {
    const frank = await scenario.producer();
    await seedOutputs(frank);
    sqlLog.length = 0;
    const { body } = await frank.gql<Edges>(LIST);
    expect(body.errors).toBeUndefined();
    expect(body.data?.episodes.edges.map((edge) => edge.node.tasks.length)).toEqual([4, 4, 4]);
    // The token lookup, and the page with the latest tasks of each; none names the big columns.
    expect(sqlLog).toHaveLength(2);
    for (const statement of sqlLog) expect(statement).not.toMatch(/transcript|chapters/);
    // Tasks asked through a fragment, as the dashboard asks them: the same two statements.
    sqlLog.length = 0;
    const viaFragment = await frank.gql<Edges>(
      `query { episodes(first: 10) { edges { node { ...Card } } } }
       fragment Card on Episode { id title tasks { type status progress } }`,
    );
    expect(viaFragment.body.data?.episodes.edges.map((edge) => edge.node.tasks.length)).toEqual([
      4, 4, 4,
    ]);
    expect(sqlLog).toHaveLength(2);
    // Without tasks or progress, the page alone: no task is read.
    sqlLog.length = 0;
    await frank.gql<Edges>("query { episodes(first: 10) { edges { node { id title } } } }");
    expect(sqlLog).toHaveLength(2);
    expect(sqlLog.join("\n")).not.toMatch(/processing_tasks/);
  });

  it("shows a listed episode exactly as the episode itself (rows, not entities)", async () => {
    const hana = await scenario.producer();
    const showId = await seedEveryColumn(hana);
    const FIELDS = `id title description status progress originalFilename fileSize failureReason
      fileId engine createdAt processingStartedAt processingCompletedAt published publishAt
      feedGuid episodeNumber seasonNumber episodeType show { id title }
      tasks { id type status progress error outputUrl attempt updatedAt engineTaskId }
      outputs { audioUrl videoUrl transcriptAvailable chapters { title } }
      exports { textUrl vttUrl chaptersUrl }`;
    const { body } = await hana.gql<{ episodes: { edges: Array<{ node: { id: string } }> } }>(
      `query { episodes(first: 10) { edges { node { ${FIELDS} } } } }`,
    );
    expect(body.errors).toBeUndefined();
    const listed = body.data?.episodes.edges.map((edge) => edge.node) ?? [];
    expect(listed).toHaveLength(3);
    for (const node of listed) {
      const one = await hana.gql<{ episode: unknown }>(
        `query($id: ID!) { episode(id: $id) { ${FIELDS} } }`,
        { id: node.id },
      );
      expect(one.body.errors).toBeUndefined();
      expect(node).toEqual(one.body.data?.episode);
    }
    expect(listed[0]).toMatchObject({ fileSize: 4000000000, episodeNumber: 7 });
    const shows = listed.map((node) => (node as unknown as { show: unknown }).show);
    expect(shows).toContainEqual({ id: expect.any(String), title: "Hana's show" });
    // The rows themselves hold what an entity would: numbers for bigints, relations by id.
    const { episodes: rows } = await listEpisodes(
      scenario.podflow.deps.orm.em.fork(),
      { id: hana.userId } as User,
      { limit: 10 },
    );
    const full = rows.find((row) => row.title === "Full");
    expect(full).toMatchObject({
      fileSize: 4000000000,
      audioBytes: 12345678901,
      audioDurationSeconds: 61.5,
      user: { id: hana.userId },
      show: { id: showId },
      createdAt: expect.any(Date),
    });
    expect(full?.transcript).toBeUndefined();
  });

  it("reads only the columns of the fields a list asks for, each shown as the episode itself", async () => {
    const ivan = await scenario.producer();
    await seedEveryColumn(ivan);
    const episodeType = schema.getType("Episode") as GraphQLObjectType;
    const selectionOf = (field: GraphQLField<unknown, unknown>): string => {
      const type = getNamedType(field.type);
      if (!(type instanceof GraphQLObjectType)) return field.name;
      const leaves = Object.values(type.getFields()).filter((sub) =>
        isLeafType(getNamedType(sub.type)),
      );
      return `${field.name} { ${leaves.map((sub) => sub.name).join(" ") || "__typename"} }`;
    };
    const fields = Object.values(episodeType.getFields());
    expect(fields.length).toBeGreaterThan(20);
    for (const field of fields) {
      const selection = selectionOf(field);
      sqlLog.length = 0;
      const { body } = await ivan.gql<{ episodes: { edges: Array<{ node: { id: string } }> } }>(
        `query { episodes(first: 10) { edges { node { id ${selection} } } } }`,
      );
      expect(body.errors, field.name).toBeUndefined();
      const page = sqlLog.find((sql) => /from episodes e\b/.test(sql)) ?? "";
      // Only what the field reads (or everything, for a field that does not say what it reads).
      if (field.extensions.episodeProperties)
        expect(page, field.name).not.toMatch(/e\."video_file_id"/);
      const listed = body.data?.episodes.edges.map((edge) => edge.node) ?? [];
      expect(listed).toHaveLength(3);
      for (const node of listed) {
        const one = await ivan.gql<{ episode: unknown }>(
          `query($id: ID!) { episode(id: $id) { id ${selection} } }`,
          { id: node.id },
        );
        expect(one.body.errors).toBeUndefined();
        expect(node, field.name).toEqual(one.body.data?.episode);
      }
    }
    // Through a fragment too: the page reads the title and what the cursor needs, nothing else.
    sqlLog.length = 0;
    const { body } = await ivan.gql<{ episodes: { edges: Array<{ node: { title: string } }> } }>(
      `query { episodes(first: 10) { edges { cursor node { ...Row } } } }
       fragment Row on Episode { id title }`,
    );
    expect(body.data?.episodes.edges.map((edge) => edge.node.title).sort()).toEqual([
      "Blank",
      "Full",
      "Nothing",
    ]);
    const page = sqlLog.find((sql) => /from episodes e\b/.test(sql)) ?? "";
    expect(page.match(/e\."\w+"/g)).toEqual([
      'e."id"',
      'e."user_id"',
      'e."title"',
      'e."created_at"',
    ]);
  });

  it("loads the outputs a list asks for, all of them with one more statement", async () => {
    const gina = await scenario.producer();
    await seedOutputs(gina);
    sqlLog.length = 0;
    const { body } = await gina.gql<Edges>(WITH_OUTPUTS);
    expect(body.errors).toBeUndefined();
    expect(sqlLog).toHaveLength(3);
    const byTitle = new Map(body.data?.episodes.edges.map(({ node }) => [node.title, node]));
    expect(byTitle.get("Full")?.outputs).toEqual({
      transcriptAvailable: true,
      transcript: "Hello there.",
      transcriptSegments: [{ text: "Hello there." }],
      chapters: [{ title: "Intro" }],
    });
    expect(byTitle.get("Full")?.exports?.textUrl).toMatch(/\/transcript\.txt$/);
    expect(byTitle.get("Full")?.exports?.vttUrl).toMatch(/\/transcript\.vtt$/);
    expect(byTitle.get("Full")?.exports?.chaptersUrl).toMatch(/\/chapters\.json$/);
    // Only blanks (JavaScript's trim() ones, U+00A0 and U+2028 included): stored, nothing to export.
    expect(byTitle.get("Blank")?.outputs?.transcriptAvailable).toBe(true);
    expect(byTitle.get("Blank")?.exports).toEqual({
      textUrl: null,
      vttUrl: null,
      chaptersUrl: null,
    });
    expect(byTitle.get("Nothing")?.outputs).toEqual({
      transcriptAvailable: false,
      transcript: null,
      transcriptSegments: null,
      chapters: null,
    });
    expect(byTitle.get("Nothing")?.exports).toEqual({
      textUrl: null,
      vttUrl: null,
      chaptersUrl: null,
    });
  });
});
