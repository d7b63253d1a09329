import type { EntityManager } from "@mikro-orm/postgresql";
import DataLoader from "dataloader";
import { GraphQLError } from "graphql";
import type { AppDeps } from "../deps.ts";
import type { Publication } from "../entities/publication.entity.ts";
import type { Show } from "../entities/show.entity.ts";
import type { User } from "../entities/user.entity.ts";
import { authenticate } from "../services/accounts.ts";
import { publicationsOf } from "../services/distribution/publications.ts";
import {
  type EpisodeOutputField,
  type EpisodeOutputs,
  latestTaskViews,
  loadEpisodeOutputs,
  type TaskView,
} from "../services/episodes.ts";
import { findShows } from "../services/shows.ts";
import { bearerTokenHash } from "../services/subscriber-tokens.ts";

/** Built per GraphQL operation, HTTP and WebSocket alike. */
export interface GraphQLContext {
  deps: AppDeps;
  /** A fork of the ORM's EntityManager for this operation alone (docs/architecture.md). */
  em: EntityManager;
  /** The user the bearer token belongs to; null without a valid token. */
  viewer: User | null;
  /** SHA-256 of the viewer's token: subscriptions end when it is revoked. Null without a viewer. */
  tokenHash: string | null;
  loaders: {
    /** Latest attempt of each task type, by episode id: one query per batch of episodes. */
    tasksByEpisode: DataLoader<string, TaskView[]>;
    /**
     * The viewer's shows by id, one query per batch. Not cached across batches and read fresh
     * (a subscription's context lives on while shows change).
     */
    showsById: DataLoader<string, Show | null>;
    /**
     * The lazy columns of episodes (transcript, segments, chapters) or their flags, asked per
     * field: one query per batch, with the columns the batch asked for. Not cached, like
     * showsById (a subscription's context outlives the rows).
     */
    episodeOutputs: DataLoader<
      { episodeId: string; field: EpisodeOutputField },
      EpisodeOutputs | null
    >;
    /** The publications of episodes, one query per batch, read fresh like showsById. */
    publicationsByEpisode: DataLoader<string, Publication[]>;
  };
}

export async function createContext(
  deps: AppDeps,
  authorization: string | null | undefined,
): Promise<GraphQLContext> {
  const em = deps.orm.em.fork();
  const viewer = await authenticate(em, authorization);
  return {
    deps,
    em,
    viewer,
    tokenHash: viewer ? bearerTokenHash(authorization) : null,
    loaders: {
      tasksByEpisode: new DataLoader(async (episodeIds) => {
        const tasks = await latestTaskViews(em, episodeIds);
        return episodeIds.map((id) => tasks.get(id) ?? []);
      }),
      showsById: new DataLoader(
        async (showIds) => {
          const shows = viewer ? await findShows(em, viewer, showIds, { fresh: true }) : [];
          return showIds.map((id) => shows.find((show) => show.id === id) ?? null);
        },
        { cache: false },
      ),
      episodeOutputs: new DataLoader(
        async (keys) => {
          const outputs = await loadEpisodeOutputs(
            em,
            keys.map((key) => key.episodeId),
            new Set(keys.map((key) => key.field)),
          );
          return keys.map((key) => outputs.get(key.episodeId) ?? null);
        },
        { cache: false },
      ),
      publicationsByEpisode: new DataLoader(
        async (episodeIds) => {
          const publications = await publicationsOf(em, episodeIds);
          return episodeIds.map((id) => publications.filter((p) => p.episode.id === id));
        },
        { cache: false },
      ),
    },
  };
}

/** The signed-in user, or the UNAUTHENTICATED error every protected field answers with. */
export function requireViewer(context: GraphQLContext): User {
  if (!context.viewer) {
    throw new GraphQLError("A valid API token is required: send `Authorization: Bearer <token>`", {
      extensions: { code: "UNAUTHENTICATED" },
    });
  }
  return context.viewer;
}
