/**
 * GET/HEAD /feeds/<slug or token>.xml: a show's podcast feed, public (podcast apps send no
 * token). Apps poll feeds constantly, so a request reads the show's row only: the feed is kept,
 * gzipped too, under the show's `feed_version`, which the database bumps whenever the show or
 * one of its episodes changes (see the shows migration). A miss builds the feed from one query
 * of the show's published episodes. ETag and Last-Modified answer unchanged feeds with 304.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { promisify } from "node:util";
import { gzip as gzipCallback } from "node:zlib";
import type { EntityManager } from "@mikro-orm/postgresql";
import { Show } from "../../entities/show.entity.ts";
import { exportUrl } from "../exports/exports.ts";
import { matchesEtag } from "../exports/exports-http.ts";
import { FEED_PATH_PREFIX, feedUrl } from "../shows.ts";
import { buildFeed, type FeedItem, type FeedShow } from "./rss.ts";

const gzip = promisify(gzipCallback);

const FEED_PATH = /^\/feeds\/([A-Za-z0-9_-]{1,64})\.xml$/;

export { FEED_PATH_PREFIX };

interface CachedFeed {
  version: number;
  etag: string;
  lastModified: string;
  body: Buffer;
  gzipped: Buffer;
}

export interface FeedDeps {
  em: () => EntityManager;
  publicUrl: string;
  exportSecret: Buffer;
}

export interface FeedServer {
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    pathname: string,
    notFound: () => void,
  ): Promise<void>;
}

/** What the cache may hold, feeds and their gzip together; the least recently built go first. */
const MAX_CACHED_BYTES = 64 * 1024 * 1024;

export function createFeedServer(deps: FeedDeps): FeedServer {
  const cache = new Map<string, CachedFeed>();
  let cachedBytes = 0;
  const sizeOf = (feed: CachedFeed) => feed.body.length + feed.gzipped.length;

  async function current(show: Show): Promise<CachedFeed> {
    const cached = cache.get(show.id);
    if (cached && cached.version === show.feedVersion) return cached;
    const xml = await buildShowFeed(deps, show);
    const body = Buffer.from(xml, "utf8");
    const feed: CachedFeed = {
      version: show.feedVersion,
      etag: `W/"${show.feedVersion}-${createHash("sha256").update(body).digest("base64url").slice(0, 16)}"`,
      lastModified: show.feedUpdatedAt.toUTCString(),
      body,
      gzipped: await gzip(body),
    };
    const replaced = cache.get(show.id);
    if (replaced) cachedBytes -= sizeOf(replaced);
    cache.delete(show.id);
    cache.set(show.id, feed);
    cachedBytes += sizeOf(feed);
    for (const [id, oldest] of cache) {
      if (cachedBytes <= MAX_CACHED_BYTES || id === show.id) break;
      cache.delete(id);
      cachedBytes -= sizeOf(oldest);
    }
    return feed;
  }

  return {
    async handle(req, res, pathname, notFound) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      const [, key] = FEED_PATH.exec(pathname) ?? [];
      if (!key) return notFound();
      const show = await deps.em().findOne(Show, { feedKey: key });
      if (!show) return notFound();
      const feed = await current(show);
      const headers = {
        etag: feed.etag,
        "last-modified": feed.lastModified,
        "cache-control": "public, max-age=300",
        vary: "Accept-Encoding",
        "access-control-allow-origin": "*",
      };
      if (notModified(req, feed)) {
        res.writeHead(304, headers).end();
        return;
      }
      const gzipped = acceptsGzip(req.headers["accept-encoding"]);
      const body = gzipped ? feed.gzipped : feed.body;
      res.writeHead(200, {
        ...headers,
        "content-type": "application/rss+xml; charset=utf-8",
        "content-length": body.length,
        ...(gzipped ? { "content-encoding": "gzip" } : {}),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    },
  };
}

/** If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2). */
function notModified(req: IncomingMessage, feed: CachedFeed): boolean {
  const ifNoneMatch = req.headers["if-none-match"];
  if (ifNoneMatch) return matchesEtag(ifNoneMatch, feed.etag);
  const since = Date.parse(req.headers["if-modified-since"] ?? "");
  return Number.isFinite(since) && Date.parse(feed.lastModified) <= since;
}

/** gzip unless the client did not name it or refused it (`gzip;q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(",").some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(";");
    if (coding?.trim() !== "gzip" && coding?.trim() !== "*") return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return !q || Number(q.slice(2)) > 0;
  });
}

interface ItemRow {
  id: string;
  title: string;
  description: string | null;
  feed_guid: string;
  publish_at: Date;
  audio_url: string;
  audio_bytes: string | number;
  audio_duration_seconds: number | null;
  episode_number: number | null;
  season_number: number | null;
  episode_type: FeedItem["episodeType"];
  has_segments: boolean;
  has_chapters: boolean;
}

/** The feed as it is now: one query of the show's published episodes, newest first. */
export async function buildShowFeed(deps: FeedDeps, show: Show): Promise<string> {
  return buildFeed(feedShow(deps, show), await loadFeedItems(deps, show));
}

/** The show's published episodes as feed items, newest first, in one query. */
export async function loadFeedItems(deps: FeedDeps, show: Show): Promise<FeedItem[]> {
  const rows = await deps.em().execute<ItemRow[]>(
    `select id, title, description, feed_guid, publish_at, audio_url, audio_bytes,
            audio_duration_seconds, episode_number, season_number, episode_type,
            (jsonb_typeof(transcript_segments) = 'array'
              and jsonb_array_length(transcript_segments) > 0) is true as has_segments,
            (jsonb_typeof(chapters) = 'array' and jsonb_array_length(chapters) > 0) is true
              as has_chapters
       from episodes
      where show_id = ? and published and status = 'PROCESSED'
        and audio_url is not null and audio_bytes is not null and feed_guid is not null
      order by publish_at desc, id desc`,
    [show.id],
  );
  const url = (id: string, file: Parameters<typeof exportUrl>[3]) =>
    exportUrl(deps.publicUrl, deps.exportSecret, id, file);
  return rows.map((row) => ({
    guid: row.feed_guid,
    title: row.title,
    description: row.description,
    publishAt: new Date(row.publish_at),
    audioUrl: row.audio_url,
    audioBytes: Number(row.audio_bytes),
    durationSeconds: row.audio_duration_seconds == null ? null : Number(row.audio_duration_seconds),
    episodeNumber: row.episode_number,
    seasonNumber: row.season_number,
    episodeType: row.episode_type,
    transcripts: row.has_segments
      ? {
          vtt: url(row.id, "transcript.vtt"),
          srt: url(row.id, "transcript.srt"),
          json: url(row.id, "transcript.json"),
        }
      : null,
    chaptersUrl: row.has_chapters ? url(row.id, "chapters.json") : null,
  }));
}

export function feedShow(deps: Pick<FeedDeps, "publicUrl">, show: Show): FeedShow {
  return {
    title: show.title,
    description: show.description,
    author: show.author,
    ownerName: show.ownerName,
    ownerEmail: show.ownerEmail,
    language: show.language,
    category: show.category,
    subcategory: show.subcategory ?? null,
    explicit: show.explicit,
    imageUrl: show.imageUrl ?? null,
    link: show.link ?? null,
    isPrivate: show.isPrivate,
    locked: show.locked,
    newFeedUrl: show.newFeedUrl ?? null,
    podcastGuid: show.podcastGuid,
    feedUrl: feedUrl(deps.publicUrl, show),
    updatedAt: show.feedUpdatedAt,
  };
}
