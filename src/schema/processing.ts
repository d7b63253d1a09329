import type { Episode } from "../entities/episode.entity.ts";
import { ConflictError, NotFoundError } from "../services/errors.ts";
import { retryEpisode } from "../services/processing.ts";
import { RateLimitError } from "../services/producer-limits.ts";
import { builder } from "./builder.ts";
import { requireViewer } from "./context.ts";
import { EpisodeRef, episodeIdFromGlobalId } from "./episode.ts";

const RetryEpisodePayload = builder
  .objectRef<{ episode: Episode }>("RetryEpisodePayload")
  .implement({
    description: "The episode, back to PROCESSING.",
    fields: (t) => ({
      episode: t.field({
        type: EpisodeRef,
        description: "The episode.",
        resolve: (p) => p.episode,
      }),
    }),
  });

builder.mutationField("retryEpisode", (t) =>
  t.field({
    type: RetryEpisodePayload,
    description:
      "Processes a FAILED episode again: its failed tasks start over as new attempts, completed outputs are kept.",
    args: { id: t.arg.id({ required: true, description: "The episode's global id." }) },
    errors: {
      types: [NotFoundError, ConflictError, RateLimitError],
      directResult: true,
      union: { name: "RetryEpisodeResult", description: "The payload, or why nothing changed." },
    },
    resolve: async (_root, args, context) => {
      const viewer = requireViewer(context);
      const episodeId = episodeIdFromGlobalId(String(args.id));
      if (!episodeId) throw new NotFoundError("No such episode");
      const episode = await retryEpisode(context.deps, context.em, viewer, episodeId);
      return { episode };
    },
  }),
);
