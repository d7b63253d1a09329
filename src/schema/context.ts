import type { EntityManager } from "@mikro-orm/postgresql";
import type { AppDeps } from "../deps.ts";

/** Built per GraphQL operation, HTTP and WebSocket alike. */
export interface GraphQLContext {
  deps: AppDeps;
  /** A fork of the ORM's EntityManager for this operation alone (DESIGN §4). */
  em: EntityManager;
}
