import { randomUUID } from "node:crypto";
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
  type Subscriber,
  type TaskUpdate,
} from "../../src/services/episode-feed/index.ts";
import type { ChangeListener, PubSub } from "../../src/services/pubsub.ts";
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
});
