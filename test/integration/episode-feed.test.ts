import { randomUUID } from "node:crypto";
import pg from "pg";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Orm, openOrm } from "../../src/database/orm.ts";
import {
  createUser,
  findUserByEmail,
  issueToken,
  revokeToken,
} from "../../src/services/accounts.ts";
import {
  createEpisodeFeed,
  type EpisodeFeed,
  type EpisodeUpdate,
  type Subscriber,
  type TaskUpdate,
} from "../../src/services/episode-feed/index.ts";
import {
  CHANGES_CHANNEL,
  type ChangeListener,
  dispatchNotification,
  type PubSub,
  parseNotification,
} from "../../src/services/pubsub.ts";
import { createTestDatabase } from "../support/database.ts";
import { changeTask, insertProcessingEpisode } from "../support/episode-changes.ts";

// The feed on its own, on a real database, with the announcements in the test's hands: a change
// is committed first and announced when the test says, so which burst hears it is certain.

const logger = pino({ level: "silent" });
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let orm: Orm;
let alice: Subscriber;
let bob: Subscriber;
let listener: ChangeListener;
let feed: EpisodeFeed;

/** A PubSub that hands its listener to the test. */
const handDriven: PubSub = {
  async listen(heard) {
    listener = heard;
  },
  async close() {},
};

beforeAll(async () => {
  database = await createTestDatabase();
  orm = await openOrm(database.url, logger);
  alice = { userId: (await createUser(orm.em.fork(), "alice@feed.test")).id, tokenHash: null };
  bob = { userId: (await createUser(orm.em.fork(), "bob@feed.test")).id, tokenHash: null };
});
afterEach(async () => {
  await feed?.stop();
});
afterAll(async () => {
  await orm?.close();
  await database?.drop();
});

async function startFeed(): Promise<EpisodeFeed> {
  feed = createEpisodeFeed({ orm, pubsub: handDriven, logger });
  await feed.start();
  return feed;
}

const deps = () => ({ orm });
const view = ({ task }: TaskUpdate) => [task.type, task.status, task.progress];

/** The next update, or `done` once the stream ended. */
async function next(stream: AsyncIterableIterator<TaskUpdate>): Promise<TaskUpdate | "done"> {
  const result = await stream.next();
  return result.done ? "done" : result.value;
}

describe("followTasks", () => {
  it("loads the tasks' state as its baseline and sends only what differs from it", async () => {
    await startFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const { AUDIO_EXTRACTION: audio, VIDEO_TRANSCODE: video } = episode.tasks;
    await changeTask(deps(), episode, audio.id, { status: "PROCESSING", progress: 40 });

    const tasks = feed.followTasks(alice, episode.id);
    // Not yet hearing: the baseline loads in the next burst.
    expect(feed.size).toBe(0);
    await expect.poll(() => feed.size, { timeout: 10_000, interval: 5 }).toBe(1);

    // Announced again with nothing changed: nothing to send.
    listener.change({ episodeId: episode.id, userId: alice.userId });
    await changeTask(deps(), episode, video.id, { status: "PROCESSING", progress: 5 });
    listener.change({ episodeId: episode.id, userId: alice.userId });
    // The first update is the video's: neither the baseline (audio at 40, three PENDING) nor
    // the repeated announcement was sent.
    expect(view((await next(tasks)) as TaskUpdate)).toEqual(["VIDEO_TRANSCODE", "PROCESSING", 5]);

    await changeTask(deps(), episode, audio.id, { status: "COMPLETED", progress: 100 });
    listener.change({ episodeId: episode.id, userId: alice.userId });
    expect(view((await next(tasks)) as TaskUpdate)).toEqual(["AUDIO_EXTRACTION", "COMPLETED", 100]);
  });

  it("neither misses nor repeats a change committed before its baseline loaded", async () => {
    await startFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const { TRANSCRIPT_GENERATION: transcript, CHAPTER_DETECTION: chapters } = episode.tasks;

    // Committed, then announced in the very burst that loads the baseline: the baseline has it.
    await changeTask(deps(), episode, transcript.id, { status: "PROCESSING", progress: 30 });
    const tasks = feed.followTasks(alice, episode.id);
    listener.change({ episodeId: episode.id, userId: alice.userId });
    await expect.poll(() => feed.size, { timeout: 10_000, interval: 5 }).toBe(1);

    await changeTask(deps(), episode, chapters.id, { status: "FAILED", errorMessage: "No speech" });
    listener.change({ episodeId: episode.id, userId: alice.userId });
    expect(view((await next(tasks)) as TaskUpdate)).toEqual(["CHAPTER_DETECTION", "FAILED", null]);
  });

  it("after a resync, sends every task: changes may have been missed", async () => {
    await startFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const tasks = feed.followTasks(alice, episode.id);
    await expect.poll(() => feed.size, { timeout: 10_000, interval: 5 }).toBe(1);

    // Committed while the listener was away: never announced.
    const away = new Date();
    await changeTask(deps(), episode, episode.tasks.VIDEO_TRANSCODE.id, { progress: 70 });
    listener.resync(away);
    const sent = [];
    for (let index = 0; index < 4; index += 1) sent.push(view((await next(tasks)) as TaskUpdate));
    expect(sent).toEqual([
      ["AUDIO_EXTRACTION", "PENDING", null],
      ["VIDEO_TRANSCODE", "PENDING", 70],
      ["TRANSCRIPT_GENERATION", "PENDING", null],
      ["CHAPTER_DETECTION", "PENDING", null],
    ]);
  });

  it("ends at once for a missing episode, or another producer's", async () => {
    await startFeed();
    const bobs = await insertProcessingEpisode(deps(), bob.userId);
    expect(await next(feed.followTasks(alice, randomUUID()))).toBe("done");
    expect(await next(feed.followTasks(alice, bobs.id))).toBe("done");
    expect(feed.size).toBe(0);
  });

  it("is refused once the feed has stopped", async () => {
    await startFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const tasks = feed.followTasks(alice, episode.id);
    await feed.stop();
    expect(await next(tasks)).toBe("done");
    expect(() => feed.followTasks(alice, episode.id)).toThrow(/shutting down/);
  });
});

describe("followEpisode", () => {
  it("ends, sending nothing, once the episode it follows belongs to someone else", async () => {
    await startFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const stream = feed.followEpisode(alice, episode.id);
    const first = await stream.next();
    expect(first.done ? null : first.value.episode.id).toBe(episode.id);

    await orm.em
      .fork()
      .execute("update episodes set user_id = ? where id = ?", [bob.userId, episode.id]);
    listener.change({ episodeId: episode.id, userId: bob.userId });
    expect((await stream.next()).done).toBe(true);
  });
});

describe("token checks", () => {
  it("a sweep with no episode to load ends the subscriptions of revoked tokens, and only those", async () => {
    const owner = await findUserByEmail(orm.em.fork(), "alice@feed.test");
    const kept = await issueToken(orm.em.fork(), owner, "kept");
    const revoked = await issueToken(orm.em.fork(), owner, "revoked");
    feed = createEpisodeFeed({ orm, pubsub: handDriven, logger }, { tokenRecheckMs: 20 });
    await feed.start();
    feed.followUserEpisodes({ userId: alice.userId, tokenHash: kept.token.tokenHash });
    const revokedStream = feed.followUserEpisodes({
      userId: alice.userId,
      tokenHash: revoked.token.tokenHash,
    });
    expect(feed.size).toBe(2);

    await revokeToken(orm.em.fork(), revoked.token.id);
    // A sweep loads no episode (dashboards follow users): the tokens are still checked.
    expect((await revokedStream.next()).done).toBe(true);
    // The same sweep kept the other one.
    expect(feed.size).toBe(1);
  });

  it("an announced revocation ends that token's subscriptions at once, with no read", async () => {
    const owner = await findUserByEmail(orm.em.fork(), "alice@feed.test");
    const kept = await issueToken(orm.em.fork(), owner, "kept on announcement");
    const revoked = await issueToken(orm.em.fork(), owner, "announced");
    // No sweep within the test; the token is not even revoked in the database: the announcement
    // alone ends the subscriptions.
    feed = createEpisodeFeed({ orm, pubsub: handDriven, logger }, { tokenRecheckMs: 3_600_000 });
    await feed.start();
    const told: string[] = [];
    feed.onRevoked((tokenHash) => told.push(tokenHash));
    feed.followUserEpisodes({ userId: alice.userId, tokenHash: kept.token.tokenHash });
    const revokedSubscriber = { userId: alice.userId, tokenHash: revoked.token.tokenHash };
    const dashboard = feed.followUserEpisodes(revokedSubscriber);
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const episodeStream = feed.followEpisode(revokedSubscriber, episode.id);
    expect((await episodeStream.next()).done).toBe(false);
    expect(feed.size).toBe(3);

    listener.revoked(revoked.token.tokenHash);
    expect(feed.size).toBe(1);
    expect((await dashboard.next()).done).toBe(true);
    expect((await episodeStream.next()).done).toBe(true);
    expect(told).toEqual([revoked.token.tokenHash]);
  });

  it("checks a new dashboard's token in its first burst, so no carried change reaches a token revoked before it joined", async () => {
    const owner = await findUserByEmail(orm.em.fork(), "alice@feed.test");
    const revoked = await issueToken(orm.em.fork(), owner, "revoked before joining");
    feed = createEpisodeFeed({ orm, pubsub: handDriven, logger }, { tokenRecheckMs: 3_600_000 });
    await feed.start();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const known = feed.followEpisode(alice, episode.id);
    await known.next();
    // Authorised, then revoked and announced (before it joined: it never hears that), then it
    // joins; a change its announcement carries follows, which reads nothing.
    await revokeToken(orm.em.fork(), revoked.token.id);
    const dashboard = feed.followUserEpisodes({
      userId: alice.userId,
      tokenHash: revoked.token.tokenHash,
    });
    await changeTask(deps(), episode, episode.tasks.AUDIO_EXTRACTION.id, { progress: 3 });
    listener.change({
      episodeId: episode.id,
      userId: alice.userId,
      txid: String(Number.MAX_SAFE_INTEGER),
      task: [
        episode.tasks.AUDIO_EXTRACTION.id,
        "AUDIO_EXTRACTION",
        "PENDING",
        "3",
        null,
        null,
        episode.tasks.AUDIO_EXTRACTION.engineTaskId,
        "1",
        "0",
      ],
    });
    expect((await dashboard.next()).done).toBe(true);
    expect((await known.next()).done).toBe(false);
  });
});

describe("announced task states", () => {
  /** The database's own announcements, held until the test hands them to the feed. */
  /** Payloads as the database sent them. */
  let announced: { take(count: number): Promise<string[]>; close(): Promise<void> } | null = null;
  const reads: string[] = [];
  let readingOrm: Orm;

  beforeAll(async () => {
    readingOrm = await openOrm(database.url, logger, {
      onQuery: (sql) => {
        if (sql.includes("pg_current_snapshot")) reads.push(sql);
      },
    });
  });
  afterEach(async () => {
    await announced?.close();
    announced = null;
  });
  afterAll(async () => {
    await readingOrm?.close();
  });

  async function listenToDatabase() {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const heard: string[] = [];
    client.on("notification", (message) => heard.push(message.payload ?? ""));
    await client.query(`listen ${CHANGES_CHANNEL}`);
    announced = {
      async take(count) {
        await expect.poll(() => heard.length, { timeout: 10_000, interval: 5 }).toBe(count);
        return heard.splice(0, count);
      },
      close: () => client.end(),
    };
    return announced;
  }

  /** Hands payloads to the feed as its listener would. */
  function hand(payloads: string[]): void {
    for (const payload of payloads) {
      const notice = parseNotification(payload);
      if (!notice) throw new Error(`not an announcement: ${payload}`);
      dispatchNotification(notice, listener);
    }
  }

  async function startReadingFeed(): Promise<EpisodeFeed> {
    feed = createEpisodeFeed({ orm: readingOrm, pubsub: handDriven, logger });
    await feed.start();
    return feed;
  }

  async function nextState(stream: AsyncIterableIterator<EpisodeUpdate>): Promise<EpisodeUpdate> {
    const result = await stream.next();
    if (result.done) throw new Error("the stream ended");
    return result.value;
  }

  /** What a subscriber starting now is sent first: the episode as a read gives it. */
  async function readNow(episodeId: string): Promise<EpisodeUpdate> {
    const stream = feed.followEpisode(alice, episodeId);
    const state = await nextState(stream);
    await stream.return?.();
    return state;
  }

  const sql = (text: string, values: unknown[]) => orm.em.fork().execute(text, values);

  it("applies a change its announcement carried without reading, giving what a read gives", async () => {
    await startReadingFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const stream = feed.followEpisode(alice, episode.id);
    await nextState(stream);
    const heard = await listenToDatabase();
    const { AUDIO_EXTRACTION: audio, CHAPTER_DETECTION: chapters } = episode.tasks;

    const changes: Array<() => Promise<unknown>> = [
      () => changeTask(deps(), episode, audio.id, { status: "PROCESSING", progress: 10 }),
      () =>
        changeTask(deps(), episode, chapters.id, { status: "FAILED", errorMessage: "No speech" }),
      // A retry's new attempt replaces the failed one.
      () =>
        sql(
          `insert into processing_tasks (id, episode_id, type, attempt, round, engine_task_id, status, created_at, updated_at)
           values (?, ?, 'CHAPTER_DETECTION', 2, 2, ?, 'PENDING', now(), now())`,
          [randomUUID(), episode.id, `task_${randomUUID()}`],
        ),
      // A change of the failed attempt shows nowhere: the newer one is the episode's.
      () =>
        sql("update processing_tasks set error_message = 'Still no speech' where id = ?", [
          chapters.id,
        ]),
      () =>
        sql(
          `update processing_tasks set status = 'COMPLETED', progress = 100,
             output_url = 'https://media.test/audio.mp3', updated_at = clock_timestamp() where id = ?`,
          [audio.id],
        ),
    ];
    for (const change of changes) {
      await change();
      // The task's change, then its transaction's end.
      const announcements = await heard.take(2);
      expect(announcements.map((payload) => JSON.parse(payload))).toEqual([
        expect.objectContaining({ txid: expect.any(String), task: expect.any(Array) }),
        { txEnd: JSON.parse(announcements[0] ?? "").txid },
      ]);
      reads.length = 0;
      hand(announcements);
      const carried = await nextState(stream);
      expect(reads).toEqual([]);
      expect(carried).toStrictEqual(await readNow(episode.id));
    }
    const last = await readNow(episode.id);
    expect(last.tasks.map((task) => [task.type, task.status, task.attempt])).toEqual([
      ["AUDIO_EXTRACTION", "COMPLETED", 1],
      ["VIDEO_TRANSCODE", "PENDING", 1],
      ["TRANSCRIPT_GENERATION", "PENDING", 1],
      ["CHAPTER_DETECTION", "PENDING", 2],
    ]);
  });

  it("reads the episode when a task is too large to carry, or the episode itself changed", async () => {
    await startReadingFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const stream = feed.followEpisode(alice, episode.id);
    await nextState(stream);
    const heard = await listenToDatabase();

    const longError = "x".repeat(9_000);
    await changeTask(deps(), episode, episode.tasks.VIDEO_TRANSCODE.id, {
      status: "FAILED",
      errorMessage: longError,
    });
    const tooLarge = await heard.take(2);
    expect(JSON.parse(tooLarge[0] ?? "")).toEqual({ episodeId: episode.id, userId: alice.userId });
    reads.length = 0;
    hand(tooLarge);
    const read = await nextState(stream);
    expect(reads).toHaveLength(1);
    expect(read.tasks.find((task) => task.type === "VIDEO_TRANSCODE")?.errorMessage).toBe(
      longError,
    );

    // An episode's change and a task's, in one transaction: the episode is read.
    await orm.em.fork().transactional(async (em) => {
      await em.execute("update episodes set title = 'Renamed' where id = ?", [episode.id]);
      await em.execute("update processing_tasks set progress = 5 where id = ?", [
        episode.tasks.AUDIO_EXTRACTION.id,
      ]);
    });
    reads.length = 0;
    hand(await heard.take(3));
    const both = await nextState(stream);
    expect(reads).toHaveLength(1);
    expect(both.episode.title).toBe("Renamed");
    expect(both.tasks[0]?.progress).toBe(5);
  });

  it("skips a carried change that the state it was read with already holds", async () => {
    await startReadingFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const audio = episode.tasks.AUDIO_EXTRACTION.id;
    const early = feed.followEpisode(alice, episode.id);
    await nextState(early);
    const heard = await listenToDatabase();

    // Two commits, announced only after a read that holds both (the second subscriber's first
    // state): as if their notifications were still on their way while it loaded.
    await changeTask(deps(), episode, audio, { progress: 10 });
    await changeTask(deps(), episode, audio, { progress: 20 });
    const late = feed.followEpisode(alice, episode.id);
    expect((await nextState(late)).tasks[0]?.progress).toBe(20);
    reads.length = 0;
    const progress = [];
    const announcements = await heard.take(4);
    for (const transaction of [announcements.slice(0, 2), announcements.slice(2)]) {
      hand(transaction);
      progress.push((await nextState(late)).tasks[0]?.progress);
    }
    // Each burst sent the state as it is, never back to 10, and read nothing.
    expect(progress).toEqual([20, 20]);
    expect(reads).toEqual([]);
    await early.return?.();
  });

  it("reads an episode again once an announcement of it went by while nobody here followed it", async () => {
    await startReadingFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const audio = episode.tasks.AUDIO_EXTRACTION.id;
    const first = feed.followEpisode(alice, episode.id);
    await nextState(first);
    const heard = await listenToDatabase();
    await first.return?.();

    await expect.poll(() => feed.size).toBe(0);

    // Announced while nobody follows it: the state the feed knew is now behind.
    await changeTask(deps(), episode, audio, { progress: 40 });
    hand(await heard.take(2));
    // Bursts run one after another: once another episode's first state is here, that one ran.
    await readNow((await insertProcessingEpisode(deps(), alice.userId)).id);
    await heard.take(6);
    // A dashboard starts (it is sent no first state), then another change is announced.
    const dashboard = feed.followUserEpisodes(alice);
    await changeTask(deps(), episode, episode.tasks.VIDEO_TRANSCODE.id, { progress: 7 });
    reads.length = 0;
    hand(await heard.take(2));
    const state = await nextState(dashboard);
    expect(reads).toHaveLength(1);
    expect(state.tasks.map((task) => task.progress)).toEqual([40, 7, null, null]);
  });

  it("applies a transaction's carried changes only once its end is heard, else reads", async () => {
    await startReadingFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const stream = feed.followEpisode(alice, episode.id);
    await nextState(stream);
    const heard = await listenToDatabase();
    const { AUDIO_EXTRACTION: audio, VIDEO_TRANSCODE: video } = episode.tasks;
    await orm.em.fork().transactional(async (em) => {
      await em.execute("update processing_tasks set progress = 60 where id = ?", [audio.id]);
      await em.execute("update processing_tasks set progress = 30 where id = ?", [video.id]);
    });
    const [first, second, end] = await heard.take(3);
    // The first of the two heard alone (the rest in a later network read): not applied, read.
    reads.length = 0;
    hand([first ?? ""]);
    const read = await nextState(stream);
    expect(reads).toHaveLength(1);
    expect(read.tasks.slice(0, 2).map((task) => task.progress)).toEqual([60, 30]);
    // The rest, with the end: applied without reading (the state already holds it).
    hand([second ?? "", end ?? ""]);
    expect((await nextState(stream)).tasks.slice(0, 2).map((task) => task.progress)).toEqual([
      60, 30,
    ]);
    expect(reads).toHaveLength(1);
  });

  it("reads for a follower joining the burst: carried changes may be older than its start", async () => {
    await startReadingFeed();
    const episode = await insertProcessingEpisode(deps(), alice.userId);
    const stream = feed.followEpisode(alice, episode.id);
    await nextState(stream);
    const heard = await listenToDatabase();
    await changeTask(deps(), episode, episode.tasks.AUDIO_EXTRACTION.id, { progress: 10 });
    await changeTask(deps(), episode, episode.tasks.VIDEO_TRANSCODE.id, { progress: 5 });
    const [firstChange, firstEnd] = await heard.take(4);
    // The second commit is not heard yet when a dashboard joins the burst of the first.
    hand([firstChange ?? "", firstEnd ?? ""]);
    const dashboard = feed.followUserEpisodes(alice);
    const state = await nextState(dashboard);
    expect(state.tasks.slice(0, 2).map((task) => task.progress)).toEqual([10, 5]);
  });
});
