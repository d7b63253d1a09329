import { request } from "node:http";
import fc from "fast-check";
import {
  buildClientSchema,
  type GraphQLField,
  type GraphQLInputType,
  getIntrospectionQuery,
  getNamedType,
  type IntrospectionQuery,
  isEnumType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  isScalarType,
} from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { createUser, issueToken } from "../../src/services/accounts.ts";
import { ITTYBIT_WEBHOOK_PATH } from "../../src/webhooks.ts";
import { createTestDatabase } from "../support/database.ts";
import { insertProcessingEpisode } from "../support/episode-changes.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { WEBHOOK_TEST_SECRET } from "../support/scenario.ts";
import { webhookHeaders } from "../support/webhook-signing.ts";

// Arbitrary input thrown at a running Podflow: bodies, headers and paths at the webhook
// receiver, and variables of every shape at every mutation (enumerated by introspection).
// Whatever arrives, the answer is never a 500 nor an internal error ("Unexpected error."), and an
// input that is refused changes nothing in the tables it could have changed.
// The runs are bounded (and seeded by fast-check, which prints the seed of a failure).

// FUZZ_SCALE=10 runs ten times as many, for a deeper look by hand.
const scale = Number(process.env.FUZZ_SCALE ?? 1);
const WEBHOOK_RUNS = 200 * scale;
const MUTATION_RUNS = 300 * scale;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let podflow: RunningPodflow;
let url: string;
let authorization: string;
/** Real ids of the producer's objects, so that some generated ids hit something. */
const realIds: string[] = [];
const realTaskIds: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  podflow = await startTestPodflow({
    databaseUrl: database.url,
    env: {
      // No workers: a change is the request's own, not a job's later on.
      PODFLOW_ROLES: "api",
      PODFLOW_MEDIA_ENGINE: "local",
      ITTYBIT_WEBHOOK_SECRET: WEBHOOK_TEST_SECRET,
    },
  });
  url = podflow.url ?? "";
  const em = podflow.deps.orm.em.fork();
  const user = await createUser(em, "fuzz@example.com");
  authorization = `Bearer ${(await issueToken(em, user)).secret}`;
  const episode = await insertProcessingEpisode(podflow.deps, user.id);
  realIds.push(episode.globalId);
  realTaskIds.push(...Object.values(episode.tasks).map((task) => task.engineTaskId));
  const show = await gql<{ createShow: { show?: { id: string } } }>(
    'mutation { createShow(input: { title: "Fuzzed" }) { ... on CreateShowPayload { show { id } } } }',
  );
  const showId = show.body.data?.createShow.show?.id;
  if (showId) realIds.push(showId);
});
afterAll(async () => {
  await podflow?.stop();
  await database?.drop();
});

/** Every row of the tables a webhook or a mutation could change, as JSON. */
async function snapshot(): Promise<string> {
  const em = podflow.deps.orm.em.fork();
  const tables = [
    "episodes",
    "processing_tasks",
    "webhook_deliveries",
    "shows",
    "episode_retries",
    "publishing_connections",
    "publications",
  ];
  const rows = await Promise.all(
    tables.map((table) => em.execute(`select * from ${table} order by 1`)),
  );
  return JSON.stringify(rows);
}

interface Answer {
  status: number;
  text: string;
}

/** A raw HTTP request (node:http, so that any header and body can be sent as it is). */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function gql<T>(query: string, variables?: unknown, withToken = true) {
  const answer = await send(
    "POST",
    "/graphql",
    {
      "content-type": "application/json",
      accept: "application/json",
      ...(withToken ? { authorization } : {}),
    },
    Buffer.from(JSON.stringify({ query, variables })),
  );
  return {
    status: answer.status,
    body: JSON.parse(answer.text) as {
      data?: T | null;
      errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
    },
  };
}

// Printable ASCII: what an HTTP header can carry (node:http refuses control characters).
const printable = fc.string({ unit: "grapheme-ascii", maxLength: 80 });
const headerName = fc.oneof(
  fc.constantFrom(
    "content-type",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-encoding",
    "accept",
    "x-forwarded-for",
    "authorization",
    "user-agent",
  ),
  fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
);

/** Bodies: bytes, JSON of any shape, and task-like objects with wrong or odd fields. */
const oddValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    "",
    "..",
    "../../etc/passwd",
    "file:///etc/passwd",
    "\u0000",
    "http://127.0.0.1:1/",
  ),
  fc.double(),
);
/** Mostly a plausible value, sometimes an odd one. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: oddValue, weight: 1 });
const taskLike = fc.record(
  {
    id: mostly(fc.oneof(fc.stringMatching(/^task_[a-z0-9]{8,32}$/), printable)),
    object: mostly(fc.constant("task")),
    kind: mostly(fc.constantFrom("speech", "video", "chapters", "nle")),
    status: mostly(
      fc.constantFrom("completed", "failed", "processing", "pending", "ready", "error"),
    ),
    progress: mostly(fc.integer({ min: -10, max: 110 })),
    error: oddValue,
    output: mostly(fc.record({ url: mostly(fc.webUrl()) }, { requiredKeys: [] })),
    type: mostly(fc.constantFrom("task.completed", "task.failed", "task.updated")),
    data: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: ["id"] },
);
const webhookBody = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
  fc.json({ maxDepth: 3 }).map((text) => Buffer.from(text)),
  taskLike.map((task) => Buffer.from(JSON.stringify(task))),
  fc
    .record({ type: fc.constantFrom("task.completed", "task.failed"), data: taskLike })
    .map((event) => Buffer.from(JSON.stringify(event))),
);

describe("webhooks under arbitrary input", () => {
  it("never answers 500 and changes nothing when it refuses", { timeout: 120_000 }, async () => {
    const token = podflow.deps.webhook.token;
    const path = fc.oneof(
      fc.constant(`${ITTYBIT_WEBHOOK_PATH}/${token}`),
      fc.constant(ITTYBIT_WEBHOOK_PATH),
      fc.stringMatching(/^[A-Za-z0-9_-]{0,64}$/).map((made) => `${ITTYBIT_WEBHOOK_PATH}/${made}`),
      fc.constant(`${ITTYBIT_WEBHOOK_PATH}/${token}/extra`),
      fc.constant(`${ITTYBIT_WEBHOOK_PATH}/${token}?x=%00`),
    );
    const statuses = new Map<number, number>();
    let deliveries = 0;
    await fc.assert(
      fc.asyncProperty(
        path,
        fc.constantFrom("POST", "POST", "POST", "POST", "POST", "POST", "GET", "PUT"),
        fc.dictionary(headerName, printable, { maxKeys: 6 }),
        webhookBody,
        fc.boolean(),
        async (where, method, headers, generated, signed) => {
          const sent = { ...headers };
          let body = generated;
          if (signed) {
            // Correctly signed: the body itself is what gets judged.
            deliveries += 1;
            const text = body.toString("utf8");
            Object.assign(
              sent,
              webhookHeaders(
                WEBHOOK_TEST_SECRET,
                `msg_fuzz_${deliveries}`,
                Math.floor(Date.now() / 1000),
                text,
              ),
            );
            body = Buffer.from(text);
          }
          const before = await snapshot();
          const answer = await send(method, where, sent, body);
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          expect(answer.status, answer.text).toBeLessThan(500);
          if (answer.status >= 400) expect(await snapshot()).toBe(before);
          // No generated task id is a real one: even an accepted delivery moves nothing.
          else expect(await tasks()).toBe(taskRows);
        },
      ),
      { numRuns: WEBHOOK_RUNS },
    );
    if (process.env.FUZZ_SCALE) console.log(Object.fromEntries(statuses));
    // The runs reached past the URL and the signature, into the body's parsing.
    expect(statuses.get(400)).toBeGreaterThan(0);
    expect(statuses.get(401)).toBeGreaterThan(0);
    expect(statuses.get(404)).toBeGreaterThan(0);
  });

  it("answers a body past 1 MiB with 413, and changes nothing", async () => {
    const before = await snapshot();
    const answer = await send(
      "POST",
      `${ITTYBIT_WEBHOOK_PATH}/${podflow.deps.webhook.token}`,
      { "content-type": "application/json" },
      Buffer.alloc(1024 * 1024 + 10, "x"),
    );
    expect(answer.status).toBe(413);
    expect(await snapshot()).toBe(before);
  });
});

let taskRows = "";
async function tasks(): Promise<string> {
  const em = podflow.deps.orm.em.fork();
  return JSON.stringify([
    await em.execute("select * from episodes order by 1"),
    await em.execute("select * from processing_tasks order by 1"),
  ]);
}
beforeAll(async () => {
  taskRows = await tasks();
});

/** Values a client could send for an argument of `type`: right, wrong and edge shapes. */
/** Plausible values for fields by name, so that whole inputs are sometimes valid. */
const PLAUSIBLE: Record<string, unknown[]> = {
  title: ["A title", "nul\u0000inside"],
  author: ["A. Author"],
  category: ["Technology", "News", "Kids & Family"],
  subcategory: ["Tech News", null],
  language: ["en", "de", "en-us"],
  ownerEmail: ["owner@example.com"],
  ownerName: ["Owner"],
  filename: ["take.mp3", "episode.mp4", "cover.png"],
  filesize: [1_000, 5_000_000],
  contentType: ["image/png", "image/jpeg"],
  fileId: ["file_abc123", "abc", "../x"],
  explicit: [false],
  description: ["Show notes", ""],
};

function variableFor(type: GraphQLInputType, depth = 0, name = ""): fc.Arbitrary<unknown> {
  // Wrong shapes at the top are common; deeper down rarer, so that some inputs get through
  // the variables' types into the resolvers' own checks.
  const wrongWeight = depth === 0 ? 1 : 0;
  const anything = fc.oneof(
    fc.constant(null),
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(
      "",
      " ",
      "x".repeat(10_000),
      "..",
      "../../etc/passwd",
      "\u0000",
      "😀".repeat(300),
      -1,
      0,
      2 ** 53,
      -(2 ** 31) - 1,
      1e308,
      true,
      [],
      {},
    ),
  );
  const inner = isNonNullType(type) ? type.ofType : type;
  let right: fc.Arbitrary<unknown>;
  if (isListType(inner)) {
    right = fc.array(variableFor(inner.ofType, depth + 1), { maxLength: depth > 1 ? 2 : 200 });
  } else if (isInputObjectType(inner)) {
    const fields = Object.values(inner.getFields());
    right =
      depth > 2
        ? fc.constant({})
        : fc.record(
            Object.fromEntries(
              fields.map((field) => [field.name, variableFor(field.type, depth + 1, field.name)]),
            ),
            { requiredKeys: [] },
          );
  } else if (isEnumType(inner)) {
    right = fc.constantFrom(...inner.getValues().map((value) => value.name));
  } else if (isScalarType(inner) && inner.name === "ID") {
    right = fc.oneof(
      fc.constantFrom(...realIds),
      fc.base64String({ maxLength: 60 }),
      fc.constantFrom("RXBpc29kZTo=", "RXBpc29kZTouLg==", "U2hvdzox"),
    );
  } else if (isScalarType(inner) && ["Int", "SafeInt", "Float"].includes(inner.name)) {
    right = fc.oneof(
      fc.integer({ min: -5, max: 10_000 }),
      fc.integer(),
      fc.double(),
      fc.maxSafeInteger(),
    );
  } else if (isScalarType(inner) && inner.name === "Boolean") {
    right = fc.boolean();
  } else if (isScalarType(inner) && inner.name === "DateTime") {
    right = fc.oneof(
      fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
      printable,
    );
  } else {
    right = fc.oneof(
      fc.string({ maxLength: 300 }),
      printable,
      fc.webUrl(),
      fc.constantFrom("take.mp3", "Episode 1.mp4", "file_abc123", "A title", "nul\u0000inside"),
      fc.string({ unit: "binary", maxLength: 40 }),
    );
  }
  const plausible = PLAUSIBLE[name];
  if (plausible) right = fc.oneof({ arbitrary: fc.constantFrom(...plausible), weight: 3 }, right);
  return wrongWeight
    ? fc.oneof({ arbitrary: right, weight: 3 }, { arbitrary: anything, weight: wrongWeight })
    : fc.oneof({ arbitrary: right, weight: 12 }, { arbitrary: anything, weight: 1 });
}

describe("mutations under arbitrary variables", () => {
  it("never answer 500 nor an internal error, and a refusal changes nothing", {
    timeout: 120_000,
  }, async () => {
    const introspection = await gql<IntrospectionQuery>(getIntrospectionQuery());
    const schema = buildClientSchema(introspection.body.data as IntrospectionQuery);
    const mutations = Object.values(schema.getMutationType()?.getFields() ?? {});
    expect(mutations.length).toBeGreaterThanOrEqual(9);

    const call = (field: GraphQLField<unknown, unknown>) => {
      const declared = field.args.map((arg) => `$${arg.name}: ${arg.type}`).join(", ");
      const passed = field.args.map((arg) => `${arg.name}: $${arg.name}`).join(", ");
      const selection = isLeafType(getNamedType(field.type)) ? "" : " { __typename }";
      const document = `mutation${declared ? `(${declared})` : ""} { result: ${field.name}${passed ? `(${passed})` : ""}${selection} }`;
      return fc.record({
        field: fc.constant(field.name),
        document: fc.constant(document),
        variables: fc.record(
          Object.fromEntries(field.args.map((arg) => [arg.name, variableFor(arg.type)])),
          { requiredKeys: [] },
        ),
        withToken: fc.oneof(
          { arbitrary: fc.constant(true), weight: 4 },
          { arbitrary: fc.constant(false), weight: 1 },
        ),
      });
    };
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(...mutations.map(call)), async (attempt) => {
        const before = await snapshot();
        const { status, body } = await gql<{ result?: { __typename: string } }>(
          attempt.document,
          attempt.variables,
          attempt.withToken,
        );
        expect(status, JSON.stringify(body)).toBeLessThan(500);
        const messages = (body.errors ?? []).map((error) => error.message);
        expect(messages, attempt.document).not.toContain("Unexpected error.");
        const typename = body.data?.result?.__typename ?? "none";
        const refused = Boolean(body.errors?.length) || /Error$/.test(typename);
        const outcome = `${attempt.field}:${refused ? typename : "ok"}`;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (refused) expect(await snapshot(), outcome).toBe(before);
      }),
      { numRuns: MUTATION_RUNS },
    );
    if (process.env.FUZZ_SCALE) console.log(Object.fromEntries(outcomes));
    // Every mutation was reached, and some inputs got past the variables' types into the
    // resolvers' own checks.
    for (const mutation of mutations) {
      expect([...outcomes.keys()].some((key) => key.startsWith(`${mutation.name}:`))).toBe(true);
    }
    expect([...outcomes.keys()].some((key) => /:(ValidationError|NotFoundError)$/.test(key))).toBe(
      true,
    );
  });
});
