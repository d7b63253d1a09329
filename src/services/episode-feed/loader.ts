/**
 * What a burst reads from the database: the episodes it concerns, each with the latest attempt
 * of each of its tasks (one statement, read-only rows: nobody changes what a subscriber is
 * shown, and building entities through the ORM was most of a burst's latency), and which of its
 * recipients' tokens are still unrevoked. These are two statements run together, however many
 * episodes and subscribers the burst serves, so a burst costs the same whether one dashboard or
 * thirty follow an episode. After the listener reconnected, a
 * resync first asks which of the followed users' episodes changed while it was away (two
 * indexed lookups), since no notification of those will ever come.
 */
import type { EntityManager, PostgreSqlConnection } from "@mikro-orm/postgresql";
import type { Orm } from "../../database/orm.ts";
import { Episode } from "../../entities/episode.entity.ts";
import { ProcessingTask } from "../../entities/processing-task.entity.ts";
import { episodeIdsParam, episodeViewSelect } from "../episodes.ts";
import { ACTIVE_TOKEN_HASHES_SQL, tokenHashesParam } from "../subscriber-tokens.ts";
import { parseSnapshot, type Snapshot } from "./known-states.ts";
import type { EpisodeUpdate } from "./types.ts";

export interface BurstLoadRequest {
  /** The episodes to load, in the order they are to be delivered. */
  episodeIds: Iterable<string>;
  /** After a reconnect: also the episodes of these users changed from `since` on. */
  resync: { userIds: string[]; since: Date } | null;
  /** The tokens to check. */
  tokenHashes: Set<string>;
}

export interface BurstLoad {
  /** Every episode looked for, in delivery order: those asked for, then those a resync found. */
  episodeIds: string[];
  /** Each episode found, with its tasks; one looked for but missing is gone. */
  updates: Map<string, EpisodeUpdate>;
  /** The episodes the resync found changed (empty without a resync). */
  recentlyChanged: Set<string>;
  /** The token hashes asked about that still belong to unrevoked tokens. */
  activeTokens: Set<string>;
  /** Which transactions the episodes' states hold; null when no episode was read. */
  snapshot: Snapshot | null;
}

export async function loadBurst(orm: Orm, request: BurstLoadRequest): Promise<BurstLoad> {
  const episodeIds = new Set(request.episodeIds);
  let recentlyChanged = new Set<string>();
  if (request.resync) {
    const { userIds, since } = request.resync;
    recentlyChanged = await changedSince(orm.em.fork(), userIds, since);
    for (const id of recentlyChanged) episodeIds.add(id);
  }

  const ids = [...episodeIds];
  const { updates, activeTokens, snapshot } = await loadEpisodesAndTokens(
    orm.em.fork(),
    ids,
    request.tokenHashes,
  );
  return { episodeIds: ids, updates, recentlyChanged, activeTokens, snapshot };
}

/**
 * The episodes (with their latest tasks) and which of the token hashes are unrevoked, in one
 * statement: one row per episode found, or one row with no episode, each saying the tokens and
 * the statement's snapshot (which transactions the states hold: see known-states.ts).
 * Every burst of every instance runs this same statement, so it is a named prepared statement
 * on the ORM's pool (pg prepares it once per connection): PostgreSQL neither parses nor plans
 * it again, and the ORM's query formatting (the values spliced into the text) is skipped. The
 * rows come through the pool's type parsers, as the ORM's own queries' do.
 */
async function loadEpisodesAndTokens(
  em: EntityManager,
  episodeIds: readonly string[],
  tokenHashes: Iterable<string>,
): Promise<Pick<BurstLoad, "updates" | "activeTokens" | "snapshot">> {
  const ids = episodeIdsParam(episodeIds);
  const hashes = tokenHashesParam(tokenHashes);
  // Nobody here follows what changed: nothing to read.
  if (ids === null && hashes === "{}") {
    return { updates: new Map(), activeTokens: new Set(), snapshot: null };
  }
  const select = episodeViewSelect(em);
  const pool = await (em.getConnection() as PostgreSqlConnection).getNativeClient();
  const text = `with active as (${ACTIVE_TOKEN_HASHES_SQL})
     select active.hashes as active_tokens, pg_current_snapshot()::text as snapshot,
       ${select.columns}
     from active left join episodes e on e.id = any(cast($2 as uuid[]))`;
  // Past the ORM, but still in its query log (LOG_LEVEL=trace, and onSqlQuery in tests).
  em.config.getLogger().logQuery({ query: text, level: "info" });
  const { rows } = await pool.query<
    Record<string, unknown> & { active_tokens: string[]; snapshot: string }
  >({
    name: LOAD_STATEMENT,
    text,
    values: [hashes, ids ?? "{}"],
  });
  const updates = new Map<string, EpisodeUpdate>();
  for (const { active_tokens: _, snapshot: __, ...row } of rows) {
    if (row.id == null) continue;
    const update = select.view(row);
    updates.set(update.episode.id, update);
  }
  return {
    updates,
    activeTokens: new Set(rows[0]?.active_tokens ?? []),
    snapshot: parseSnapshot(rows[0]?.snapshot),
  };
}

/** The burst load's prepared statement (one text per process: the columns are the ORM's). */
const LOAD_STATEMENT = "podflow_feed_burst_load";

/**
 * The users' episodes that changed (or whose tasks did) since `since`, for a resync of their
 * dashboard feeds: two indexed lookups, however many users.
 */
async function changedSince(
  em: EntityManager,
  userIds: string[],
  since: Date,
): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const [episodes, tasks] = await Promise.all([
    em.find(Episode, { user: { $in: userIds }, updatedAt: { $gte: since } }, { fields: ["id"] }),
    em
      .fork()
      .find(
        ProcessingTask,
        { episode: { user: { $in: userIds } }, updatedAt: { $gte: since } },
        { fields: ["episode"] },
      ),
  ]);
  return new Set([
    ...episodes.map((episode) => episode.id),
    ...tasks.map((task) => task.episode.id),
  ]);
}
