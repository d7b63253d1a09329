/**
 * One PostgreSQL for the whole run — the embedded one, or the server DATABASE_URL points at —
 * and one migrated template database (Podflow's tables and pg-boss's schema) that each test
 * file copies into a fresh database of its own (see database.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import pino from "pino";
import type { TestProject } from "vitest/node";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../../src/database/embedded.ts";
import { migrate, openOrm } from "../../src/database/orm.ts";
import { startBoss } from "../../src/jobs/boss.ts";

export const TEMPLATE_DATABASE = "podflow_test_template";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the test server's `postgres` database, for creating and dropping databases. */
    adminDatabaseUrl: string;
    templateDatabase: string;
  }
}

let embedded: EmbeddedDatabase | null = null;
let dataDir: string | null = null;

export async function setup(project: TestProject): Promise<void> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "warn" });
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    dataDir = await mkdtemp(path.join(tmpdir(), "podflow-test-"));
    embedded = await startEmbeddedDatabase({ dataDir, logger, database: "postgres" });
    serverUrl = embedded.url;
  }
  const adminUrl = withDatabase(serverUrl, "postgres");
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${TEMPLATE_DATABASE} with (force)`);
    await admin.query(`create database ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }

  const templateUrl = withDatabase(serverUrl, TEMPLATE_DATABASE);
  const orm = await openOrm(templateUrl, logger);
  try {
    await migrate(orm, templateUrl, logger);
  } finally {
    await orm.close();
  }
  const boss = await startBoss({ databaseUrl: templateUrl, logger, schedule: false });
  await boss.stop({ graceful: false, close: true });

  project.provide("adminDatabaseUrl", adminUrl);
  project.provide("templateDatabase", TEMPLATE_DATABASE);
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
