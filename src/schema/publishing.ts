import type { EpisodeType } from "../domain/apple-categories.ts";
import type { Episode } from "../entities/episode.entity.ts";
import type { EpisodeView } from "../services/episodes.ts";
import { ConflictError, NotFoundError, ValidationError } from "../services/errors.ts";
import { availableExports, type ExportFile, exportUrl } from "../services/exports/exports.ts";
import { publishEpisode, setEpisodeShow, unpublishEpisode } from "../services/publishing.ts";
import { builder } from "./builder.ts";
import { requireViewer } from "./context.ts";
import { DestinationEnum, YouTubePrivacyEnum } from "./distribution.ts";
import { EpisodeRef, episodeExportFlags, episodeIdFromGlobalId, listedWith } from "./episode.ts";
import { ShowRef, showIdFromGlobalId } from "./show.ts";

/** An episode's place in a show's feed: its show, publication, numbers and export files. */

export const EpisodeTypeEnum = builder.enumType("EpisodeType", {
  description: "How an episode is presented in its show's feed (`itunes:episodeType`).",
  values: {
    FULL: { value: "full", description: "A regular episode." },
    TRAILER: { value: "trailer", description: "A trailer for the show or a season." },
    BONUS: { value: "bonus", description: "Extra material." },
  } satisfies Record<Uppercase<EpisodeType>, { value: EpisodeType; description: string }>,
});

const EXPORT_FIELDS: Record<string, { file: ExportFile; description: string }> = {
  vttUrl: { file: "transcript.vtt", description: "WebVTT captions (`text/vtt`)." },
  srtUrl: { file: "transcript.srt", description: "SRT captions (`application/x-subrip`)." },
  jsonTranscriptUrl: {
    file: "transcript.json",
    description: "The Podcasting 2.0 JSON transcript (`application/json`).",
  },
  chaptersUrl: {
    file: "chapters.json",
    description: "JSON chapters 1.2 (`application/json+chapters`).",
  },
  textUrl: { file: "transcript.txt", description: "The transcript as plain text." },
};

const EpisodeExportsRef = builder.objectRef<EpisodeView>("EpisodeExports").implement({
  description:
    "Public URLs of the episode's transcript and chapters in the formats players, podcast apps and YouTube read; null where there is nothing to export.",
  fields: (t) =>
    Object.fromEntries(
      Object.entries(EXPORT_FIELDS).map(([name, { file, description }]) => [
        name,
        t.string({
          nullable: true,
          description,
          resolve: async (episode, _args, context) =>
            availableExports(await episodeExportFlags(episode, context))[file]
              ? exportUrl(
                  context.deps.config.publicUrl,
                  context.deps.exportSecret,
                  episode.id,
                  file,
                )
              : null,
        }),
      ]),
    ),
});

builder.objectFields(EpisodeRef, (t) => ({
  show: t.field({
    type: ShowRef,
    nullable: true,
    description: "The show whose feed the episode belongs to.",
    ...listedWith("show"),
    resolve: (episode, _args, context) =>
      episode.show ? context.loaders.showsById.load(episode.show.id) : null,
  }),
  published: t.exposeBoolean("published", {
    description: "True while the episode is in its show's feed.",
    ...listedWith("published"),
  }),
  publishAt: t.expose("publishAt", {
    type: "DateTime",
    nullable: true,
    description:
      "When the episode is (or is scheduled to be) in its show's feed: its `pubDate`. Null when not published.",
    ...listedWith("publishAt"),
  }),
  feedGuid: t.exposeString("feedGuid", {
    nullable: true,
    description: "The feed item's GUID, fixed at the first publication.",
    ...listedWith("feedGuid"),
  }),
  episodeNumber: t.exposeInt("episodeNumber", {
    nullable: true,
    description: "The episode's number in the feed.",
    ...listedWith("episodeNumber"),
  }),
  seasonNumber: t.exposeInt("seasonNumber", {
    nullable: true,
    description: "The season's number in the feed.",
    ...listedWith("seasonNumber"),
  }),
  episodeType: t.expose("episodeType", {
    type: EpisodeTypeEnum,
    description: "Full, trailer or bonus.",
    ...listedWith("episodeType"),
  }),
  exports: t.field({
    type: EpisodeExportsRef,
    nullable: true,
    description: "The transcript and chapters as files; null until the episode is PROCESSED.",
    ...listedWith("status"),
    resolve: (episode) => (episode.status === "PROCESSED" ? episode : null),
  }),
}));

const EpisodePayload = builder.objectRef<{ episode: Episode }>("EpisodePayload").implement({
  description: "The episode as it is now.",
  fields: (t) => ({
    episode: t.field({ type: EpisodeRef, description: "The episode.", resolve: (p) => p.episode }),
  }),
});

const SetEpisodeShowInput = builder.inputType("SetEpisodeShowInput", {
  description: "The episode and the show to put it in.",
  fields: (t) => ({
    episodeId: t.id({ required: true, description: "The episode's global id." }),
    showId: t.id({
      required: false,
      description: "The show's global id; null takes the episode out of its show.",
    }),
  }),
});

function episodeUuid(globalId: string | number): string {
  const id = episodeIdFromGlobalId(String(globalId));
  if (!id) throw new NotFoundError("No such episode");
  return id;
}

builder.mutationField("setEpisodeShow", (t) =>
  t.field({
    type: EpisodePayload,
    description:
      "Puts an episode in one of the viewer's shows (or in none); a published episode moves to the new show's feed.",
    args: { input: t.arg({ type: SetEpisodeShowInput, required: true }) },
    errors: {
      types: [NotFoundError],
      directResult: true,
      union: { name: "SetEpisodeShowResult", description: "The episode, or why nothing changed." },
    },
    resolve: async (_root, { input }, context) => {
      const viewer = requireViewer(context);
      const episodeId = episodeUuid(input.episodeId);
      let showId: string | null = null;
      if (input.showId != null) {
        showId = showIdFromGlobalId(String(input.showId));
        if (!showId) throw new NotFoundError("No such show");
      }
      return { episode: await setEpisodeShow(context.em, viewer, { episodeId, showId }) };
    },
  }),
);

const PublishEpisodeInput = builder.inputType("PublishEpisodeInput", {
  description: "The episode to put in its show's feed, when, and how the feed numbers it.",
  fields: (t) => ({
    episodeId: t.id({ required: true, description: "The episode's global id." }),
    publishAt: t.field({
      type: "DateTime",
      required: false,
      description:
        "When it appears in the feed (its `pubDate`); now when omitted. A past time publishes at once with that date (a back catalogue keeps its dates).",
    }),
    episodeNumber: t.int({
      required: false,
      description: "The episode's number (`itunes:episode`), > 0; null clears it.",
    }),
    seasonNumber: t.int({
      required: false,
      description: "The season's number (`itunes:season`), > 0; null clears it.",
    }),
    episodeType: t.field({
      type: EpisodeTypeEnum,
      required: false,
      description: "Full (the default), trailer or bonus.",
    }),
    guid: t.string({
      required: false,
      description:
        "The item's GUID at its first publication — an episode moved from another host keeps the GUID apps know it by; the episode's id when omitted. Fixed from then on: another value later is a ConflictError.",
    }),
    destinations: t.field({
      type: [DestinationEnum],
      required: false,
      description:
        "Where to publish: the show's feed (the default), Transistor, YouTube — each a Publication on the episode. Transistor and YouTube need a working connection; their uploads start at once, and a later `publishAt` is handed to them as their schedule.",
    }),
    youtubePrivacy: t.field({
      type: YouTubePrivacyEnum,
      required: false,
      description:
        "The YouTube video's privacy once it is out (public by default). A scheduled video is private until `publishAt`.",
    }),
  }),
});

builder.mutationField("publishEpisode", (t) =>
  t.field({
    type: EpisodePayload,
    description:
      "Publishes a PROCESSED episode, now or at `publishAt`: to its show's feed (the default) and/or Transistor and YouTube (`destinations`). Publishing again changes the time and numbers and republishes the same remote episode and video; the feed item's GUID never changes.",
    args: { input: t.arg({ type: PublishEpisodeInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, ConflictError],
      directResult: true,
      union: { name: "PublishEpisodeResult", description: "The episode, or why nothing changed." },
    },
    resolve: async (_root, { input }, context) => ({
      episode: await publishEpisode(
        {
          em: context.em,
          boss: context.deps.boss,
          engines: context.deps.engines,
          logger: context.deps.logger,
        },
        requireViewer(context),
        {
          episodeId: episodeUuid(input.episodeId),
          publishAt: input.publishAt,
          episodeNumber: input.episodeNumber,
          seasonNumber: input.seasonNumber,
          episodeType: input.episodeType,
          guid: input.guid,
          destinations: input.destinations,
          youtubePrivacy: input.youtubePrivacy,
        },
      ),
    }),
  }),
);

const UnpublishEpisodeInput = builder.inputType("UnpublishEpisodeInput", {
  description: "The episode to take out of its show's feed.",
  fields: (t) => ({
    episodeId: t.id({ required: true, description: "The episode's global id." }),
  }),
});

builder.mutationField("unpublishEpisode", (t) =>
  t.field({
    type: EpisodePayload,
    description:
      "Takes an episode out of its show's feed, a scheduled publication included. Publishing it again keeps its GUID.",
    args: { input: t.arg({ type: UnpublishEpisodeInput, required: true }) },
    errors: {
      types: [NotFoundError],
      directResult: true,
      union: {
        name: "UnpublishEpisodeResult",
        description: "The episode, or why nothing changed.",
      },
    },
    resolve: async (_root, { input }, context) => ({
      episode: await unpublishEpisode(
        context.em,
        requireViewer(context),
        episodeUuid(input.episodeId),
      ),
    }),
  }),
);
