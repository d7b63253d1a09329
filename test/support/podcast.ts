import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { crc32, deflateSync } from "node:zlib";
import { expect } from "vitest";
import { waitForStatus } from "./pipeline.ts";
import type { Scenario, TestProducer } from "./scenario.ts";

/** A real (grey) PNG of this size: what an artwork check downloads and measures. */
export function makePng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([head, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  const rows = Buffer.alloc((width + 1) * height, 0x80);
  for (let row = 0; row < height; row += 1) rows[row * (width + 1)] = 0; // filter: none
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/**
 * A stand-in image host: `/cover-<w>x<h>.png` is a PNG of that size, `/not-an-image.png` is
 * text, anything else 404.
 */
export async function startImageHost(): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const size = /^\/cover-(\d+)x(\d+)\.png$/.exec(req.url ?? "");
    if (size) {
      const png = makePng(Number(size[1]), Number(size[2]));
      res.writeHead(200, { "content-type": "image/png", "content-length": png.length });
      res.end(req.method === "HEAD" ? undefined : png);
    } else if (req.url === "/not-an-image.png") {
      res.writeHead(200, { "content-type": "image/png" }).end("hello, not a picture");
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export const SHOW_FIELDS = `id title feedUrl podcastGuid isPrivate category subcategory language`;

export function showInput(imageHost: string, overrides: Record<string, unknown> = {}) {
  return {
    title: "The Feed Show",
    description: "A show about feeds & enclosures.",
    author: "Pat Producer",
    ownerEmail: "pat@example.com",
    language: "en-us",
    category: "Technology",
    imageUrl: `${imageHost}/cover-1400x1400.png`,
    ...overrides,
  };
}

export async function createShow(
  producer: TestProducer,
  input: Record<string, unknown>,
): Promise<{ id: string; feedUrl: string; podcastGuid: string }> {
  const answer = await producer.gql<{
    createShow: { __typename: string; show: { id: string; feedUrl: string; podcastGuid: string } };
  }>(
    `mutation($input: CreateShowInput!) { createShow(input: $input) {
       __typename ... on ShowPayload { show { ${SHOW_FIELDS} } } ... on Error { message } } }`,
    { input },
  );
  expect(answer.body.data?.createShow.__typename, JSON.stringify(answer.body)).toBe("ShowPayload");
  return answer.body.data?.createShow.show as { id: string; feedUrl: string; podcastGuid: string };
}

/**
 * An episode of the show taken through the local engine's whole pipeline, as a producer's client
 * does it: prepareUpload (with the show), PUT, confirmUpload, then PROCESSED.
 */
export async function processLocalEpisode(
  scenario: Scenario,
  producer: TestProducer,
  options: { title: string; file: Buffer; showId: string | null },
): Promise<{ id: string; uuid: string }> {
  const prepared = await producer.gql<{
    prepareUpload: { episode: { id: string }; upload: { url: string } };
  }>(
    `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
       ... on PrepareUploadPayload { episode { id } upload { url } } ... on Error { message } } }`,
    {
      input: {
        filename: "episode.mp3",
        title: options.title,
        filesize: options.file.length,
        showId: options.showId,
      },
    },
  );
  const payload = prepared.body.data?.prepareUpload;
  expect(payload?.episode.id, JSON.stringify(prepared.body)).toBeTruthy();
  const id = payload?.episode.id as string;
  const uuid = Buffer.from(id, "base64").toString().split(":")[1] as string;
  const put = await fetch(payload?.upload.url as string, {
    method: "PUT",
    body: new Uint8Array(options.file),
  });
  expect(put.status).toBe(201);
  const { id: fileId } = (await put.json()) as { id: string };
  const confirmed = await producer.gql<{ confirmUpload: { __typename: string } }>(
    `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
    { input: { episodeId: id, fileId } },
  );
  expect(confirmed.body.data?.confirmUpload.__typename).toBe("ConfirmUploadPayload");
  await waitForStatus(scenario, uuid, "PROCESSED", 180_000);
  return { id, uuid };
}
