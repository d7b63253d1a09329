import { describe, expect, it } from "vitest";
import { buildFeed, type FeedItem, type FeedShow } from "../../src/services/feed/rss.ts";
import { podcastGuidFor } from "../../src/services/shows.ts";
import { expectValidFeed, type Node } from "../support/feed.ts";

const show: FeedShow = {
  title: "Tom & Jerry's <Show>",
  description: "Cats, mice & ]]> CDATA ends \u0007 with a bell",
  author: "Tom",
  ownerName: "Tom Cat",
  ownerEmail: "tom@example.com",
  language: "en-us",
  category: "Kids & Family",
  subcategory: "Stories for Kids",
  explicit: false,
  imageUrl: "https://example.com/cover.png",
  link: null,
  isPrivate: false,
  locked: true,
  newFeedUrl: null,
  podcastGuid: "917393e3-1b1e-5cef-ace4-edaa54e1f810",
  feedUrl: "https://podflow.example.com/feeds/tom.xml",
  updatedAt: new Date("2026-12-01T10:00:00Z"),
};

const item = (n: number, overrides: Partial<FeedItem> = {}): FeedItem => ({
  guid: `guid-${n}`,
  title: `Episode ${n}`,
  description: "Notes <b>bold</b>",
  publishAt: new Date(Date.UTC(2026, 10, n, 9, 30)),
  audioUrl: `https://podflow.example.com/media/${n}.mp3`,
  audioBytes: 1000 + n,
  durationSeconds: 61.6,
  episodeNumber: n,
  seasonNumber: 2,
  episodeType: "full",
  transcripts: {
    vtt: `https://x/${n}.vtt`,
    srt: `https://x/${n}.srt`,
    json: `https://x/${n}.json`,
  },
  chaptersUrl: `https://x/${n}/chapters.json`,
  ...overrides,
});

describe("the RSS feed", () => {
  it("has every required tag, escaped text, and Podcasting 2.0 links", () => {
    const { channel, items } = expectValidFeed(buildFeed(show, [item(2), item(1)]));
    expect(channel.title).toBe(show.title);
    // A control character is dropped; "]]>" is just text.
    expect(channel.description).toBe("Cats, mice & ]]> CDATA ends  with a bell");
    expect((channel["itunes:category"] as Node)["@_text"]).toBe("Kids & Family");
    expect(((channel["itunes:category"] as Node)["itunes:category"] as Node)["@_text"]).toBe(
      "Stories for Kids",
    );
    expect(channel["podcast:locked"]).toEqual({ "#text": "yes", "@_owner": "tom@example.com" });
    expect(channel["itunes:block"]).toBeUndefined();
    expect(items.map((i) => (i.guid as Node)["#text"])).toEqual(["guid-2", "guid-1"]);
    const first = items[0] as Record<string, unknown>;
    expect(first.pubDate).toBe("Mon, 02 Nov 2026 09:30:00 GMT");
    expect(first["itunes:duration"]).toBe("62");
    expect((first.enclosure as Node)["@_length"]).toBe("1002");
    expect(first.description).toBe("Notes <b>bold</b>");
    expect((first["podcast:transcript"] as Node[]).map((t) => t["@_type"])).toEqual([
      "text/vtt",
      "application/x-subrip",
      "application/json",
    ]);
    expect((first["podcast:chapters"] as Node)["@_type"]).toBe("application/json+chapters");
    expect(first["itunes:episode"]).toBe("2");
    expect(first["itunes:season"]).toBe("2");
  });

  it("unlocks the feed and points apps at the new one when the podcast moves away", () => {
    const { channel } = expectValidFeed(
      buildFeed({ ...show, locked: false, newFeedUrl: "https://new.example.com/feed.xml" }, []),
    );
    expect((channel["podcast:locked"] as Node)["#text"]).toBe("no");
    expect(channel["itunes:new-feed-url"]).toBe("https://new.example.com/feed.xml");
  });

  it("asks directories not to list a private show", () => {
    const { channel } = expectValidFeed(buildFeed({ ...show, isPrivate: true }, []));
    expect(channel["itunes:block"]).toBe("Yes");
  });

  it("leaves out transcript and chapter links an episode has no files for", () => {
    const { items } = expectValidFeed(
      buildFeed(show, [item(1, { transcripts: null, chaptersUrl: null, episodeNumber: null })]),
    );
    expect(items[0]).not.toHaveProperty(["podcast:transcript"]);
    expect(items[0]).not.toHaveProperty(["podcast:chapters"]);
    expect(items[0]).not.toHaveProperty(["itunes:episode"]);
  });
});

describe("podcast:guid", () => {
  it("is the UUIDv5 of the feed URL without scheme and trailing slash (the spec's example)", () => {
    // The podcast namespace's guid tag example: the feed mp3s.nashownotes.com/pc20rss.xml.
    expect(podcastGuidFor("https://mp3s.nashownotes.com/pc20rss.xml/")).toBe(
      "917393e3-1b1e-5cef-ace4-edaa54e1f810",
    );
  });
});
