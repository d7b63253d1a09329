/**
 * Shows in the API: the Show type, `show`/`shows`, `createShow`/`updateShow` (one field builder
 * for both inputs) and `prepareCoverUpload`. Over 300 lines because these are one domain that
 * reads best together; what an episode has of its show is in publishing.ts.
 */
import { resolveCursorConnection } from "@pothos/plugin-relay";
import { GraphQLError } from "graphql";
import { z } from "zod";
import { Show } from "../entities/show.entity.ts";
import { type CoverUploadTarget, prepareCoverUpload } from "../services/cover-uploads.ts";
import { NotFoundError, ProcessingUnavailableError, ValidationError } from "../services/errors.ts";
import {
  type CreateShowInput as CreateShowFields,
  createShow,
  feedUrl,
  findShow,
  findShows,
  listShows,
  type ShowCursor,
  type ShowDeps,
  type UpdateShowInput as UpdateShowFields,
  updateShow,
} from "../services/shows.ts";
import { builder } from "./builder.ts";
import { type GraphQLContext, requireViewer } from "./context.ts";
import { nodeId, uuidFromGlobalId } from "./global-ids.ts";

async function loadShows(ids: readonly string[], context: GraphQLContext) {
  const shows = await findShows(context.em, requireViewer(context), ids);
  const byId = new Map(shows.map((show) => [show.id, show]));
  return ids.map((id) => byId.get(id) ?? null);
}

export const ShowRef = builder.node(Show, {
  name: "Show",
  description: "A producer's podcast: what its feed says about it, and where the feed is.",
  id: nodeId,
  loadManyWithoutCache: loadShows,
  fields: (t) => ({
    title: t.exposeString("title", { description: "The show's title." }),
    description: t.exposeString("description", { description: "What the show is about." }),
    author: t.exposeString("author", { description: "Who makes it (`itunes:author`)." }),
    ownerName: t.exposeString("ownerName", {
      description: "The owner's name, for directories (`itunes:owner`).",
    }),
    ownerEmail: t.exposeString("ownerEmail", {
      description: "The owner's e-mail, for directories' ownership checks; also `podcast:locked`.",
    }),
    language: t.exposeString("language", { description: "ISO 639 language code, e.g. `en-us`." }),
    category: t.exposeString("category", { description: "Apple Podcasts category." }),
    subcategory: t.string({
      nullable: true,
      description: "Apple Podcasts subcategory of `category`.",
      resolve: (show) => show.subcategory ?? null,
    }),
    explicit: t.exposeBoolean("explicit", { description: "Explicit content." }),
    imageUrl: t.string({
      nullable: true,
      description:
        "The cover art: JPEG or PNG, 1400–3000 px square (a URL given, or an uploaded file served by Podflow). Apple requires it.",
      resolve: (show) => show.imageUrl ?? null,
    }),
    link: t.string({
      nullable: true,
      description: "The show's website.",
      resolve: (show) => show.link ?? null,
    }),
    isPrivate: t.exposeBoolean("isPrivate", {
      description:
        "A private show's feed URL is an unguessable token, and the feed asks directories not to list it.",
    }),
    locked: t.exposeBoolean("locked", {
      description:
        "`podcast:locked`: other hosts may not import the feed. Unlock it before moving the podcast elsewhere.",
    }),
    newFeedUrl: t.string({
      nullable: true,
      description:
        "Where the podcast moved (`itunes:new-feed-url`): apps follow it there. Null while it stays.",
      resolve: (show) => show.newFeedUrl ?? null,
    }),
    feedUrl: t.string({
      description:
        "The podcast's RSS feed, public and stable: submit it to Apple Podcasts, Spotify and other apps.",
      resolve: (show, _args, context) => feedUrl(context.deps.config.publicUrl, show),
    }),
    podcastGuid: t.exposeString("podcastGuid", {
      description: "The show's `podcast:guid`, fixed at creation.",
    }),
    createdAt: t.field({
      type: "DateTime",
      description: "When the show was created.",
      resolve: (show) => show.createdAt,
    }),
  }),
});

/** A global Show id → the uuid, or null for anything else (which then finds nothing). */
export function showIdFromGlobalId(globalId: string): string | null {
  return uuidFromGlobalId(globalId, "Show");
}

builder.queryField("show", (t) =>
  t.field({
    type: ShowRef,
    nullable: true,
    description: "One of the viewer's shows; null when there is none with this id, or not theirs.",
    args: { id: t.arg.id({ required: true, description: "The show's global id." }) },
    resolve: async (_root, args, context) => {
      const viewer = requireViewer(context);
      const id = showIdFromGlobalId(String(args.id));
      return id ? findShow(context.em, viewer, id) : null;
    },
  }),
);

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

function encodeShowCursor(show: ShowCursor): string {
  return Buffer.from(`${show.createdAt.toISOString()}|${show.id}`).toString("base64url");
}

function decodeShowCursor(cursor: string): ShowCursor | null {
  const [createdAt, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const date = new Date(createdAt ?? "");
  if (Number.isNaN(date.getTime()) || !z.uuid().safeParse(id).success) return null;
  return { createdAt: date, id: id as string };
}

const ShowConnectionRef = builder.connectionObject(
  { type: ShowRef, name: "ShowConnection", description: "A page of shows." },
  { name: "ShowEdge", description: "A show in a page." },
);

builder.queryField("shows", (t) =>
  t.field({
    type: ShowConnectionRef,
    description: `The viewer's shows, newest first, in pages of at most ${MAX_PAGE_SIZE}.`,
    args: {
      first: t.arg.int({
        required: false,
        description: `How many shows, 0 to ${MAX_PAGE_SIZE}; ${DEFAULT_PAGE_SIZE} when omitted.`,
      }),
      after: t.arg.string({
        required: false,
        description: "The `endCursor` of the previous page; the first page when omitted.",
      }),
    },
    resolve: async (_root, args, context) => {
      const viewer = requireViewer(context);
      if (args.first != null && (args.first < 0 || args.first > MAX_PAGE_SIZE)) {
        throw badInput(`\`first\` must be between 0 and ${MAX_PAGE_SIZE}`);
      }
      const after = args.after ? decodeShowCursor(args.after) : null;
      if (args.after && !after) throw badInput("`after` is not a cursor from this connection");
      const page = await resolveCursorConnection<Promise<Show[]>>(
        {
          args,
          defaultSize: DEFAULT_PAGE_SIZE,
          maxSize: MAX_PAGE_SIZE,
          toCursor: encodeShowCursor,
        },
        ({ limit }) => listShows(context.em, viewer, { limit, after }),
      );
      if (page.edges.length > 0) return page;
      return { ...page, pageInfo: { ...page.pageInfo, startCursor: null, endCursor: null } };
    },
  }),
);

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT" } });
}

function showDeps(context: GraphQLContext): ShowDeps {
  return { em: context.em, publicUrl: context.deps.config.publicUrl, images: context.deps.images };
}

const showFields = (required: boolean) =>
  builder.inputType(required ? "CreateShowInput" : "UpdateShowInput", {
    description: required
      ? "A new show. Its feed URL is fixed now: a slug of the title, or a token for a private show."
      : "The show to change and the fields to change; omitted fields keep their value.",
    fields: (t) => ({
      ...(required
        ? {
            isPrivate: t.boolean({
              required: false,
              description:
                "A private feed: its URL is an unguessable token and directories are asked not to list it. Fixed at creation.",
            }),
          }
        : { showId: t.id({ required: true, description: "The show's global id." }) }),
      title: t.string({ required, description: "The show's title, 1–255 characters." }),
      description: t.string({ required, description: "What the show is about, ≤4000 bytes." }),
      author: t.string({ required, description: "Who makes it." }),
      ownerName: t.string({
        required: false,
        description: "The owner's name for directories; the author when omitted.",
      }),
      ownerEmail: t.string({ required, description: "The owner's e-mail address." }),
      language: t.string({ required, description: "ISO 639 language code: `en`, `en-us`, `de`…" }),
      category: t.string({
        required,
        description:
          "An Apple Podcasts category, spelled as Apple does: `Technology`, `Kids & Family`…",
      }),
      subcategory: t.string({
        required: false,
        description: "An Apple Podcasts subcategory of `category`, e.g. `Tech News` under `News`.",
      }),
      explicit: t.boolean({
        required: false,
        description: "Explicit content; false when omitted.",
      }),
      imageUrl: t.string({
        required: false,
        description:
          "The cover art's http(s) URL: JPEG or PNG, 1400–3000 px square; Podflow downloads it to check. Or upload the file with prepareCoverUpload. Apple requires cover art.",
      }),
      link: t.string({ required: false, description: "The show's website." }),
      locked: t.boolean({
        required: false,
        description:
          "`podcast:locked` (true when omitted at creation): other hosts may not import the feed.",
      }),
      newFeedUrl: t.string({
        required: false,
        description:
          "Moving the podcast away: the new feed's URL, written as `itunes:new-feed-url` so apps follow it. Null clears it.",
      }),
    }),
  });

const CreateShowInput = showFields(true);
const UpdateShowInput = showFields(false);

const ShowPayload = builder.objectRef<{ show: Show }>("ShowPayload").implement({
  description: "The show as it is now.",
  fields: (t) => ({
    show: t.field({ type: ShowRef, description: "The show.", resolve: (p) => p.show }),
  }),
});

builder.mutationField("createShow", (t) =>
  t.field({
    type: ShowPayload,
    description: "Creates a show, with its feed URL.",
    args: { input: t.arg({ type: CreateShowInput, required: true }) },
    errors: {
      types: [ValidationError],
      directResult: true,
      union: { name: "CreateShowResult", description: "The show, or why nothing was created." },
    },
    resolve: async (_root, { input }, context) => {
      // One field builder makes both inputs, so their types are loose here; the service parses
      // every field with its own schema before anything is stored.
      const { showId: _none, ...fields } = input as typeof input & { showId?: unknown };
      return {
        show: await createShow(
          showDeps(context),
          requireViewer(context),
          fields as unknown as CreateShowFields,
        ),
      };
    },
  }),
);

builder.mutationField("updateShow", (t) =>
  t.field({
    type: ShowPayload,
    description: "Changes a show; its feed URL and `podcast:guid` never change.",
    args: { input: t.arg({ type: UpdateShowInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError],
      directResult: true,
      union: { name: "UpdateShowResult", description: "The show, or why nothing changed." },
    },
    resolve: async (_root, { input }, context) => {
      const viewer = requireViewer(context);
      const {
        showId: globalId,
        isPrivate: _fixed,
        ...fields
      } = input as typeof input & {
        showId: string;
        isPrivate?: unknown;
      };
      const showId = showIdFromGlobalId(String(globalId));
      if (!showId) throw new NotFoundError("No such show");
      // Null for a required field means "leave it"; for an optional one, "clear it".
      const changes = Object.fromEntries(
        Object.entries(fields).filter(
          ([key, value]) =>
            value !== undefined &&
            (value !== null ||
              ["ownerName", "subcategory", "link", "explicit", "newFeedUrl", "locked"].includes(
                key,
              )),
        ),
      );
      return {
        show: await updateShow(showDeps(context), viewer, showId, changes as UpdateShowFields),
      };
    },
  }),
);

const PrepareCoverUploadInput = builder.inputType("PrepareCoverUploadInput", {
  description: "The show whose cover art will be uploaded.",
  fields: (t) => ({
    showId: t.id({ required: true, description: "The show's global id." }),
  }),
});

const CoverUploadTargetRef = builder.objectRef<CoverUploadTarget>("CoverUploadTarget").implement({
  description:
    "Where to PUT the cover art's bytes (JPEG or PNG, 1400–3000 px square, at most 20 MiB). The answer is 201 `{\"imageUrl\"}`, and the show's `imageUrl` is that URL from then on; art that breaks Apple's rules is answered 422 with the reason, and changes nothing.",
  fields: (t) => ({
    url: t.exposeString("url", { description: "The signed URL to send the image's bytes to." }),
    method: t.exposeString("method", { description: "The HTTP method to use: PUT." }),
    expiresAt: t.field({
      type: "DateTime",
      description: "When the URL stops working.",
      resolve: (target) => target.expiresAt,
    }),
  }),
});

builder.mutationField("prepareCoverUpload", (t) =>
  t.field({
    type: CoverUploadTargetRef,
    description: "A signed URL to upload one of your shows' cover art to Podflow itself.",
    args: { input: t.arg({ type: PrepareCoverUploadInput, required: true }) },
    errors: {
      types: [NotFoundError, ProcessingUnavailableError],
      directResult: true,
      union: { name: "PrepareCoverUploadResult", description: "Where to upload, or why not." },
    },
    resolve: (_root, { input }, context) => {
      const viewer = requireViewer(context);
      const showId = showIdFromGlobalId(String(input.showId));
      if (!showId) throw new NotFoundError("No such show");
      if (!context.deps.local) {
        throw new ProcessingUnavailableError(
          "This server keeps no uploaded files (no media storage)",
        );
      }
      return prepareCoverUpload(
        {
          em: context.em,
          secret: context.deps.local.uploadSecret,
          publicUrl: context.deps.config.publicUrl,
        },
        viewer,
        showId,
      );
    },
  }),
);
