import { GraphQLError } from "graphql";
import type {
  ConnectionService,
  ConnectionStatus,
  Destination,
  PublicationStatus,
} from "../domain/publications.ts";
import { Publication } from "../entities/publication.entity.ts";
import { PublishingConnection } from "../entities/publishing-connection.entity.ts";
import {
  chooseTransistorShow,
  connectTransistor,
  disconnect,
  findConnections,
  startYouTubeConnection,
  transistorShows,
} from "../services/distribution/connections.ts";
import { retryPublication } from "../services/distribution/publications.ts";
import type { TransistorShow } from "../services/distribution/transistor-client.ts";
import { ConflictError, DomainError, NotFoundError, ValidationError } from "../services/errors.ts";
import { builder } from "./builder.ts";
import { type GraphQLContext, requireViewer } from "./context.ts";
import { EpisodeRef, listedWith } from "./episode.ts";

/** Connections to Transistor and YouTube, and the episode's publications. */

export const DestinationEnum = builder.enumType("Destination", {
  description: "Where an episode is published.",
  values: {
    FEED: { description: "The RSS feed of the episode's show, served by Podflow." },
    TRANSISTOR: { description: "The producer's show at Transistor.fm." },
    YOUTUBE: { description: "The producer's YouTube channel." },
  } satisfies Record<Destination, { description: string }>,
});

export const YouTubePrivacyEnum = builder.enumType("YouTubePrivacy", {
  description: "Who can see a YouTube video.",
  values: {
    PUBLIC: { value: "public", description: "Everyone." },
    UNLISTED: { value: "unlisted", description: "Anyone with the link." },
    PRIVATE: { value: "private", description: "Only the channel." },
  } as const,
});

const PublicationStatusEnum = builder.enumType("PublicationStatus", {
  description:
    "Where a publication is: QUEUED → UPLOADING → PROCESSING → PUBLISHED | SCHEDULED, or FAILED (`failureReason` says why; retryPublication starts it again).",
  values: {
    QUEUED: { description: "Waiting for a worker (or, with `waitingReason`, for the service)." },
    UPLOADING: { description: "The media is being sent; `bytesSent` of `bytesTotal`." },
    PROCESSING: { description: "The service has the media and is processing it." },
    PUBLISHED: { description: "Out: `remoteUrl` is where listeners and viewers find it." },
    SCHEDULED: { description: "At the service, set to go public at `publishAt`." },
    FAILED: { description: "Stopped for good: `failureReason` says why." },
  } satisfies Record<PublicationStatus, { description: string }>,
});

const ServiceEnum = builder.enumType("PublishingService", {
  description: "A service Podflow publishes to with the producer's own account.",
  values: {
    TRANSISTOR: { value: "transistor", description: "Transistor.fm, with an API key." },
    YOUTUBE: { value: "youtube", description: "YouTube, through Google's consent (OAuth)." },
  } as const satisfies Record<
    Uppercase<ConnectionService>,
    { value: ConnectionService; description: string }
  >,
});

const ConnectionStatusEnum = builder.enumType("ConnectionStatus", {
  description: "Whether Podflow can publish with a connection.",
  values: {
    PENDING: { description: "Connecting: Google's consent screen has not answered yet." },
    CONNECTED: { description: "Working." },
    BROKEN: {
      description: "The service refused the stored credential: `brokenReason`; connect again.",
    },
  } satisfies Record<ConnectionStatus, { description: string }>,
});

export const PublicationRef = builder.objectType(Publication, {
  name: "Publication",
  description:
    "An episode at one destination, moved along by Podflow's workers; every change reaches the episode's subscribers.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The publication's id (for retryPublication)." }),
    destination: t.field({
      type: DestinationEnum,
      description: "Where.",
      resolve: (p) => p.destination,
    }),
    status: t.field({
      type: PublicationStatusEnum,
      description: "Where it is.",
      resolve: (p) => p.status,
    }),
    bytesSent: t.float({
      description: "Bytes of the media sent to the service so far.",
      resolve: (p) => p.bytesSent,
    }),
    bytesTotal: t.float({
      nullable: true,
      description: "The media's size, once the upload started.",
      resolve: (p) => p.bytesTotal ?? null,
    }),
    publishAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When it goes (went) public.",
      resolve: (p) => p.publishAt ?? null,
    }),
    remoteId: t.string({
      nullable: true,
      description: "The episode's id at Transistor, or the video's id at YouTube.",
      resolve: (p) => p.remoteId ?? null,
    }),
    remoteUrl: t.string({
      nullable: true,
      description: "Where it is at the service (Transistor's share page, the YouTube video).",
      resolve: (p) => p.remoteUrl ?? null,
    }),
    failureReason: t.string({
      nullable: true,
      description: "Why it FAILED.",
      resolve: (p) => p.failureReason ?? null,
    }),
    waitingReason: t.string({
      nullable: true,
      description:
        "Why it is waiting, while it is not FAILED: a retry after the service's trouble, or YouTube's daily quota (until `waitingUntil`).",
      resolve: (p) => p.waitingReason ?? null,
    }),
    waitingUntil: t.field({
      type: "DateTime",
      nullable: true,
      description: "When the wait ends, when known.",
      resolve: (p) => p.waitingUntil ?? null,
    }),
    captionsNote: t.string({
      nullable: true,
      description: "YouTube: why the video has no caption track from the transcript, if not.",
      resolve: (p) => p.progress.captionsSkipped ?? null,
    }),
    updatedAt: t.field({
      type: "DateTime",
      description: "When it last changed.",
      resolve: (p) => p.updatedAt,
    }),
  }),
});

builder.objectFields(EpisodeRef, (t) => ({
  publications: t.field({
    type: [PublicationRef],
    description:
      "Where the episode is published or being published: one per destination asked for with publishEpisode.",
    ...listedWith(),
    resolve: (episode, _args, context) => context.loaders.publicationsByEpisode.load(episode.id),
  }),
}));

const TransistorShowRef = builder.objectRef<TransistorShow>("TransistorShow").implement({
  description: "A show of the producer's Transistor account.",
  fields: (t) => ({
    id: t.exposeString("id", { description: "Transistor's id of the show." }),
    title: t.exposeString("title", { description: "The show's title." }),
  }),
});

const ConnectionRef = builder.objectType(PublishingConnection, {
  name: "PublishingConnection",
  description:
    "The producer's account at a publishing service. Its secrets (API key, tokens) are stored encrypted and never returned.",
  fields: (t) => ({
    service: t.field({
      type: ServiceEnum,
      description: "Which service.",
      resolve: (c) => c.service,
    }),
    status: t.field({
      type: ConnectionStatusEnum,
      description: "Whether it works.",
      resolve: (c) => c.status,
    }),
    brokenReason: t.string({
      nullable: true,
      description: "Why a BROKEN connection stopped working.",
      resolve: (c) => c.brokenReason ?? null,
    }),
    accountName: t.string({
      nullable: true,
      description: "The account as the service names it: the Transistor user, the YouTube channel.",
      resolve: (c) => c.accountName ?? null,
    }),
    transistorShow: t.field({
      type: TransistorShowRef,
      nullable: true,
      description: "Transistor: the show episodes are published to.",
      resolve: (c) =>
        c.transistorShowId
          ? {
              id: c.transistorShowId,
              title: c.transistorShowTitle ?? "",
              timeZone: null,
              slug: null,
            }
          : null,
    }),
    updatedAt: t.field({
      type: "DateTime",
      description: "When it last changed.",
      resolve: (c) => c.updatedAt,
    }),
  }),
});

builder.queryField("publishingConnections", (t) =>
  t.field({
    type: [ConnectionRef],
    description: "The viewer's connections to Transistor and YouTube.",
    resolve: (_root, _args, context) => findConnections(context.em, requireViewer(context)),
  }),
);

builder.queryField("transistorShows", (t) =>
  t.field({
    type: [TransistorShowRef],
    description:
      "The shows of the viewer's Transistor account, asked of Transistor now. Without a working connection: an error saying so (code FAILED_PRECONDITION).",
    resolve: (_root, _args, context) =>
      transistorShows(connectionDeps(context), requireViewer(context)).catch((error: unknown) => {
        if (!(error instanceof DomainError)) throw error;
        throw new GraphQLError(error.message, { extensions: { code: "FAILED_PRECONDITION" } });
      }),
  }),
);

function connectionDeps(context: GraphQLContext) {
  return { em: context.em, distribution: context.deps.distribution, logger: context.deps.logger };
}

const ConnectionPayload = builder
  .objectRef<{ connection: PublishingConnection; shows?: TransistorShow[] }>("ConnectionPayload")
  .implement({
    description: "The connection as it is now.",
    fields: (t) => ({
      connection: t.field({
        type: ConnectionRef,
        description: "The connection.",
        resolve: (p) => p.connection,
      }),
      transistorShows: t.field({
        type: [TransistorShowRef],
        nullable: true,
        description: "Transistor: the account's shows, to choose from when none is chosen.",
        resolve: (p) => p.shows ?? null,
      }),
    }),
  });

const ConnectTransistorInput = builder.inputType("ConnectTransistorInput", {
  description: "A Transistor API key (Account → API Access) and, optionally, the show to use.",
  fields: (t) => ({
    apiKey: t.string({ required: true, description: "The API key; stored encrypted." }),
    showId: t.string({
      required: false,
      description:
        "Transistor's id (or slug) of the show to publish to; the only show when omitted and there is one.",
    }),
  }),
});

builder.mutationField("connectTransistor", (t) =>
  t.field({
    type: ConnectionPayload,
    description:
      "Connects the viewer's Transistor account, checking the key with Transistor first. A refused key changes nothing.",
    args: { input: t.arg({ type: ConnectTransistorInput, required: true }) },
    errors: {
      types: [ValidationError, ConflictError],
      directResult: true,
      union: { name: "ConnectTransistorResult", description: "The connection, or why not." },
    },
    resolve: (_root, { input }, context) =>
      connectTransistor(connectionDeps(context), requireViewer(context), input),
  }),
);

builder.mutationField("chooseTransistorShow", (t) =>
  t.field({
    type: ConnectionPayload,
    description: "Chooses which of the viewer's Transistor shows episodes are published to.",
    args: { showId: t.arg.string({ required: true, description: "Transistor's show id." }) },
    errors: {
      types: [ValidationError, ConflictError],
      directResult: true,
      union: { name: "ChooseTransistorShowResult", description: "The connection, or why not." },
    },
    resolve: async (_root, { showId }, context) => ({
      connection: await chooseTransistorShow(
        connectionDeps(context),
        requireViewer(context),
        showId,
      ),
    }),
  }),
);

const YouTubeConsent = builder
  .objectRef<{ consentUrl: string; connection: PublishingConnection }>("YouTubeConsent")
  .implement({
    description: "Where to send the producer to let Podflow publish to their channel.",
    fields: (t) => ({
      consentUrl: t.exposeString("consentUrl", {
        description:
          "Google's consent page; Google then sends the browser back to Podflow, which completes the connection. Valid for 15 minutes, once.",
      }),
      connection: t.field({
        type: ConnectionRef,
        description:
          "The connection (PENDING until the consent completes, unless it already worked).",
        resolve: (p) => p.connection,
      }),
    }),
  });

builder.mutationField("connectYouTube", (t) =>
  t.field({
    type: YouTubeConsent,
    description:
      "Starts connecting the viewer's YouTube channel (OAuth 2.0 with PKCE): open `consentUrl` in a browser.",
    errors: {
      types: [ConflictError],
      directResult: true,
      union: { name: "ConnectYouTubeResult", description: "The consent URL, or why not." },
    },
    resolve: (_root, _args, context) =>
      startYouTubeConnection(connectionDeps(context), requireViewer(context)),
  }),
);

const DisconnectPayload = builder
  .objectRef<{ service: ConnectionService }>("DisconnectPayload")
  .implement({
    description: "The service that was disconnected.",
    fields: (t) => ({
      service: t.field({ type: ServiceEnum, description: "Which.", resolve: (p) => p.service }),
    }),
  });

builder.mutationField("disconnectService", (t) =>
  t.field({
    type: DisconnectPayload,
    description: "Forgets a connection and its secrets. What was published stays at the service.",
    args: { service: t.arg({ type: ServiceEnum, required: true, description: "Which." }) },
    errors: {
      types: [NotFoundError],
      directResult: true,
      union: { name: "DisconnectServiceResult", description: "Done, or why not." },
    },
    resolve: async (_root, { service }, context) => {
      await disconnect(context.em, requireViewer(context), service);
      return { service };
    },
  }),
);

const PublicationPayload = builder
  .objectRef<{ publication: Publication }>("PublicationPayload")
  .implement({
    description: "The publication as it is now.",
    fields: (t) => ({
      publication: t.field({
        type: PublicationRef,
        description: "The publication.",
        resolve: (p) => p.publication,
      }),
    }),
  });

builder.mutationField("retryPublication", (t) =>
  t.field({
    type: PublicationPayload,
    description:
      "Starts a FAILED publication again. It continues from what the service already has: never a second remote episode or video.",
    args: { id: t.arg.id({ required: true, description: "The publication's id." }) },
    errors: {
      types: [NotFoundError, ConflictError],
      directResult: true,
      union: { name: "RetryPublicationResult", description: "The publication, or why not." },
    },
    resolve: async (_root, { id }, context) => {
      const viewer = requireViewer(context);
      const uuid = String(id);
      if (!/^[0-9a-f-]{36}$/i.test(uuid)) throw new NotFoundError("No such publication");
      return {
        publication: await retryPublication(
          { em: context.em, boss: context.deps.boss },
          viewer,
          uuid,
        ),
      };
    },
  }),
);
