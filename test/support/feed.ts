import { XMLParser, XMLValidator } from "fast-xml-parser";
import { expect } from "vitest";

/** A feed parsed by a real XML parser: well-formed, attributes as `@_name`, no value guessing. */
export function parseFeed(xml: string) {
  expect(XMLValidator.validate(xml)).toBe(true);
  const parsed = new XMLParser({
    ignoreAttributes: false,
    parseTagValue: false,
    parseAttributeValue: false,
    isArray: (name) => ["item", "podcast:transcript"].includes(name),
  }).parse(xml);
  return parsed as { rss: Record<string, string> & { channel: Channel } };
}

export type Node = Record<string, unknown> & { "#text"?: string };
export interface Channel extends Record<string, unknown> {
  item?: Item[];
}
export type Item = Record<string, unknown>;

/** RFC 2822 as feeds write it, e.g. `Wed, 15 Jun 2019 19:00:00 GMT`. */
export const RFC_2822 =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} (GMT|[+-]\d{4})$/;

/** The tags Apple requires (or directories expect) on a channel, and on every item. */
export const REQUIRED_CHANNEL_TAGS = [
  "title",
  "link",
  "description",
  "language",
  "itunes:image",
  "itunes:category",
  "itunes:explicit",
  "itunes:author",
  "itunes:summary",
  "itunes:owner",
  "podcast:guid",
  "podcast:locked",
];
export const REQUIRED_ITEM_TAGS = [
  "title",
  "enclosure",
  "guid",
  "pubDate",
  "itunes:duration",
  "itunes:explicit",
];

/** Checks the feed against the reference's validator rules; returns its items. */
export function expectValidFeed(xml: string): { channel: Channel; items: Item[] } {
  const { rss } = parseFeed(xml);
  expect(rss["@_version"]).toBe("2.0");
  expect(rss["@_xmlns:itunes"]).toBe("http://www.itunes.com/dtds/podcast-1.0.dtd");
  expect(rss["@_xmlns:podcast"]).toBe("https://podcastindex.org/namespace/1.0");
  const channel = rss.channel;
  for (const tag of REQUIRED_CHANNEL_TAGS) expect(channel, tag).toHaveProperty([tag]);
  const items = channel.item ?? [];
  const guids = new Set<string>();
  for (const item of items) {
    for (const tag of REQUIRED_ITEM_TAGS) expect(item, tag).toHaveProperty([tag]);
    expect(item.pubDate).toMatch(RFC_2822);
    const enclosure = item.enclosure as Node;
    expect(enclosure["@_type"]).toBe("audio/mpeg");
    expect(Number(enclosure["@_length"])).toBeGreaterThan(0);
    expect(String(item["itunes:duration"])).toMatch(/^\d+$/);
    const guid = item.guid as Node;
    expect(guid["@_isPermaLink"]).toBe("false");
    expect(guids.has(String(guid["#text"]))).toBe(false);
    guids.add(String(guid["#text"]));
  }
  return { channel, items };
}
