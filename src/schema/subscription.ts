import { GraphQLError } from "graphql";
import {
  type EpisodeUpdate,
  FeedStoppedError,
  type Subscriber,
} from "../services/episode-feed/index.ts";
import { findEpisode } from "../services/episodes.ts";
import { builder } from "./builder.ts";
import { type GraphQLContext, requireViewer } from "./context.ts";
import { EpisodeRef, episodeIdFromGlobalId } from "./episode.ts";
import { ProcessingTaskRef } from "./task.ts";

builder.subscriptionType({
  description:
    "Live updates, over graphql-ws (WebSocket) or server-sent events on the same /graphql path, with the same token as queries.",
});

/** The viewer's episode with this global id, or the error a missing one gets: NOT_FOUND. */
async function requireOwnEpisode(context: GraphQLContext, globalId: string | number) {
  const viewer = requireViewer(context);
  const id = episodeIdFromGlobalId(String(globalId));
  const episode = id ? await findEpisode(context.em, viewer, id) : null;
  // Another producer's episode gets exactly the answer a missing one does.
  if (!episode) throw new GraphQLError("No such episode", { extensions: { code: "NOT_FOUND" } });
  return episode;
}

function subscriberOf(context: GraphQLContext): Subscriber {
  return { userId: requireViewer(context).id, tokenHash: context.tokenHash };
}

/** follow* throws once the server is stopping: tell the client to come back (elsewhere). */
function following<T>(start: () => T): T {
  try {
    return start();
  } catch (error) {
    if (!(error instanceof FeedStoppedError)) throw error;
    throw new GraphQLError(error.message, { extensions: { code: "UNAVAILABLE" } });
  }
}

/**
 * A subscription's context lives as long as it does: its task loader would answer every event
 * with the tasks of the first. Each update carries its tasks, loaded with the episode.
 */
function withTasks(context: GraphQLContext, update: EpisodeUpdate) {
  context.loaders.tasksByEpisode.clear(update.episode.id).prime(update.episode.id, update.tasks);
  return update.episode;
}

builder.subscriptionField("episodeUpdated", (t) =>
  t.field({
    type: EpisodeRef,
    description:
      "One of the viewer's episodes: its current state first, then its state after each change to it or one of its tasks, in commit order. A missing episode and another producer's get the same NOT_FOUND error.",
    args: { id: t.arg.id({ required: true, description: "The episode's global id." }) },
    subscribe: async (_root, args, context) => {
      const episode = await requireOwnEpisode(context, args.id);
      return following(() =>
        context.deps.episodeFeed.followEpisode(subscriberOf(context), episode.id),
      );
    },
    resolve: (update, _args, context) => withTasks(context, update),
  }),
);

builder.subscriptionField("taskUpdated", (t) =>
  t.field({
    type: ProcessingTaskRef,
    description:
      "Each change of one of the episode's processing tasks (the latest attempt of each type), including tasks created after subscribing. A missing episode and another producer's get the same NOT_FOUND error.",
    args: {
      episodeId: t.arg.id({ required: true, description: "The episode's global id." }),
    },
    subscribe: async (_root, args, context) => {
      const episode = await requireOwnEpisode(context, args.episodeId);
      return following(() =>
        context.deps.episodeFeed.followTasks(subscriberOf(context), episode.id),
      );
    },
    resolve: (update) => update.task,
  }),
);

builder.subscriptionField("myEpisodesUpdated", (t) =>
  t.field({
    type: EpisodeRef,
    description:
      "Any of the viewer's episodes, each time it or one of its tasks changes: the dashboard feed.",
    subscribe: (_root, _args, context) =>
      following(() => context.deps.episodeFeed.followUserEpisodes(subscriberOf(context))),
    resolve: (update, _args, context) => withTasks(context, update),
  }),
);
