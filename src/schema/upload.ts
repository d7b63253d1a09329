import type { Episode } from "../entities/episode.entity.ts";
import { confirmUpload, type PreparedUpload, prepareUpload } from "../services/episodes.ts";
import {
  ConflictError,
  InvalidMediaError,
  NotFoundError,
  ProcessingUnavailableError,
  UnknownFileError,
  ValidationError,
} from "../services/errors.ts";
import { RateLimitError } from "../services/producer-limits.ts";
import { builder } from "./builder.ts";
import { requireViewer } from "./context.ts";
import { EpisodeRef, episodeIdFromGlobalId } from "./episode.ts";
import { showIdFromGlobalId } from "./show.ts";

const PrepareUploadInput = builder.inputType("PrepareUploadInput", {
  description: "The episode to create and the file that will be uploaded for it.",
  fields: (t) => ({
    filename: t.string({
      required: true,
      description:
        "The file's name, with a media extension (mp4 mov mkv webm m4a mp3 wav flac aac ogg).",
    }),
    title: t.string({ required: true, description: "The episode's title, 1–200 characters." }),
    description: t.string({ required: false, description: "The episode's description." }),
    filesize: t.field({
      type: "SafeInt",
      required: true,
      description:
        "The file's size in bytes; at most the server's upload limit (4 GiB by default).",
    }),
    showId: t.id({
      required: false,
      description: "One of your shows to put the episode in (see setEpisodeShow).",
    }),
  }),
});

const UploadTargetRef = builder.objectRef<PreparedUpload["upload"]>("UploadTarget").implement({
  description:
    "Where to send the file: to the media engine's storage (Ittybit's, or Podflow's own for the local engine).",
  fields: (t) => ({
    url: t.exposeString("url", { description: "The signed URL to send the file's bytes to." }),
    method: t.exposeString("method", { description: "The HTTP method to use: PUT." }),
    expiresAt: t.field({
      type: "DateTime",
      description: "When the URL stops working.",
      resolve: (upload) => upload.expiresAt,
    }),
    tusUrl: t.string({
      nullable: true,
      description:
        "A tus 1.0 creation URL for resumable uploads (e.g. tus-js-client's `endpoint`): POST creates the upload, PATCH sends bytes, HEAD tells where to resume. Signed and expiring like `url`; the upload's own URL (the Location answer) carries the signature on. The file id for confirmUpload is the last path segment of that upload URL (the final PATCH also answers `{\"id\"}`). Null when the engine has none (Ittybit). Use it for large recordings.",
      resolve: (upload) => upload.tusUrl,
    }),
  }),
});

const PrepareUploadPayload = builder.objectRef<PreparedUpload>("PrepareUploadPayload").implement({
  description: "The new episode and where to upload its file.",
  fields: (t) => ({
    episode: t.field({
      type: EpisodeRef,
      description: "The new episode, AWAITING_UPLOAD.",
      resolve: (p) => p.episode,
    }),
    upload: t.field({
      type: UploadTargetRef,
      description: "Where to upload the file.",
      resolve: (p) => p.upload,
    }),
  }),
});

builder.mutationField("prepareUpload", (t) =>
  t.field({
    type: PrepareUploadPayload,
    description:
      "Creates an episode and returns a signed URL to upload its file to, then call confirmUpload.",
    args: { input: t.arg({ type: PrepareUploadInput, required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, ProcessingUnavailableError, RateLimitError],
      directResult: true,
      union: {
        name: "PrepareUploadResult",
        description: "The payload, or why nothing was created.",
      },
    },
    resolve: (_root, { input }, context) => {
      let showId: string | null = null;
      if (input.showId != null) {
        showId = showIdFromGlobalId(String(input.showId));
        if (!showId) throw new NotFoundError("No such show");
      }
      return prepareUpload(
        {
          em: context.em,
          engines: context.deps.engines,
          engine: context.deps.config.mediaEngine,
          maxUploadBytes: context.deps.config.maxUploadBytes,
          maxEpisodesPerHour: context.deps.config.security.producers.maxEpisodesPerHour,
        },
        requireViewer(context),
        { ...input, showId },
      );
    },
  }),
);

const ConfirmUploadInput = builder.inputType("ConfirmUploadInput", {
  description: "The episode whose upload finished, and the file the upload made.",
  fields: (t) => ({
    episodeId: t.id({ required: true, description: "The episode's global id." }),
    fileId: t.string({
      required: false,
      description:
        "The uploaded file's id: the `id` in the upload's JSON answer. Required (or its deprecated alias).",
    }),
    ittybitFileId: t.string({
      required: false,
      deprecationReason: "Use fileId.",
      description: "The uploaded file's id at Ittybit.",
    }),
  }),
});

const ConfirmUploadPayload = builder
  .objectRef<{ episode: Episode }>("ConfirmUploadPayload")
  .implement({
    description: "The episode, UPLOADED with processing queued.",
    fields: (t) => ({
      episode: t.field({
        type: EpisodeRef,
        description: "The episode.",
        resolve: (p) => p.episode,
      }),
    }),
  });

builder.mutationField("confirmUpload", (t) =>
  t.field({
    type: ConfirmUploadPayload,
    description:
      "Confirms the upload and queues processing. Idempotent for the same file; another file once one was confirmed is a ConflictError.",
    args: { input: t.arg({ type: ConfirmUploadInput, required: true }) },
    errors: {
      types: [
        ValidationError,
        NotFoundError,
        UnknownFileError,
        InvalidMediaError,
        ConflictError,
        ProcessingUnavailableError,
      ],
      directResult: true,
      union: { name: "ConfirmUploadResult", description: "The payload, or why nothing changed." },
    },
    resolve: async (_root, { input }, context) => {
      const viewer = requireViewer(context);
      const episodeId = episodeIdFromGlobalId(String(input.episodeId));
      if (!episodeId) throw new NotFoundError("No such episode");
      if (input.fileId && input.ittybitFileId && input.fileId !== input.ittybitFileId) {
        throw new ValidationError([{ field: "fileId", message: "differs from ittybitFileId" }]);
      }
      const fileId = input.fileId ?? input.ittybitFileId;
      if (!fileId) {
        throw new ValidationError([{ field: "fileId", message: "is required" }]);
      }
      const episode = await confirmUpload(
        {
          em: context.em,
          engines: context.deps.engines,
          boss: context.deps.boss,
          maxUploadBytes: context.deps.config.maxUploadBytes,
        },
        viewer,
        { episodeId, fileId },
      );
      return { episode };
    },
  }),
);
