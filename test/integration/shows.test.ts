/**
 * Shows through the API: creation with Apple's rules checked (category, language, e-mail, cover
 * art measured at its URL), pages of shows, changes, and ownership — another producer's show is
 * not found, and can be neither changed nor used.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadEpisode } from "../support/pipeline.ts";
import { createShow, makePng, SHOW_FIELDS, showInput, startImageHost } from "../support/podcast.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import { follow, subscribeWs } from "../support/subscriptions.ts";

let scenario: Scenario;
let imageHost: Awaited<ReturnType<typeof startImageHost>>;
let pat: TestProducer;
let sam: TestProducer;

beforeAll(async () => {
  imageHost = await startImageHost();
  // The cover art server is on loopback: listed, as an operator lists an internal host.
  scenario = await startScenario({ outputHosts: [new URL(imageHost.url).host] });
  pat = await scenario.producer();
  sam = await scenario.producer();
});
afterAll(async () => {
  await scenario?.stop();
  await imageHost?.close();
});

const CREATE = `mutation($input: CreateShowInput!) { createShow(input: $input) {
  __typename ... on ShowPayload { show { ${SHOW_FIELDS} } }
  ... on ValidationError { message fields problems { field message } } } }`;

const UPDATE = `mutation($input: UpdateShowInput!) { updateShow(input: $input) {
  __typename ... on ShowPayload { show { ${SHOW_FIELDS} } }
  ... on Error { message } ... on ValidationError { fields } } }`;

const showCount = async () =>
  ((await scenario.em().execute("select count(*)::int as n from shows"))[0]?.n as number) ?? 0;

type Problems = { __typename: string; fields: string[]; problems: { message: string }[] };

async function createProblems(input: Record<string, unknown>): Promise<Problems> {
  const answer = await pat.gql<{ createShow: Problems }>(CREATE, { input });
  return answer.body.data?.createShow as Problems;
}

describe("shows", () => {
  it("are created with a stable slug feed URL and podcast:guid, and listed in pages", async () => {
    const first = await createShow(pat, showInput(imageHost.url, { title: "Café Talk!" }));
    expect(first.feedUrl).toBe(`${scenario.url}/feeds/cafe-talk.xml`);
    expect(first.podcastGuid).toMatch(/^[0-9a-f-]{36}$/);
    // The same title again: another slug, never the same feed.
    const second = await createShow(pat, showInput(imageHost.url, { title: "Café Talk!" }));
    expect(second.feedUrl).toMatch(
      new RegExp(`^${scenario.url}/feeds/cafe-talk-[0-9a-f]{6}\\.xml$`),
    );
    expect(second.podcastGuid).not.toBe(first.podcastGuid);

    const page = await pat.gql<{
      shows: {
        edges: { node: { id: string } }[];
        pageInfo: { hasNextPage: boolean; endCursor: string };
      };
    }>(`{ shows(first: 1) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`);
    expect(page.body.data?.shows.edges.map((edge) => edge.node.id)).toEqual([second.id]);
    expect(page.body.data?.shows.pageInfo.hasNextPage).toBe(true);
    const next = await pat.gql<{ shows: { edges: { node: { id: string } }[] } }>(
      `query($after: String) { shows(first: 5, after: $after) { edges { node { id } } } }`,
      { after: page.body.data?.shows.pageInfo.endCursor },
    );
    expect(next.body.data?.shows.edges.map((edge) => edge.node.id)).toEqual([first.id]);

    const one = await pat.gql<{ show: { title: string } }>(
      `query($id: ID!) { show(id: $id) { title } }`,
      { id: first.id },
    );
    expect(one.body.data?.show.title).toBe("Café Talk!");
  });

  it("give a private show an unguessable feed URL", async () => {
    const show = await createShow(pat, showInput(imageHost.url, { isPrivate: true }));
    expect(show.feedUrl).toMatch(new RegExp(`^${scenario.url}/feeds/[A-Za-z0-9_-]{22}\\.xml$`));
    const feed = await fetch(show.feedUrl);
    expect(feed.status).toBe(200);
    expect(await feed.text()).toContain("<itunes:block>Yes</itunes:block>");
  });

  it("refuse bad fields with a reason for each, and create nothing", async () => {
    const before = await showCount();
    const bad = await createProblems(
      showInput(imageHost.url, {
        title: " ",
        ownerEmail: "not-an-email",
        language: "english",
        imageUrl: "ftp://example.com/cover.png",
        link: "javascript:alert(1)",
      }),
    );
    expect(bad.__typename).toBe("ValidationError");
    expect(bad.fields.sort()).toEqual(["imageUrl", "language", "link", "ownerEmail", "title"]);

    const category = await createProblems(showInput(imageHost.url, { category: "Podcasts" }));
    expect(category.fields).toEqual(["category"]);
    expect(category.problems[0]?.message).toMatch(/not an Apple Podcasts category/);
    const subcategory = await createProblems(
      showInput(imageHost.url, { category: "News", subcategory: "Improv" }),
    );
    expect(subcategory.fields).toEqual(["subcategory"]);
    expect(subcategory.problems[0]?.message).toMatch(/Tech News/);
    const unknownLanguage = await createProblems(showInput(imageHost.url, { language: "qq" }));
    expect(unknownLanguage.fields).toEqual(["language"]);

    for (const [path, reason] of [
      ["/cover-1400x1000.png", /square/],
      ["/cover-1000x1000.png", /1400–3000 px/],
      ["/cover-3200x3200.png", /1400–3000 px/],
      ["/not-an-image.png", /not an image/],
      ["/missing.png", /could not be downloaded.*404/],
    ] as const) {
      const cover = await createProblems(
        showInput(imageHost.url, { imageUrl: `${imageHost.url}${path}` }),
      );
      expect(cover.fields, path).toEqual(["imageUrl"]);
      expect(cover.problems[0]?.message, path).toMatch(reason);
    }
    expect(await showCount()).toBe(before);

    // Apple's category names are taken as Apple spells them, ampersand included.
    const family = await createShow(
      pat,
      showInput(imageHost.url, { category: "Kids & Family", subcategory: "Stories for Kids" }),
    );
    const feed = await fetch(family.feedUrl).then((response) => response.text());
    expect(feed).toContain('<itunes:category text="Kids &amp; Family">');
  });

  it("change the fields given, keep the feed URL, and refuse bad values", async () => {
    const show = await createShow(pat, showInput(imageHost.url, { title: "Before" }));
    const feedBefore = await fetch(show.feedUrl);
    const etagBefore = feedBefore.headers.get("etag");
    const changed = await pat.gql<{
      updateShow: { __typename: string; show: Record<string, unknown> };
    }>(UPDATE, {
      input: {
        showId: show.id,
        title: "After",
        category: "News",
        subcategory: "Tech News",
        imageUrl: `${imageHost.url}/cover-3000x3000.png`,
      },
    });
    expect(changed.body.data?.updateShow.show).toMatchObject({
      title: "After",
      category: "News",
      subcategory: "Tech News",
      feedUrl: show.feedUrl,
      podcastGuid: show.podcastGuid,
    });
    // The feed says so at once: the show's change bumped its feed version.
    const feedAfter = await fetch(show.feedUrl);
    expect(feedAfter.headers.get("etag")).not.toBe(etagBefore);
    expect(await feedAfter.text()).toContain("<title>After</title>");

    // Moving away: unlocked, and apps told where the podcast went.
    await pat.gql(UPDATE, {
      input: { showId: show.id, locked: false, newFeedUrl: "https://elsewhere.example.com/feed" },
    });
    const moving = await fetch(show.feedUrl).then((response) => response.text());
    expect(moving).toContain('<podcast:locked owner="pat@example.com">no</podcast:locked>');
    expect(moving).toContain(
      "<itunes:new-feed-url>https://elsewhere.example.com/feed</itunes:new-feed-url>",
    );

    const refused = await pat.gql<{ updateShow: { __typename: string; fields: string[] } }>(
      UPDATE,
      {
        input: {
          showId: show.id,
          language: "xx-yyy",
          imageUrl: `${imageHost.url}/cover-10x10.png`,
        },
      },
    );
    expect(refused.body.data?.updateShow).toMatchObject({
      __typename: "ValidationError",
      fields: expect.arrayContaining(["language"]),
    });
    const still = await pat.gql<{ show: { language: string; title: string } }>(
      `query($id: ID!) { show(id: $id) { language title } }`,
      { id: show.id },
    );
    expect(still.body.data?.show).toEqual({ language: "en-us", title: "After" });
  });

  it("are not found by another producer, who can neither change nor use them", async () => {
    const show = await createShow(pat, showInput(imageHost.url, { title: "Pat's" }));
    const seen = await sam.gql<{ show: null }>(`query($id: ID!) { show(id: $id) { id } }`, {
      id: show.id,
    });
    expect(seen.body.data?.show).toBeNull();
    const node = await sam.gql<{ node: null }>(`query($id: ID!) { node(id: $id) { id } }`, {
      id: show.id,
    });
    expect(node.body.data?.node).toBeNull();
    const listed = await sam.gql<{ shows: { edges: unknown[] } }>(`{ shows { edges { cursor } } }`);
    expect(listed.body.data?.shows.edges).toEqual([]);

    const update = await sam.gql<{ updateShow: { __typename: string } }>(UPDATE, {
      input: { showId: show.id, title: "Sam's now" },
    });
    expect(update.body.data?.updateShow.__typename).toBe("NotFoundError");

    const prepared = await sam.gql<{ prepareUpload: { __typename: string } }>(
      `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) { __typename } }`,
      { input: { filename: "a.mp3", title: "Sneaky", filesize: 1000, showId: show.id } },
    );
    expect(prepared.body.data?.prepareUpload.__typename).toBe("NotFoundError");

    const samsEpisode = await uploadEpisode(scenario, sam, "Sam's episode");
    const moved = await sam.gql<{ setEpisodeShow: { __typename: string } }>(
      `mutation($input: SetEpisodeShowInput!) { setEpisodeShow(input: $input) { __typename } }`,
      { input: { episodeId: samsEpisode.id, showId: show.id } },
    );
    expect(moved.body.data?.setEpisodeShow.__typename).toBe("NotFoundError");
    const rows = await scenario
      .em()
      .execute("select count(*)::int as n from episodes where show_id = ?", [
        Buffer.from(show.id, "base64").toString().split(":")[1],
      ]);
    expect(rows[0]?.n).toBe(0);
    // Sam's attempt changed nothing: the feed still says Pat's title.
    expect(await fetch(show.feedUrl).then((r) => r.text())).toContain("<title>Pat's</title>");
  });

  it("take episodes, which can be published only once PROCESSED", async () => {
    const show = await createShow(pat, showInput(imageHost.url, { title: "Unprocessed" }));
    const episode = await uploadEpisode(scenario, pat, "Still processing");
    const moved = await pat.gql<{
      setEpisodeShow: { __typename: string; episode: { show: { id: string } } };
    }>(
      `mutation($input: SetEpisodeShowInput!) { setEpisodeShow(input: $input) {
         __typename ... on EpisodePayload { episode { show { id } } } } }`,
      { input: { episodeId: episode.id, showId: show.id } },
    );
    expect(moved.body.data?.setEpisodeShow.episode.show.id).toBe(show.id);

    const published = await pat.gql<{ publishEpisode: { __typename: string; message: string } }>(
      `mutation($input: PublishEpisodeInput!) { publishEpisode(input: $input) {
         __typename ... on Error { message } } }`,
      { input: { episodeId: episode.id } },
    );
    expect(published.body.data?.publishEpisode).toEqual({
      __typename: "ConflictError",
      message: expect.stringMatching(
        /Only a processed episode can be published; this one is (uploaded|processing)/,
      ),
    });
    const row = (
      await scenario
        .em()
        .execute("select published, publish_at, feed_guid from episodes where id = ?", [
          episode.uuid,
        ])
    )[0];
    expect(row).toEqual({ published: false, publish_at: null, feed_guid: null });

    const numbered = await pat.gql<{ publishEpisode: { __typename: string; fields: string[] } }>(
      `mutation($input: PublishEpisodeInput!) { publishEpisode(input: $input) {
         __typename ... on ValidationError { fields } } }`,
      { input: { episodeId: episode.id, episodeNumber: 0, seasonNumber: -2 } },
    );
    expect(numbered.body.data?.publishEpisode).toEqual({
      __typename: "ValidationError",
      fields: ["episodeNumber", "seasonNumber"],
    });

    // Another producer cannot publish it either: it is not found.
    const bySam = await sam.gql<{ publishEpisode: { __typename: string } }>(
      `mutation($input: PublishEpisodeInput!) { publishEpisode(input: $input) { __typename } }`,
      { input: { episodeId: episode.id } },
    );
    expect(bySam.body.data?.publishEpisode.__typename).toBe("NotFoundError");
  });

  it("announce a show's change to the subscribers of its episodes", async () => {
    const show = await createShow(pat, showInput(imageHost.url, { title: "Old name" }));
    const episode = await uploadEpisode(scenario, pat, "Followed");
    await pat.gql(
      `mutation($input: SetEpisodeShowInput!) { setEpisodeShow(input: $input) { __typename } }`,
      { input: { episodeId: episode.id, showId: show.id } },
    );
    const updates = await follow<{ episodeUpdated: { show: { title: string } | null } }>(
      subscribeWs,
      scenario.podflow,
      pat.token,
      `subscription($id: ID!) { episodeUpdated(id: $id) { show { title } } }`,
      { id: episode.id },
    );
    const seen =
      (title: string) =>
      (message: { data?: { episodeUpdated: { show: { title: string } | null } } | null }) =>
        message.data?.episodeUpdated.show?.title === title;
    await updates.waitFor(seen("Old name"));
    await pat.gql(UPDATE, { input: { showId: show.id, title: "New name" } });
    await updates.waitFor(seen("New name"));
    updates.close();
  });

  it("take cover art uploaded to Podflow, checked and served with a new URL each time", async () => {
    const show = await createShow(pat, showInput(imageHost.url, { imageUrl: undefined }));
    const noArt = await fetch(show.feedUrl).then((response) => response.text());
    expect(noArt).not.toContain("itunes:image");

    const PREPARE = `mutation($input: PrepareCoverUploadInput!) { prepareCoverUpload(input: $input) {
      __typename ... on CoverUploadTarget { url method } ... on Error { message } } }`;
    const bySam = await sam.gql<{ prepareCoverUpload: { __typename: string } }>(PREPARE, {
      input: { showId: show.id },
    });
    expect(bySam.body.data?.prepareCoverUpload.__typename).toBe("NotFoundError");
    const prepared = await pat.gql<{ prepareCoverUpload: { url: string; method: string } }>(
      PREPARE,
      { input: { showId: show.id } },
    );
    const target = prepared.body.data?.prepareCoverUpload as { url: string; method: string };
    expect(target.method).toBe("PUT");

    const put = (url: string, body: Buffer) =>
      fetch(url, { method: "PUT", body: new Uint8Array(body) });
    // Art that breaks Apple's rules is refused with the reason, and changes nothing.
    const small = await put(target.url, makePng(600, 600));
    expect(small.status).toBe(422);
    expect(((await small.json()) as { error: string }).error).toMatch(/1400–3000 px/);
    const forged = target.url.replace(/signature=[^&]+/, "signature=forged");
    expect((await put(forged, makePng(1400, 1400))).status).toBe(403);

    const png = makePng(1400, 1400);
    const uploaded = await put(target.url, png);
    expect(uploaded.status).toBe(201);
    const { imageUrl } = (await uploaded.json()) as { imageUrl: string };
    expect(imageUrl).toMatch(new RegExp(`^${scenario.url}/covers/[A-Za-z0-9_-]{22}\\.png$`));
    const served = await fetch(imageUrl);
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await served.arrayBuffer())).toEqual(png);
    expect((await fetch(imageUrl, { method: "HEAD" })).headers.get("content-length")).toBe(
      String(png.length),
    );
    const feed = await fetch(show.feedUrl).then((response) => response.text());
    expect(feed).toContain(`<itunes:image href="${imageUrl}"/>`);

    // New art, new URL (Apple keys its cache on the URL).
    const again = await put(target.url, makePng(1600, 1600));
    expect(((await again.json()) as { imageUrl: string }).imageUrl).not.toBe(imageUrl);
  });
});
