/**
 * A show's RSS 2.0 feed with the Apple (itunes) and Podcasting 2.0 (podcast) namespaces, built
 * with xmlbuilder2 — which escapes every text and attribute, so no producer's text can break the
 * XML. Pure: the data in, the document out (feed-http.ts loads, caches and serves it).
 */
import { create } from "xmlbuilder2";
import { PODFLOW_VERSION } from "../../version.ts";

type XMLBuilder = ReturnType<typeof create>;

export const NAMESPACES = {
  itunes: "http://www.itunes.com/dtds/podcast-1.0.dtd",
  podcast: "https://podcastindex.org/namespace/1.0",
  atom: "http://www.w3.org/2005/Atom",
} as const;

export interface FeedShow {
  title: string;
  description: string;
  author: string;
  ownerName: string;
  ownerEmail: string;
  language: string;
  category: string;
  subcategory: string | null;
  explicit: boolean;
  /** Apple requires it; a show without cover art has a feed Apple will refuse until it has. */
  imageUrl: string | null;
  link: string | null;
  isPrivate: boolean;
  locked: boolean;
  newFeedUrl: string | null;
  podcastGuid: string;
  feedUrl: string;
  updatedAt: Date;
}

export interface FeedItem {
  guid: string;
  title: string;
  description: string | null;
  publishAt: Date;
  audioUrl: string;
  audioBytes: number;
  durationSeconds: number | null;
  episodeNumber: number | null;
  seasonNumber: number | null;
  episodeType: "full" | "trailer" | "bonus";
  transcripts: { vtt: string; srt: string; json: string } | null;
  chaptersUrl: string | null;
}

/** Characters XML 1.0 cannot carry at all (control characters other than tab and newlines). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it removes
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

function clean(text: string): string {
  return text.replace(NOT_XML, "").trim();
}

/** RFC 2822 as feeds write it: `Wed, 15 Jun 2019 19:00:00 GMT`. */
export function rfc2822(date: Date): string {
  return date.toUTCString();
}

function el(parent: XMLBuilder, name: string, text: string, attributes?: Record<string, string>) {
  parent.ele(name, attributes).txt(clean(text));
}

export function buildFeed(show: FeedShow, items: readonly FeedItem[]): string {
  const root = create({ version: "1.0", encoding: "UTF-8" }).ele("rss", {
    version: "2.0",
    "xmlns:itunes": NAMESPACES.itunes,
    "xmlns:podcast": NAMESPACES.podcast,
    "xmlns:atom": NAMESPACES.atom,
  });
  const channel = root.ele("channel");
  el(channel, "title", show.title);
  el(channel, "link", show.link ?? show.feedUrl);
  el(channel, "description", show.description);
  el(channel, "language", show.language);
  channel.ele("atom:link", { href: show.feedUrl, rel: "self", type: "application/rss+xml" });
  el(channel, "lastBuildDate", rfc2822(show.updatedAt));
  el(channel, "generator", `Podflow ${PODFLOW_VERSION}`);
  el(channel, "itunes:author", show.author);
  // Apple reads `description`; some validators (Podbase) still look for the older summary.
  el(channel, "itunes:summary", show.description);
  const owner = channel.ele("itunes:owner");
  el(owner, "itunes:name", show.ownerName);
  el(owner, "itunes:email", show.ownerEmail);
  if (show.imageUrl) channel.ele("itunes:image", { href: show.imageUrl });
  const category = channel.ele("itunes:category", { text: show.category });
  if (show.subcategory) category.ele("itunes:category", { text: show.subcategory });
  el(channel, "itunes:explicit", show.explicit ? "true" : "false");
  el(channel, "itunes:type", "episodic");
  // A private show's feed is for its subscribers, not for directories.
  if (show.isPrivate) el(channel, "itunes:block", "Yes");
  el(channel, "podcast:guid", show.podcastGuid);
  el(channel, "podcast:locked", show.locked ? "yes" : "no", { owner: show.ownerEmail });
  if (show.newFeedUrl) el(channel, "itunes:new-feed-url", show.newFeedUrl);
  for (const item of items) addItem(channel, show, item);
  return root.end({ prettyPrint: false });
}

function addItem(channel: XMLBuilder, show: FeedShow, item: FeedItem): void {
  const entry = channel.ele("item");
  el(entry, "title", item.title);
  if (item.description) el(entry, "description", item.description);
  el(entry, "guid", item.guid, { isPermaLink: "false" });
  el(entry, "pubDate", rfc2822(item.publishAt));
  entry.ele("enclosure", {
    url: item.audioUrl,
    length: String(item.audioBytes),
    type: "audio/mpeg",
  });
  if (item.durationSeconds != null) {
    el(entry, "itunes:duration", String(Math.max(1, Math.round(item.durationSeconds))));
  }
  el(entry, "itunes:explicit", show.explicit ? "true" : "false");
  el(entry, "itunes:episodeType", item.episodeType);
  if (item.seasonNumber != null) {
    el(entry, "itunes:season", String(item.seasonNumber));
    el(entry, "podcast:season", String(item.seasonNumber));
  }
  if (item.episodeNumber != null) {
    el(entry, "itunes:episode", String(item.episodeNumber));
    el(entry, "podcast:episode", String(item.episodeNumber));
  }
  if (item.transcripts) {
    const language = show.language;
    entry.ele("podcast:transcript", {
      url: item.transcripts.vtt,
      type: "text/vtt",
      language,
      rel: "captions",
    });
    entry.ele("podcast:transcript", {
      url: item.transcripts.srt,
      type: "application/x-subrip",
      language,
      rel: "captions",
    });
    entry.ele("podcast:transcript", {
      url: item.transcripts.json,
      type: "application/json",
      language,
    });
  }
  if (item.chaptersUrl) {
    entry.ele("podcast:chapters", { url: item.chaptersUrl, type: "application/json+chapters" });
  }
}
