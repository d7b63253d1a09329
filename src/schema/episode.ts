import { resolveCursorConnection } from "@pothos/plugin-relay";
import {
  GraphQLError,
  GraphQLObjectType,
  type GraphQLResolveInfo,
  Kind,
  type SelectionSetNode,
} from "graphql";
import { z } from "zod";
import type { EngineKind } from "../domain/engines.ts";
import type { EpisodeStatus } from "../domain/episode-lifecycle.ts";
import { Episode } from "../entities/episode.entity.ts";
import {
  type EpisodeCursor,
  EpisodeRow,
  type EpisodeView,
  episodeProgress,
  findEpisode,
  findEpisodes,
  listEpisodes,
  type TaskView,
} from "../services/episodes.ts";
import { type ExportFlags, exportFlags } from "../services/exports/exports.ts";
import { builder } from "./builder.ts";
import { type GraphQLContext, requireViewer } from "./context.ts";
import { isoDateTime } from "./date-time.ts";
import { nodeId, uuidFromGlobalId } from "./global-ids.ts";
import { ProcessingTaskRef } from "./task.ts";

export const EpisodeStatusEnum = builder.enumType("EpisodeStatus", {
  description: "Where an episode is on its way from upload to outputs.",
  values: {
    AWAITING_UPLOAD: { description: "Created; waiting for the file to be uploaded and confirmed." },
    UPLOADED: { description: "The upload is confirmed; processing is queued." },
    PROCESSING: { description: "The media engine is working on the episode's tasks." },
    PROCESSED: { description: "Every task completed; the outputs are ready." },
    FAILED: {
      description: "Processing failed; `failureReason` says why. `retryEpisode` tries again.",
    },
  } satisfies Record<EpisodeStatus, { description: string }>,
});

export const MediaEngineEnum = builder.enumType("MediaEngine", {
  description: "What turns an upload into the episode's outputs.",
  values: {
    ITTYBIT: { value: "ittybit", description: "Ittybit, the hosted media API." },
    LOCAL: { value: "local", description: "ffmpeg and offline speech recognition on the server." },
  } satisfies Record<Uppercase<EngineKind>, { value: EngineKind; description: string }>,
});

const TranscriptSegmentRef = builder
  .objectRef<{ start: number; end: number; text: string; speaker?: string | null }>(
    "TranscriptSegment",
  )
  .implement({
    description: "A timed piece of the transcript.",
    fields: (t) => ({
      start: t.exposeFloat("start", { description: "Seconds from the start of the episode." }),
      end: t.exposeFloat("end", { description: "Seconds from the start of the episode." }),
      text: t.exposeString("text", { description: "What was said." }),
      speaker: t.exposeString("speaker", {
        nullable: true,
        description: "Who said it, when the transcript tells.",
      }),
    }),
  });

const ChapterRef = builder
  .objectRef<{ start: number; end: number | null; title: string }>("Chapter")
  .implement({
    description: "A chapter marker.",
    fields: (t) => ({
      start: t.exposeFloat("start", { description: "Seconds from the start of the episode." }),
      end: t.exposeFloat("end", {
        nullable: true,
        description: "Seconds from the start of the episode; null for an open end.",
      }),
      title: t.exposeString("title", { description: "The chapter's title." }),
    }),
  });

/**
 * One of the episode's lazy columns: from the entity when it was loaded with it, otherwise
 * through the operation's loader (one query for all the episodes of a list that ask).
 */
async function lazyOutput<F extends "transcript" | "transcriptSegments" | "chapters">(
  episode: EpisodeView,
  field: F,
  context: GraphQLContext,
): Promise<Episode[F] | null> {
  const loaded = episode[field];
  if (loaded !== undefined) return (loaded ?? null) as Episode[F] | null;
  const outputs = await context.loaders.episodeOutputs.load({ episodeId: episode.id, field });
  return (outputs?.[field] ?? null) as Episode[F] | null;
}

/** The Episode properties a field of Episode reads, as its extensions say (listedWith). */
const EPISODE_PROPERTIES = "episodeProperties";

/**
 * The Episode properties (entity property names) a field of Episode reads from the episode: a
 * list reads only those of the fields it is asked for (and the id, user and createdAt). A field
 * without them makes a list read every column, so leaving them out costs speed, never a value;
 * naming too few would (test/integration/episodes.test.ts asks each field both ways).
 */
export function listedWith(...properties: Array<keyof EpisodeView & string>): {
  extensions: Record<string, readonly string[]>;
} {
  return { extensions: { [EPISODE_PROPERTIES]: properties } };
}

/**
 * The latest attempt of each of the episode's tasks: a list's row has them already (taken as
 * they are, no promise: a page has 100 episodes, each asking for tasks and progress); anything
 * else through the operation's loader.
 */
function tasksOf(
  episode: EpisodeView,
  context: GraphQLContext,
): readonly TaskView[] | Promise<readonly TaskView[]> {
  return episode.latestTasks ?? context.loaders.tasksByEpisode.load(episode.id);
}

/** What the episode's outputs hold (transcriptAvailable, exports), without loading them. */
export async function episodeExportFlags(
  episode: EpisodeView,
  context: GraphQLContext,
): Promise<ExportFlags> {
  const { transcript, transcriptSegments, chapters } = episode;
  if (transcript !== undefined && transcriptSegments !== undefined && chapters !== undefined) {
    return exportFlags({ transcript, transcriptSegments, chapters });
  }
  const outputs = await context.loaders.episodeOutputs.load({
    episodeId: episode.id,
    field: "flags",
  });
  return outputs?.flags ?? { transcript: false, timed: false, chapters: false, text: false };
}

const EpisodeOutputsRef = builder.objectRef<EpisodeView>("EpisodeOutputs").implement({
  description: "What processing made of the episode, as far as it got.",
  fields: (t) => ({
    audioUrl: t.exposeString("audioUrl", {
      nullable: true,
      description: "The podcast MP3.",
    }),
    videoUrl: t.exposeString("videoUrl", {
      nullable: true,
      description: "The YouTube-ready MP4.",
    }),
    transcriptAvailable: t.boolean({
      description: "True once the transcript is stored.",
      resolve: async (episode, _args, context) =>
        (await episodeExportFlags(episode, context)).transcript,
    }),
    transcript: t.string({
      nullable: true,
      description: "The full transcript text.",
      resolve: (episode, _args, context) => lazyOutput(episode, "transcript", context),
    }),
    transcriptSegments: t.field({
      type: [TranscriptSegmentRef],
      nullable: true,
      description: "The transcript in timed segments.",
      resolve: (episode, _args, context) => lazyOutput(episode, "transcriptSegments", context),
    }),
    chapters: t.field({
      type: [ChapterRef],
      nullable: true,
      description: "The chapters, in order.",
      resolve: (episode, _args, context) => lazyOutput(episode, "chapters", context),
    }),
  }),
});

/** The viewer's episodes among these ids, in the order asked, null where missing or not theirs. */
async function loadEpisodes(ids: readonly string[], context: GraphQLContext) {
  const viewer = requireViewer(context);
  const episodes = await findEpisodes(context.em, viewer, ids);
  const byId = new Map(episodes.map((episode) => [episode.id, episode]));
  return ids.map((id) => byId.get(id) ?? null);
}

// Entities (one episode, mutations, subscriptions) and rows (lists: listEpisodes) alike.
export const EpisodeRef = builder.node(builder.objectRef<EpisodeView>("Episode"), {
  description: "An episode a producer uploaded, and everything Podflow made of it.",
  isTypeOf: (value) => value instanceof Episode || value instanceof EpisodeRow,
  id: nodeId,
  loadManyWithoutCache: loadEpisodes,
  fields: (t) => ({
    title: t.exposeString("title", {
      description: "The episode's title.",
      ...listedWith("title"),
    }),
    description: t.exposeString("description", {
      nullable: true,
      ...listedWith("description"),
      description: "The episode's description (show notes).",
    }),
    status: t.expose("status", {
      type: EpisodeStatusEnum,
      description: "Where the episode is.",
      ...listedWith("status"),
    }),
    progress: t.int({
      description:
        "0–100: the share of the episode's processing tasks that ended (completed or failed).",
      ...listedWith("status"),
      resolve: (episode, _args, context) => {
        const tasks = tasksOf(episode, context);
        return tasks instanceof Promise
          ? tasks.then((loaded) => episodeProgress(episode, loaded))
          : episodeProgress(episode, tasks);
      },
    }),
    originalFilename: t.exposeString("originalFilename", {
      nullable: true,
      description: "The name of the uploaded file.",
      ...listedWith("originalFilename"),
    }),
    fileSize: t.expose("fileSize", {
      type: "SafeInt",
      nullable: true,
      description: "The size of the uploaded file, in bytes.",
      ...listedWith("fileSize"),
    }),
    failureReason: t.exposeString("failureReason", {
      nullable: true,
      description: "Why processing failed, when it did.",
      ...listedWith("failureReason"),
    }),
    fileId: t.exposeString("fileId", {
      nullable: true,
      description: "The uploaded file's id at the episode's media engine, once confirmed.",
      ...listedWith("fileId"),
    }),
    ittybitFileId: t.string({
      nullable: true,
      description: "The uploaded file's id at Ittybit, once confirmed.",
      ...listedWith("fileId"),
      deprecationReason: "Use fileId: episodes may be processed by the local engine.",
      resolve: (episode) => episode.fileId ?? null,
    }),
    engine: t.expose("engine", {
      type: MediaEngineEnum,
      description: "The media engine that processes this episode, fixed when it was created.",
      ...listedWith("engine"),
    }),
    createdAt: t.expose("createdAt", {
      type: "DateTime",
      description: "When the episode was created.",
      ...listedWith("createdAt"),
    }),
    processingStartedAt: t.expose("processingStartedAt", {
      type: "DateTime",
      nullable: true,
      description: "When its processing tasks were created.",
      ...listedWith("processingStartedAt"),
    }),
    processingCompletedAt: t.expose("processingCompletedAt", {
      type: "DateTime",
      nullable: true,
      description: "When processing ended.",
      ...listedWith("processingCompletedAt"),
    }),
    tasks: t.field({
      type: [ProcessingTaskRef],
      description: "The latest attempt of each processing task.",
      ...listedWith(),
      resolve: (episode, _args, context) => tasksOf(episode, context),
    }),
    outputs: t.field({
      type: EpisodeOutputsRef,
      description: "What processing made of the episode.",
      ...listedWith("audioUrl", "videoUrl"),
      resolve: (episode) => episode,
    }),
  }),
});

/** A global Episode id → the uuid, or null for anything else (which then finds nothing). */
export function episodeIdFromGlobalId(globalId: string): string | null {
  return uuidFromGlobalId(globalId, "Episode");
}

builder.queryField("episode", (t) =>
  t.field({
    type: EpisodeRef,
    nullable: true,
    description:
      "One of the viewer's episodes; null when there is none with this id, or it is not theirs.",
    args: { id: t.arg.id({ required: true, description: "The episode's global id." }) },
    resolve: async (_root, args, context) => {
      const viewer = requireViewer(context);
      const id = episodeIdFromGlobalId(String(args.id));
      return id ? findEpisode(context.em, viewer, id) : null;
    },
  }),
);

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

/** An episode's place in the newest-first order, opaque to clients. */
function encodeEpisodeCursor(episode: EpisodeCursor): string {
  return Buffer.from(`${isoDateTime(episode.createdAt)}|${episode.id}`).toString("base64url");
}

function decodeEpisodeCursor(cursor: string): EpisodeCursor | null {
  const [createdAt, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const date = new Date(createdAt ?? "");
  if (Number.isNaN(date.getTime()) || !z.uuid().safeParse(id).success) return null;
  return { createdAt: date, id: id as string };
}

const EpisodeConnectionRef = builder.connectionObject(
  { type: EpisodeRef, name: "EpisodeConnection", description: "A page of episodes." },
  { name: "EpisodeEdge", description: "An episode in a page." },
);

// Forward pagination only: a keyset newest-first list has no use for `last`/`before`, so the
// field declares its own arguments instead of `t.connection`'s four.
builder.queryField("episodes", (t) =>
  t.field({
    type: EpisodeConnectionRef,
    description: `The viewer's episodes, newest first, in pages of at most ${MAX_PAGE_SIZE}.`,
    args: {
      first: t.arg.int({
        required: false,
        description: `How many episodes, 0 to ${MAX_PAGE_SIZE}; ${DEFAULT_PAGE_SIZE} when omitted.`,
      }),
      after: t.arg.string({
        required: false,
        description: "The `endCursor` of the previous page; the first page when omitted.",
      }),
      status: t.arg({
        type: EpisodeStatusEnum,
        required: false,
        description: "Only episodes in this status.",
      }),
    },
    resolve: async (_root, args, context, info) => {
      const viewer = requireViewer(context);
      // The relay helper would quietly shrink an oversized page; say so instead.
      if (args.first != null && (args.first < 0 || args.first > MAX_PAGE_SIZE)) {
        throw badInput(`\`first\` must be between 0 and ${MAX_PAGE_SIZE}`);
      }
      const after = args.after ? decodeEpisodeCursor(args.after) : null;
      if (args.after && !after) throw badInput("`after` is not a cursor from this connection");
      const page = await resolveCursorConnection<Promise<EpisodeView[]>>(
        {
          args,
          defaultSize: DEFAULT_PAGE_SIZE,
          maxSize: MAX_PAGE_SIZE,
          toCursor: encodeEpisodeCursor,
        },
        async ({ limit }) => {
          // Only the columns of the fields the page shows, and their tasks in the same
          // statement when it shows them (tasks, progress).
          const shown = fieldsAt(info, ["edges", "node"]);
          const { episodes } = await listEpisodes(context.em, viewer, {
            limit,
            after,
            status: args.status ?? null,
            withTasks: [...TASK_FIELDS].some((name) => shown.has(name)),
            properties: listedProperties(info, shown),
          });
          return episodes;
        },
      );
      // An empty page has no cursors; the helper would echo `after`, or "" on the first page.
      if (page.edges.length > 0) return page;
      return { ...page, pageInfo: { ...page.pageInfo, startCursor: null, endCursor: null } };
    },
  }),
);

/** The Episode fields that read its tasks. */
const TASK_FIELDS: ReadonlySet<string> = new Set(["tasks", "progress"]);

/**
 * The Episode properties the connection's nodes read, given the fields they ask for
 * (`edges { node { … } }`), from those fields' extensions (listedWith); null (every column)
 * when one of them has none.
 */
function listedProperties(
  info: GraphQLResolveInfo,
  shown: ReadonlySet<string>,
): Set<string> | null {
  const episodeType = info.schema.getType("Episode");
  if (!(episodeType instanceof GraphQLObjectType)) return null;
  const fields = episodeType.getFields();
  const properties = new Set<string>();
  for (const name of shown) {
    if (name === "id" || name === "__typename") continue;
    const read = fields[name]?.extensions?.[EPISODE_PROPERTIES] as readonly string[] | undefined;
    if (!read) return null;
    for (const property of read) properties.add(property);
  }
  return properties;
}

/**
 * The names of the fields asked for at `path` below the field (fragments included; @skip and
 * @include ignored: at worst something is read that is not shown).
 */
function fieldsAt(info: GraphQLResolveInfo, path: readonly string[]): Set<string> {
  const names = new Set<string>();
  const visited = new Set<string>();
  const visit = (selectionSet: SelectionSetNode | undefined, depth: number): void => {
    for (const selection of selectionSet?.selections ?? []) {
      if (selection.kind === Kind.FIELD) {
        if (depth === path.length) names.add(selection.name.value);
        else if (selection.name.value === path[depth]) visit(selection.selectionSet, depth + 1);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet, depth);
      } else if (!visited.has(`${depth}:${selection.name.value}`)) {
        visited.add(`${depth}:${selection.name.value}`);
        visit(info.fragments[selection.name.value]?.selectionSet, depth);
      }
    }
  };
  for (const node of info.fieldNodes) visit(node.selectionSet, 0);
  return names;
}

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT" } });
}
