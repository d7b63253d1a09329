/**
 * Instances starting together on a fresh database make each installation secret once, and all
 * of them read the same value.
 */
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Orm, openOrm } from "../../src/database/orm.ts";
import { installationSecret } from "../../src/services/installation-secrets.ts";
import { createTestDatabase } from "../support/database.ts";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let orms: Orm[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  // Four "instances", each with its own pool, as four processes would have.
  orms = await Promise.all(
    [0, 1, 2, 3].map(() => openOrm(database.url, pino({ level: "silent" }), { poolMax: 4 })),
  );
});
afterAll(async () => {
  await Promise.all(orms.map((orm) => orm.close()));
  await database?.drop();
});

it("gives every racing instance the one secret that was made", async () => {
  for (let round = 0; round < 10; round++) {
    const name = `race-${round}`;
    const values = await Promise.all(
      orms.flatMap((orm) => [0, 1, 2].map(() => installationSecret(orm.em.fork(), name))),
    );
    const distinct = new Set(values.map((value) => value.toString("hex")));
    expect(distinct.size).toBe(1);
    expect(values[0]).toHaveLength(32);
  }
  const rows = await orms[0]?.em
    .fork()
    .execute("select count(*)::int as n from installation_secrets where name like 'race-%'");
  expect(rows?.[0]?.n).toBe(10);
});
