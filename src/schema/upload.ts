import type { Episode } from "../entities/episode.entity.ts";
import { confirmUpload, type PreparedUpload, prepareUpload } from "../services/episodes.ts";
import {
  ConflictError,
  NotFoundError,
  ProcessingUnavailableError,
  UnknownFileError,
  ValidationError,
} from "../services/errors.ts";
import { builder } from "./builder.ts";
import { requireViewer } from "./context.ts";
import { EpisodeRef, episodeIdFromGlobalId } from "./episode.ts";

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
  }),
});

const UploadTargetRef = builder.objectRef<PreparedUpload["upload"]>("UploadTarget").implement({
  description: "Where to send the file: straight to Ittybit's storage, never through Podflow.",
  fields: (t) => ({
    url: t.exposeString("url", { description: "The signed URL to send the file's bytes to." }),
    method: t.exposeString("method", { description: "The HTTP method to use: PUT." }),
    expiresAt: t.field({
      type: "DateTime",
      description: "When the URL stops working.",
      resolve: (upload) => upload.expiresAt,
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
      types: [ValidationError, ProcessingUnavailableError],
      directResult: true,
      union: {
        name: "PrepareUploadResult",
        description: "The payload, or why nothing was created.",
      },
    },
    resolve: (_root, { input }, context) =>
      prepareUpload(
        {
          em: context.em,
          ittybit: context.deps.ittybit,
          maxUploadBytes: context.deps.config.maxUploadBytes,
        },
        requireViewer(context),
        input,
      ),
  }),
);

const ConfirmUploadInput = builder.inputType("ConfirmUploadInput", {
  description: "The episode whose upload finished, and the file Ittybit made of it.",
  fields: (t) => ({
    episodeId: t.id({ required: true, description: "The episode's global id." }),
    ittybitFileId: t.string({ required: true, description: "The uploaded file's id at Ittybit." }),
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
      const episode = await confirmUpload(
        { em: context.em, ittybit: context.deps.ittybit, boss: context.deps.boss },
        viewer,
        { episodeId, ittybitFileId: input.ittybitFileId },
      );
      return { episode };
    },
  }),
);
