/**
 * Where an episode is published, and the states a publication moves through. A publication is
 * one episode at one destination; its job moves it forward and records a reason when it fails.
 *
 * QUEUED → UPLOADING → PROCESSING → PUBLISHED | SCHEDULED, or FAILED from any of them;
 * retryPublication starts a FAILED one over (QUEUED), keeping what the destination already has.
 */
export const DESTINATIONS = ["FEED", "TRANSISTOR", "YOUTUBE"] as const;
export type Destination = (typeof DESTINATIONS)[number];

export const PUBLICATION_STATUSES = [
  "QUEUED",
  "UPLOADING",
  "PROCESSING",
  "PUBLISHED",
  "SCHEDULED",
  "FAILED",
] as const;
export type PublicationStatus = (typeof PUBLICATION_STATUSES)[number];

/** Statuses a publication's job no longer changes (until a retry or a new publishEpisode). */
export const SETTLED_PUBLICATION_STATUSES: ReadonlySet<PublicationStatus> = new Set([
  "PUBLISHED",
  "SCHEDULED",
  "FAILED",
]);

export const CONNECTION_SERVICES = ["transistor", "youtube"] as const;
export type ConnectionService = (typeof CONNECTION_SERVICES)[number];

/**
 * PENDING: YouTube's consent screen is open; CONNECTED: usable; BROKEN: the service refused the
 * stored credential (a revoked grant, a deleted API key), so the producer must connect again.
 */
export const CONNECTION_STATUSES = ["PENDING", "CONNECTED", "BROKEN"] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

/** The service whose connection publishes to an outside destination. */
export function serviceOf(destination: Exclude<Destination, "FEED">): ConnectionService {
  return destination === "TRANSISTOR" ? "transistor" : "youtube";
}

export const SERVICE_NAMES: Record<ConnectionService, string> = {
  transistor: "Transistor",
  youtube: "YouTube",
};
