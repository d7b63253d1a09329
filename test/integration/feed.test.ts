/**
 * A show's podcast feed end to end with the local engine: episodes processed by the real
 * pipeline, published now and on a schedule, read back with a real XML parser and checked against
 * the validators' rules; conditional requests, gzip, the cache that never reads the episodes
 * table for an unchanged feed; and the exports the feed points at.
 */
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import pg from "pg";
import SrtParser from "srt-parser-2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebVTTParser } from "webvtt-parser";
import { publishWhenDue } from "../../src/services/publishing.ts";
import { podcastGuidFor } from "../../src/services/shows.ts";
import { expectValidFeed, type Item, type Node } from "../support/feed.ts";
import { makeMediaDir, makeQuietAudio, testMediaTools } from "../support/media.ts";
import { episodeRow, waitUntil } from "../support/pipeline.ts";
import { createShow, processLocalEpisode, showInput, startImageHost } from "../support/podcast.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import { follow, subscribeWs } from "../support/subscriptions.ts";

const tools = testMediaTools();
let scenario: Scenario;
let imageHost: Awaited<ReturnType<typeof startImageHost>>;
let media: Awaited<ReturnType<typeof makeMediaDir>>;
let producer: TestProducer;
let show: { id: string; feedUrl: string; podcastGuid: string };
let first: { id: string; uuid: string };
let second: { id: string; uuid: string };

beforeAll(async () => {
  media = await makeMediaDir();
  const audio = await readFile(await makeQuietAudio(tools, media.dir, 4));
  imageHost = await startImageHost();
  scenario = await startScenario({
    env: { PODFLOW_MEDIA_ENGINE: "local" },
    // The cover art server is on loopback: listed, as an operator lists an internal host.
    outputHosts: [new URL(imageHost.url).host],
  });
  producer = await scenario.producer();
  show = await createShow(producer, showInput(imageHost.url, { title: "Feed Test" }));
  [first, second] = await Promise.all([
    processLocalEpisode(scenario, producer, { title: "First", file: audio, showId: show.id }),
    processLocalEpisode(scenario, producer, { title: "Second", file: audio, showId: null }),
  ]);
}, 300_000);
afterAll(async () => {
  await scenario?.stop();
  await imageHost?.close();
  await media?.cleanup();
});

const PUBLISH = `mutation($input: PublishEpisodeInput!) { publishEpisode(input: $input) {
  __typename ... on EpisodePayload { episode { published publishAt feedGuid episodeNumber episodeType } }
  ... on Error { message } } }`;

async function publish(input: Record<string, unknown>) {
  const answer = await producer.gql<{
    publishEpisode: { __typename: string; message?: string; episode: Record<string, unknown> };
  }>(PUBLISH, { input });
  return answer.body.data?.publishEpisode;
}

async function readFeed(headers: Record<string, string> = {}) {
  const response = await fetch(show.feedUrl, { headers });
  return { response, text: await response.text() };
}

const guidOf = (item: Item) => String((item.guid as Node)["#text"]);
const itemTitles = async () => expectValidFeed((await readFeed()).text).items.map((i) => i.title);

describe("the podcast feed", () => {
  it("lists a published episode with every required tag and the MP3's exact length", async () => {
    expect((await readFeed()).response.status).toBe(200);
    expect(await itemTitles()).toEqual([]);

    const published = await publish({
      episodeId: first.id,
      episodeNumber: 1,
      seasonNumber: 1,
      episodeType: "FULL",
    });
    expect(published).toMatchObject({
      __typename: "EpisodePayload",
      episode: { published: true, feedGuid: first.uuid, episodeNumber: 1, episodeType: "FULL" },
    });

    const { response, text } = await readFeed();
    expect(response.headers.get("content-type")).toBe("application/rss+xml; charset=utf-8");
    expect(response.headers.get("cache-control")).toMatch(/max-age=\d+/);
    const { channel, items } = expectValidFeed(text);
    expect(channel.title).toBe("Feed Test");
    expect(channel["podcast:guid"]).toBe(show.podcastGuid);
    expect(show.podcastGuid).toBe(podcastGuidFor(show.feedUrl));
    expect((channel["podcast:locked"] as Node)["@_owner"]).toBe("pat@example.com");
    expect(items).toHaveLength(1);
    const item = items[0] as Item;
    expect(item.title).toBe("First");
    expect(guidOf(item)).toBe(first.uuid);
    expect(item["itunes:episode"]).toBe("1");

    // The enclosure is Podflow's own MP3 URL, with the exact bytes the URL serves.
    const enclosure = item.enclosure as Node;
    const row = await episodeRow(scenario, first.uuid);
    expect(enclosure["@_url"]).toBe(row.audio_url);
    const mp3 = Buffer.from(await (await fetch(String(enclosure["@_url"]))).arrayBuffer());
    expect(Number(enclosure["@_length"])).toBe(mp3.length);
    expect(Number(row.audio_bytes)).toBe(mp3.length);
    expect(Number(item["itunes:duration"])).toBe(4);
  });

  it("answers 304 to a repeated request, gzips when asked, and never reads episodes for it", async () => {
    const { response, text } = await readFeed();
    const etag = response.headers.get("etag") as string;
    const lastModified = response.headers.get("last-modified") as string;
    expect(etag).toBeTruthy();
    expect(new Date(lastModified).toUTCString()).toBe(lastModified);
    expect((await fetch(show.feedUrl, { headers: { "if-none-match": etag } })).status).toBe(304);
    expect(
      (await fetch(show.feedUrl, { headers: { "if-modified-since": lastModified } })).status,
    ).toBe(304);

    const raw = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve) => {
      import("node:http").then(({ get }) =>
        get(show.feedUrl, { headers: { "accept-encoding": "gzip" } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({ encoding: res.headers["content-encoding"], body: Buffer.concat(chunks) }),
          );
        }),
      );
    });
    expect(raw.encoding).toBe("gzip");
    expect(gunzipSync(raw.body).toString("utf8")).toBe(text);

    // With the episodes table locked by another transaction, an unchanged feed is still served:
    // it comes from the cache, checked against the show's row alone.
    const blocker = new pg.Client({ connectionString: scenario.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query("begin");
      await blocker.query("lock table episodes in access exclusive mode");
      const cached = await readFeed();
      expect(cached.response.status).toBe(200);
      expect(cached.text).toBe(text);
      expect((await fetch(show.feedUrl, { headers: { "if-none-match": etag } })).status).toBe(304);
    } finally {
      await blocker.query("rollback");
      await blocker.end();
    }

    // Any change of one of the show's episodes, by whatever writer, is a new feed.
    await scenario
      .em()
      .execute("update episodes set title = 'First, renamed' where id = ?", [first.uuid]);
    const changed = await readFeed({ "if-none-match": etag });
    expect(changed.response.status).toBe(200);
    expect(changed.response.headers.get("etag")).not.toBe(etag);
    expect(expectValidFeed(changed.text).items[0]?.title).toBe("First, renamed");
  });

  it("shows a scheduled episode only once its time has come, announcing it to subscribers", async () => {
    const moved = await producer.gql<{ setEpisodeShow: { __typename: string } }>(
      `mutation($input: SetEpisodeShowInput!) { setEpisodeShow(input: $input) { __typename } }`,
      { input: { episodeId: second.id, showId: show.id } },
    );
    expect(moved.body.data?.setEpisodeShow.__typename).toBe("EpisodePayload");
    const updates = await follow<{ episodeUpdated: { published: boolean } }>(
      subscribeWs,
      scenario.podflow,
      producer.token,
      `subscription($id: ID!) { episodeUpdated(id: $id) { published } }`,
      { id: second.id },
    );
    const publishAt = new Date(Date.now() + 3_000);
    // An episode moved from another host keeps the GUID its listeners' apps know.
    const scheduled = await publish({
      episodeId: second.id,
      publishAt: publishAt.toISOString(),
      episodeType: "BONUS",
      guid: "oldhost:episode-2",
    });
    expect(scheduled).toMatchObject({
      episode: { published: false, publishAt: publishAt.toISOString() },
    });
    expect(await itemTitles()).toEqual(["First, renamed"]);

    const titles = await waitUntil(
      itemTitles,
      (list) => list.length === 2,
      "the scheduled episode",
      30_000,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(publishAt.getTime());
    expect(titles).toEqual(["Second", "First, renamed"]);
    await updates.waitFor((message) => message.data?.episodeUpdated.published === true, {
      timeoutMs: 10_000,
    });
    updates.close();

    const { items } = expectValidFeed((await readFeed()).text);
    const second_ = items[0] as Item;
    expect(second_.pubDate).toBe(publishAt.toUTCString());
    expect(second_["itunes:episodeType"]).toBe("bonus");
    expect(items.map(guidOf)).toEqual(["oldhost:episode-2", first.uuid]);
  });

  it("drops an unpublished episode, and keeps its GUID when it is published again", async () => {
    const unpublished = await producer.gql<{
      unpublishEpisode: { episode: { published: boolean } };
    }>(
      `mutation($input: UnpublishEpisodeInput!) { unpublishEpisode(input: $input) {
         ... on EpisodePayload { episode { published } } } }`,
      { input: { episodeId: first.id } },
    );
    expect(unpublished.body.data?.unpublishEpisode.episode.published).toBe(false);
    expect(await itemTitles()).toEqual(["Second"]);
    // A publish-episode job of an earlier schedule, run late or again, publishes nothing.
    await publishWhenDue(scenario.podflow.deps, {
      episodeId: first.uuid,
      publishAt: new Date().toISOString(),
    });
    expect((await episodeRow(scenario, first.uuid)).published).toBe(false);
    expect(await itemTitles()).toEqual(["Second"]);

    // Its GUID is fixed: another one later is refused.
    expect(await publish({ episodeId: first.id, guid: "another" })).toMatchObject({
      __typename: "ConflictError",
      message: expect.stringMatching(/fixed at its first publication/),
    });
    // Published again with a past date (a back catalogue): at once, under that date, same GUID.
    expect(
      await publish({ episodeId: first.id, publishAt: "2020-01-15T10:00:00.000Z" }),
    ).toMatchObject({ episode: { feedGuid: first.uuid, published: true } });
    const { items } = expectValidFeed((await readFeed()).text);
    expect(items.map(guidOf)).toEqual(["oldhost:episode-2", first.uuid]);
    expect(items[1]?.pubDate).toBe("Wed, 15 Jan 2020 10:00:00 GMT");
  });

  it("points at exports served with their types and ETags, which parse back into the transcript", async () => {
    // The test model recognises nothing: the transcript a speech model would have made.
    const segments = [
      { start: 0, end: 1.5, text: "Hello & welcome." },
      { start: 1.5, end: 4, text: "This is the feed test." },
    ];
    await scenario
      .em()
      .execute("update episodes set transcript = ?, transcript_segments = ? where id = ?", [
        "Hello & welcome. This is the feed test.",
        JSON.stringify(segments),
        first.uuid,
      ]);
    const answer = await producer.gql<{
      episode: { exports: Record<string, string | null> };
    }>(
      `query($id: ID!) { episode(id: $id) { exports { vttUrl srtUrl jsonTranscriptUrl chaptersUrl textUrl } } }`,
      { id: first.id },
    );
    const exports = answer.body.data?.episode.exports as Record<string, string>;
    expect(exports.vttUrl).toMatch(
      new RegExp(`^${scenario.url}/exports/${first.uuid}/[A-Za-z0-9_-]{22}/transcript\\.vtt$`),
    );

    const { items } = expectValidFeed((await readFeed()).text);
    const item = items.find((i) => guidOf(i) === first.uuid) as Item;
    const links = (item["podcast:transcript"] as Node[]).map((t) => [t["@_type"], t["@_url"]]);
    expect(links).toEqual([
      ["text/vtt", exports.vttUrl],
      ["application/x-subrip", exports.srtUrl],
      ["application/json", exports.jsonTranscriptUrl],
    ]);
    expect((item["podcast:chapters"] as Node)["@_url"]).toBe(exports.chaptersUrl);

    const vtt = await fetch(exports.vttUrl as string);
    expect(vtt.headers.get("content-type")).toBe("text/vtt; charset=utf-8");
    expect(vtt.headers.get("access-control-allow-origin")).toBe("*");
    const parsed = new WebVTTParser().parse(await vtt.text(), "metadata");
    expect(parsed.errors).toEqual([]);
    expect(parsed.cues.map((c) => [c.startTime, c.endTime, c.text])).toEqual([
      [0, 1.5, "Hello &amp; welcome."],
      [1.5, 4, "This is the feed test."],
    ]);
    const etag = vtt.headers.get("etag") as string;
    expect(
      (await fetch(exports.vttUrl as string, { headers: { "if-none-match": etag } })).status,
    ).toBe(304);

    const srt = await fetch(exports.srtUrl as string);
    expect(srt.headers.get("content-type")).toBe("application/x-subrip; charset=utf-8");
    expect(
      new SrtParser().fromSrt(await srt.text()).map((c) => [c.startSeconds, c.endSeconds, c.text]),
    ).toEqual(segments.map((s) => [s.start, s.end, s.text]));
    const json = await fetch(exports.jsonTranscriptUrl as string);
    expect(json.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(((await json.json()) as { segments: unknown[] }).segments).toHaveLength(2);
    const chapters = await fetch(exports.chaptersUrl as string);
    expect(chapters.headers.get("content-type")).toBe("application/json+chapters; charset=utf-8");
    const chaptersJson = (await chapters.json()) as {
      version: string;
      chapters: { startTime: number }[];
    };
    expect(chaptersJson.version).toBe("1.2.0");
    expect(chaptersJson.chapters[0]?.startTime).toBe(0);
    const text = await fetch(exports.textUrl as string);
    expect(await text.text()).toBe("Hello & welcome. This is the feed test.\n");

    // Another key, or a file that is not an export, finds nothing.
    const forged = (exports.vttUrl as string).replace(
      /\/[A-Za-z0-9_-]{22}\//,
      `/${"A".repeat(22)}/`,
    );
    expect((await fetch(forged)).status).toBe(404);
  });
});
