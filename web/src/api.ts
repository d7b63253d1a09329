/**
 * Podflow's public GraphQL API, as every client uses it: queries and mutations by HTTP POST to
 * /graphql with the token in the Authorization header, live updates by graphql-ws on the same
 * path with the token in connectionParams.
 */
import { type Client, createClient } from "graphql-ws";

export const GRAPHQL_PATH = "/graphql";

export type EpisodeStatus = "AWAITING_UPLOAD" | "UPLOADED" | "PROCESSING" | "PROCESSED" | "FAILED";
export type TaskStatus = "PENDING" | "PROCESSING" | "COMPLETED" | "FAILED" | "SKIPPED";
export type TaskType =
  | "AUDIO_EXTRACTION"
  | "VIDEO_TRANSCODE"
  | "TRANSCRIPT_GENERATION"
  | "CHAPTER_DETECTION";

export interface Task {
  id: string;
  type: TaskType;
  status: TaskStatus;
  progress: number | null;
  error: string | null;
  attempt: number;
  outputUrl: string | null;
}

export interface Segment {
  start: number;
  end: number;
  text: string;
  speaker: string | null;
}

export interface Chapter {
  start: number;
  end: number | null;
  title: string;
}

export interface Episode {
  id: string;
  title: string;
  description: string | null;
  status: EpisodeStatus;
  failureReason: string | null;
  createdAt: string;
  progress: number;
  originalFilename: string | null;
  fileSize: number | null;
  tasks: Task[];
  outputs: {
    audioUrl: string | null;
    videoUrl: string | null;
    transcriptAvailable: boolean;
    /** Only in TRANSCRIPT_QUERY's answer: a page of episodes leaves the transcripts out. */
    transcript?: string | null;
    transcriptSegments?: Segment[] | null;
    chapters: Chapter[] | null;
  };
  /** When it is (or will be) in its show's feed; null when not published. */
  publishAt: string | null;
  published: boolean;
  show: { id: string; title: string } | null;
  exports: EpisodeExports | null;
  /** One per destination asked for with publishEpisode: the feed, Transistor, YouTube. */
  publications: Publication[];
}

export type Destination = "FEED" | "TRANSISTOR" | "YOUTUBE";
export type PublicationStatus =
  | "QUEUED"
  | "UPLOADING"
  | "PROCESSING"
  | "PUBLISHED"
  | "SCHEDULED"
  | "FAILED";
export type YouTubePrivacy = "PUBLIC" | "UNLISTED" | "PRIVATE";

export interface Publication {
  id: string;
  destination: Destination;
  status: PublicationStatus;
  bytesSent: number;
  bytesTotal: number | null;
  publishAt: string | null;
  remoteUrl: string | null;
  failureReason: string | null;
  waitingReason: string | null;
  waitingUntil: string | null;
  captionsNote: string | null;
}

export type PublishingService = "TRANSISTOR" | "YOUTUBE";
export type ConnectionStatus = "PENDING" | "CONNECTED" | "BROKEN";

export interface PublishingConnection {
  service: PublishingService;
  status: ConnectionStatus;
  brokenReason: string | null;
  accountName: string | null;
  transistorShow: { id: string; title: string } | null;
}

export const CONNECTION_FIELDS = `
  fragment DashboardConnection on PublishingConnection {
    service status brokenReason accountName transistorShow { id title }
  }`;

export interface EpisodeExports {
  vttUrl: string | null;
  srtUrl: string | null;
  jsonTranscriptUrl: string | null;
  chaptersUrl: string | null;
  textUrl: string | null;
}

export interface Show {
  id: string;
  title: string;
  description: string;
  author: string;
  ownerEmail: string;
  language: string;
  category: string;
  explicit: boolean;
  feedUrl: string;
}

export const SHOW_FIELDS = `
  fragment DashboardShow on Show {
    id title description author ownerEmail language category explicit feedUrl
  }`;

/** A mutation's refusal: a message, and per field what is wrong when the API names fields. */
export interface Refusal {
  __typename: string;
  message?: string;
  problems?: { field: string; message: string }[];
}

export const EPISODE_FIELDS = `
  fragment DashboardEpisode on Episode {
    id title description status failureReason createdAt progress originalFilename fileSize
    tasks { id type status progress error attempt outputUrl }
    outputs {
      audioUrl videoUrl transcriptAvailable
      chapters { start end title }
    }
    publishAt published show { id title }
    exports { vttUrl srtUrl jsonTranscriptUrl chaptersUrl textUrl }
    publications {
      id destination status bytesSent bytesTotal publishAt remoteUrl
      failureReason waitingReason waitingUntil captionsNote
    }
  }`;

/**
 * One episode's transcript, fetched by its card: Podflow's cost limit weighs a transcript as a
 * long episode's, so a page of episodes with their transcripts would be refused.
 */
export const TRANSCRIPT_QUERY = `query DashboardTranscript($id: ID!) { episode(id: $id) {
  id outputs { transcript transcriptSegments { start end text speaker } } } }`;

export type Transcript = { transcript: string | null; transcriptSegments: Segment[] | null };

/** A GraphQL error answer: the request reached Podflow and was refused. */
export class ApiError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export class PodflowApi {
  readonly token: string;
  constructor(token: string) {
    this.token = token;
  }

  get authorization(): string {
    return `Bearer ${this.token}`;
  }

  async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    let response: Response;
    try {
      response = await fetch(GRAPHQL_PATH, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/graphql-response+json, application/json",
          authorization: this.authorization,
        },
        body: JSON.stringify({ query, variables }),
      });
    } catch {
      throw new ApiError("Podflow could not be reached. Check your connection and try again.");
    }
    let answer: GraphQLAnswer<T>;
    try {
      answer = (await response.json()) as GraphQLAnswer<T>;
    } catch {
      throw new ApiError(`Podflow answered ${response.status} without a GraphQL result.`);
    }
    const error = answer.errors?.[0];
    if (error) throw new ApiError(error.message, error.extensions?.code);
    if (!answer.data) throw new ApiError("Podflow answered without data.");
    return answer.data;
  }

  /** A graphql-ws client that retries for ever, except when the token is refused (4401). */
  live(handlers: {
    connected: (reconnected: boolean) => void;
    disconnected: () => void;
    refused: () => void;
  }): Client {
    const url = new URL(GRAPHQL_PATH, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let connectedBefore = false;
    const isRefusal = (event: unknown) => (event as CloseEvent | undefined)?.code === 4401;
    return createClient({
      url: url.href,
      connectionParams: { authorization: this.authorization },
      lazy: false,
      keepAlive: 10_000,
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: (event) => !isRefusal(event),
      // Capped exponential back-off with jitter: a restarted Podflow is not stampeded.
      retryWait: (retries) =>
        new Promise((resolve) =>
          setTimeout(resolve, Math.min(10_000, 500 * 2 ** retries) * (0.5 + Math.random() / 2)),
        ),
      on: {
        connected: () => {
          handlers.connected(connectedBefore);
          connectedBefore = true;
        },
        closed: (event) => {
          if (isRefusal(event)) handlers.refused();
          else handlers.disconnected();
        },
      },
    });
  }
}
