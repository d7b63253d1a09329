import { defineEntity, p } from "@mikro-orm/core";
import { DESTINATIONS, PUBLICATION_STATUSES } from "../domain/publications.ts";
import { Episode } from "./episode.entity.ts";
import { User } from "./user.entity.ts";

/** What a destination's job keeps between steps, so a rerun continues instead of repeating. */
export interface PublicationProgress {
  /** Transistor: the uploaded MP3's `audio_url` (from authorize_upload). */
  audioUrl?: string;
  /** Transistor: set just before creating the remote episode, to adopt it if the run dies. */
  creatingSince?: string;
  /** YouTube: the resumable upload's session URI and the file's size. */
  sessionUri?: string;
  /** YouTube: the video's privacy once it is public (scheduled videos are private until then). */
  privacy?: "public" | "unlisted" | "private";
  /** YouTube: the caption track made from the transcript. */
  captionId?: string;
  /** YouTube: captions were not added, and why (the video is published without them). */
  captionsSkipped?: string;
}

/**
 * One episode at one destination (its show's feed, Transistor, YouTube), moved forward by the
 * destination's job (src/services/distribution/). The database announces every change to the
 * episode's subscribers (trigger in the publishing migration).
 */
export const PublicationSchema = defineEntity({
  name: "Publication",
  tableName: "publications",
  properties: {
    id: p.uuid().primary(),
    episode: () => p.manyToOne(Episode).deleteRule("cascade"),
    user: () => p.manyToOne(User).deleteRule("cascade"),
    destination: p.enum(DESTINATIONS),
    status: p.enum(PUBLICATION_STATUSES).default("QUEUED"),
    /** Each publishEpisode or retryPublication starts a new run; older jobs find nothing to do. */
    run: p.integer().default(1),
    bytesSent: p.bigint("number").default(0),
    bytesTotal: p.bigint("number").nullable(),
    /** When it goes public: null for now. */
    publishAt: p.datetime().nullable(),
    remoteId: p.string().length(128).nullable(),
    remoteUrl: p.text().nullable(),
    failureReason: p.text().nullable(),
    /** Why it is waiting and until when (YouTube's daily quota), while not FAILED. */
    waitingReason: p.text().nullable(),
    waitingUntil: p.datetime().nullable(),
    progress: p.json<PublicationProgress>().default("{}"),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [{ properties: ["episode", "destination"] }],
});

export class Publication extends PublicationSchema.class {}
PublicationSchema.setClass(Publication);
