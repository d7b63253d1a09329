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
    chapters: Chapter[] | null;
  };
}

/** An episode's transcript, loaded when its card opens it (lists never carry transcripts). */
export interface Transcript {
  transcript: string | null;
  transcriptSegments: Segment[] | null;
}

export const TRANSCRIPT_QUERY = `query DashboardTranscript($id: ID!) {
  episode(id: $id) { outputs { transcript transcriptSegments { start end text speaker } } }
}`;

export const EPISODE_FIELDS = `
  fragment DashboardEpisode on Episode {
    id title description status failureReason createdAt progress originalFilename fileSize
    tasks { id type status progress error attempt outputUrl }
    outputs { audioUrl videoUrl transcriptAvailable chapters { start end title } }
  }`;

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
