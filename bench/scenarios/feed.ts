import { performance } from "node:perf_hooks";
import { XMLParser } from "fast-xml-parser";
import { create } from "xmlbuilder2";
import { Show } from "../../src/entities/show.entity.ts";
import { buildShowFeed, feedShow, loadFeedItems } from "../../src/services/feed/feed-http.ts";
import { type FeedItem, type FeedShow, NAMESPACES, rfc2822 } from "../../src/services/feed/rss.ts";
import { withClient } from "../support/environment.ts";
import { startInProcessPodflow } from "../support/podflow.ts";
import { check, figure } from "../support/results.ts";
import {
  type BenchScenario,
  inAlternateOrder,
  type ScenarioContext,
  type ScenarioOutcome,
} from "../support/scenario.ts";
import { seedProducer } from "../support/seed.ts";
import { latencyPercentiles, median } from "../support/stats.ts";

// Scenario 6: a show's feed of 1,000 published episodes, built by Podflow (one query, the items,
// xmlbuilder2) against xmlbuilder2 alone serialising the same items from a ready-made object;
// and a repeated request, which the cache answers reading only the show's row.

interface Sizes {
  episodes: number;
  rounds: number;
  buildsPerRound: number;
  requestsPerRound: number;
}

const FULL: Sizes = { episodes: 1_000, rounds: 5, buildsPerRound: 20, requestsPerRound: 200 };
const QUICK: Sizes = { episodes: 1_000, rounds: 3, buildsPerRound: 5, requestsPerRound: 50 };

/** The same document as src/services/feed/rss.ts writes, as the object xmlbuilder2 converts. */
function feedObject(show: FeedShow, items: readonly FeedItem[]) {
  const text = (value: string) => ({ "#": value });
  return {
    rss: {
      "@version": "2.0",
      "@xmlns:itunes": NAMESPACES.itunes,
      "@xmlns:podcast": NAMESPACES.podcast,
      "@xmlns:atom": NAMESPACES.atom,
      channel: {
        title: text(show.title),
        link: text(show.link ?? show.feedUrl),
        description: text(show.description),
        language: text(show.language),
        "atom:link": { "@href": show.feedUrl, "@rel": "self", "@type": "application/rss+xml" },
        lastBuildDate: text(rfc2822(show.updatedAt)),
        generator: text("Podflow"),
        "itunes:author": text(show.author),
        "itunes:summary": text(show.description),
        "itunes:owner": {
          "itunes:name": text(show.ownerName),
          "itunes:email": text(show.ownerEmail),
        },
        "itunes:image": { "@href": show.imageUrl },
        "itunes:category": { "@text": show.category },
        "itunes:explicit": text(String(show.explicit)),
        "itunes:type": text("episodic"),
        "podcast:guid": text(show.podcastGuid),
        "podcast:locked": { "@owner": show.ownerEmail, "#": "yes" },
        item: items.map((item) => ({
          title: text(item.title),
          ...(item.description ? { description: text(item.description) } : {}),
          guid: { "@isPermaLink": "false", "#": item.guid },
          pubDate: text(rfc2822(item.publishAt)),
          enclosure: {
            "@url": item.audioUrl,
            "@length": String(item.audioBytes),
            "@type": "audio/mpeg",
          },
          ...(item.durationSeconds == null
            ? {}
            : { "itunes:duration": text(String(Math.max(1, Math.round(item.durationSeconds)))) }),
          "itunes:explicit": text(String(show.explicit)),
          "itunes:episodeType": text(item.episodeType),
          ...(item.seasonNumber == null
            ? {}
            : {
                "itunes:season": text(String(item.seasonNumber)),
                "podcast:season": text(String(item.seasonNumber)),
              }),
          ...(item.episodeNumber == null
            ? {}
            : {
                "itunes:episode": text(String(item.episodeNumber)),
                "podcast:episode": text(String(item.episodeNumber)),
              }),
          ...(item.transcripts
            ? {
                "podcast:transcript": [
                  {
                    "@url": item.transcripts.vtt,
                    "@type": "text/vtt",
                    "@language": show.language,
                    "@rel": "captions",
                  },
                  {
                    "@url": item.transcripts.srt,
                    "@type": "application/x-subrip",
                    "@language": show.language,
                    "@rel": "captions",
                  },
                  {
                    "@url": item.transcripts.json,
                    "@type": "application/json",
                    "@language": show.language,
                  },
                ],
              }
            : {}),
          ...(item.chaptersUrl
            ? {
                "podcast:chapters": {
                  "@url": item.chaptersUrl,
                  "@type": "application/json+chapters",
                },
              }
            : {}),
        })),
      },
    },
  };
}

/** Both documents read back by a parser, the generator line aside (the version differs). */
function readBack(xml: string): unknown {
  const parsed = new XMLParser({ ignoreAttributes: false, parseTagValue: false }).parse(xml);
  delete parsed.rss.channel.generator;
  return parsed;
}

async function run(context: ScenarioContext): Promise<ScenarioOutcome> {
  const sizes = context.quick ? QUICK : FULL;
  const database = await context.server.createDatabase("feed");
  let statements = 0;
  const podflow = await startInProcessPodflow(context.cleanups, {
    databaseUrl: database.url,
    standIn: null,
    env: { PODFLOW_ROLES: "api", ITTYBIT_API_KEY: "" },
    start: { onSqlQuery: () => (statements += 1) },
  });
  const url = podflow.url as string;

  context.log(`seeding a show with ${sizes.episodes} published episodes`);
  const feedKey = `bench-${context.runTag}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  await withClient(database.url, async (db) => {
    const { userId } = await seedProducer(db, `feed-${context.runTag}`);
    const show = await db.query<{ id: string }>(
      `insert into shows (id, user_id, title, description, author, owner_name, owner_email,
         language, category, explicit, image_url, link, feed_key, is_private, podcast_guid,
         feed_version, feed_updated_at, created_at, updated_at)
       values (gen_random_uuid(), $1, 'The Bench Show', 'A show with a thousand episodes & more.',
         'Bench', 'Bench', 'bench@example.com', 'en', 'Technology', false,
         'https://example.com/cover.png', 'https://example.com', $2, false, gen_random_uuid(),
         1, now(), now(), now())
       returning id`,
      [userId, feedKey],
    );
    await db.query(
      `insert into episodes (id, user_id, show_id, title, description, status, engine,
         audio_url, audio_bytes, audio_duration_seconds, transcript, transcript_segments, chapters,
         published, publish_at, feed_guid, episode_number, season_number, episode_type,
         processing_round, completion_queued_round, created_at, updated_at)
       select id, $1, $2, 'Episode ' || n, 'Show notes for episode ' || n || ' <with> & markup.',
         'PROCESSED', 'local', 'https://podflow.example.com/media/' || md5(id::text) || '.mp3',
         30000000 + n, 1800 + n, 'Transcript.',
         '[{"start":0,"end":5,"text":"Hello."}]'::jsonb,
         '[{"start":0,"end":null,"title":"Chapter 1"}]'::jsonb,
         true, now() - make_interval(days => n), id::text, n, 1 + n / 100, 'full', 1, 1, now(), now()
       from (select gen_random_uuid() as id, n from generate_series(1, $3) n) s`,
      [userId, show.rows[0]?.id, sizes.episodes],
    );
  });

  const em = () => podflow.deps.orm.em.fork();
  const deps = {
    em,
    publicUrl: podflow.deps.config.publicUrl,
    exportSecret: podflow.deps.exportSecret,
  };
  const show = await em().findOneOrFail(Show, { feedKey });
  const items = await loadFeedItems(deps, show);
  const object = feedObject(feedShow(deps, show), items);

  const podflowXml = await buildShowFeed(deps, show);
  const libraryXml = create({ version: "1.0", encoding: "UTF-8" }, object).end({
    prettyPrint: false,
  });
  const same = JSON.stringify(readBack(podflowXml)) === JSON.stringify(readBack(libraryXml));

  const time = async (work: () => unknown, count: number) => {
    const started = performance.now();
    for (let i = 0; i < count; i += 1) await work();
    return (performance.now() - started) / count;
  };
  const podflowRounds: number[] = [];
  const libraryRounds: number[] = [];
  const measure = {
    podflow: async () =>
      podflowRounds.push(await time(() => buildShowFeed(deps, show), sizes.buildsPerRound)),
    library: async () =>
      libraryRounds.push(
        await time(
          () => create({ version: "1.0", encoding: "UTF-8" }, object).end({ prettyPrint: false }),
          sizes.buildsPerRound,
        ),
      ),
  };
  await time(() => buildShowFeed(deps, show), 2); // warm-up
  for (let round = 1; round <= sizes.rounds; round += 1) {
    context.log(`build round ${round}/${sizes.rounds}`);
    await inAlternateOrder(round, measure.podflow, measure.library);
  }

  // Repeated requests: after the first (which builds), answered from the cache.
  const feedUrl = `${url}/feeds/${feedKey}.xml`;
  const first = await fetch(feedUrl);
  const etag = first.headers.get("etag") ?? "";
  const firstBody = await first.text();
  const requestRounds: number[][] = [];
  const statementCounts: number[] = [];
  for (let round = 1; round <= sizes.rounds; round += 1) {
    const samples: number[] = [];
    for (let i = 0; i < sizes.requestsPerRound; i += 1) {
      const before = statements;
      const started = performance.now();
      const response = await fetch(feedUrl, { headers: { "accept-encoding": "gzip" } });
      await response.arrayBuffer();
      samples.push(performance.now() - started);
      statementCounts.push(statements - before);
    }
    requestRounds.push(samples);
  }
  const notModified = await fetch(feedUrl, { headers: { "if-none-match": etag } });

  const bytes = Buffer.byteLength(podflowXml);
  return {
    notes: [
      `One show with ${sizes.episodes} published episodes inserted with SQL, each with a transcript and chapters (so three podcast:transcript links and podcast:chapters per item); the feed is ${(bytes / 1024).toFixed(0)} KiB.`,
      `Build: buildShowFeed in this process — the SQL query of the published episodes, export URLs (HMAC) per item, and xmlbuilder2 — ${sizes.buildsPerRound} builds per round, ${sizes.rounds} rounds, alternating with the baseline.`,
      "Baseline: xmlbuilder2 alone converting a ready-made object of the same channel and items to the same XML (no database, no mapping); both documents are read back with fast-xml-parser and compared.",
      `Repeated request: GET with Accept-Encoding: gzip over HTTP, ${sizes.requestsPerRound} per round, one at a time; SQL statements counted with onSqlQuery.`,
    ],
    figures: [
      figure(`feed build, ${sizes.episodes} items`, "ms", "lower", podflowRounds, {
        name: "xmlbuilder2 alone",
        rounds: libraryRounds,
      }),
      figure(
        "repeated request p50 (cache)",
        "ms",
        "lower",
        requestRounds.map((samples) => latencyPercentiles(samples).p50),
      ),
      figure("SQL statements per repeated request", "", "lower", [median(statementCounts)]),
    ],
    checks: [
      check(
        "Podflow's feed and the library's document read back the same",
        same && items.length === sizes.episodes,
        `${items.length} items; ${same ? "identical" : "DIFFERENT"} after parsing`,
      ),
      check(
        "a repeated request reads only the show's row (one statement) and gets the same feed",
        statementCounts.every((count) => count === 1) &&
          firstBody === podflowXml &&
          notModified.status === 304,
        `statements per request: ${[...new Set(statementCounts)].join(", ")}; If-None-Match → ${notModified.status}`,
      ),
    ],
  };
}

export const feed: BenchScenario = {
  id: "feed",
  title: "7. Podcast feed",
  run,
};
