/**
 * OpenTelemetry tracing against a running Podflow and a stand-in OTLP/HTTP collector on
 * loopback: off without OTEL_EXPORTER_OTLP_ENDPOINT (the collector hears nothing); on with it,
 * a request continues its caller's trace, its GraphQL operation nests under it, and the job it
 * queues is processed in the same trace (pg-boss's spans).
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadEpisode, waitForStatus } from "../support/pipeline.ts";
import { startScenario } from "../support/scenario.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}
interface OtlpRequest {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: Record<string, unknown> }> };
    scopeSpans: Array<{ scope: { name: string }; spans: OtlpSpan[] }>;
  }>;
}

let collector: Server;
let collectorUrl: string;
const received: Array<{ path: string; contentType: string; body: OtlpRequest }> = [];

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({
        path: req.url ?? "",
        contentType: String(req.headers["content-type"]),
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpRequest,
      });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
  collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => collector.close(() => resolve()));
});

function spans(): Array<OtlpSpan & { scope: string; service: unknown }> {
  return received.flatMap(({ body }) =>
    body.resourceSpans.flatMap((resource) =>
      resource.scopeSpans.flatMap((scope) =>
        scope.spans.map((span) => ({
          ...span,
          scope: scope.scope.name,
          service: resource.resource.attributes.find((a) => a.key === "service.name")?.value
            .stringValue,
        })),
      ),
    ),
  );
}

const attribute = (span: OtlpSpan, key: string) =>
  span.attributes?.find((entry) => entry.key === key)?.value;

describe("OpenTelemetry tracing", () => {
  it("is off without OTEL_EXPORTER_OTLP_ENDPOINT: nothing reaches a collector", async () => {
    const scenario = await startScenario({ overrides: { reconcileCron: "0 0 1 1 *" } });
    try {
      const producer = await scenario.producer();
      const episode = await uploadEpisode(scenario, producer, "Untraced");
      await waitForStatus(scenario, episode.uuid, "PROCESSING");
    } finally {
      await scenario.stop();
    }
    expect(received).toEqual([]);
  });

  it("continues the caller's trace through the request, its GraphQL operation and the job it queued", {
    timeout: 60_000,
  }, async () => {
    const scenario = await startScenario({
      overrides: { reconcileCron: "0 0 1 1 *" },
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl, OTEL_SERVICE_NAME: "podflow-test" },
    });
    const traceId = randomBytes(16).toString("hex");
    const callerSpanId = randomBytes(8).toString("hex");
    let episodeUuid = "";
    try {
      const producer = await scenario.producer();
      const prepared = await fetch(`${scenario.url}/graphql`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${producer.token}`,
          traceparent: `00-${traceId}-${callerSpanId}-01`,
          "x-request-id": "traced-1",
        },
        body: JSON.stringify({
          query: `mutation Prepare($input: PrepareUploadInput!) { prepareUpload(input: $input) {
            ... on PrepareUploadPayload { episode { id } } } }`,
          variables: { input: { filename: "a.mp4", title: "Traced", filesize: 1000 } },
        }),
      });
      expect(prepared.status).toBe(200);
      const id = (
        (await prepared.json()) as { data: { prepareUpload: { episode: { id: string } } } }
      ).data.prepareUpload.episode.id;
      episodeUuid = Buffer.from(id, "base64").toString().split(":")[1] as string;
      const file = scenario.ittybit.addFile({
        filename: "a.mp4",
        folder: `episodes/${episodeUuid}`,
        filesize: 1000,
      });
      // Confirming queues process-episode inside the request's trace.
      const confirmed = await fetch(`${scenario.url}/graphql`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${producer.token}`,
          traceparent: `00-${traceId}-${callerSpanId}-01`,
        },
        body: JSON.stringify({
          query: `mutation Confirm($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
          variables: { input: { episodeId: id, fileId: file.id } },
        }),
      });
      expect(confirmed.status).toBe(200);
      await waitForStatus(scenario, episodeUuid, "PROCESSING");
    } finally {
      // Stopping sends what is left.
      await scenario.stop();
    }

    expect(received.length).toBeGreaterThan(0);
    expect(received.every((request) => request.path === "/v1/traces")).toBe(true);
    expect(received[0]?.contentType).toContain("application/json");
    const traced = spans().filter((span) => span.traceId === traceId);
    expect(traced.every((span) => span.service === "podflow-test")).toBe(true);

    const servers = traced.filter((span) => span.name === "POST graphql");
    expect(servers).toHaveLength(2);
    for (const server of servers) expect(server.parentSpanId).toBe(callerSpanId);
    const first = servers.find(
      (span) => attribute(span, "podflow.request_id")?.stringValue === "traced-1",
    );
    expect(first).toBeDefined();
    expect(attribute(first as OtlpSpan, "http.response.status_code")?.intValue).toBe(200);

    const prepare = traced.find((span) => span.name === "mutation Prepare");
    expect(prepare?.parentSpanId).toBe(first?.spanId);
    const confirm = traced.find((span) => span.name === "mutation Confirm");
    expect(servers.map((span) => span.spanId)).toContain(confirm?.parentSpanId);

    // pg-boss's own spans: the send under the mutation, and the job's processing in the same trace.
    const sent = traced.find(
      (span) =>
        span.scope === "pg-boss" &&
        /process-episode/.test(span.name) &&
        span.parentSpanId === confirm?.spanId,
    );
    expect(sent, JSON.stringify(traced.map((span) => span.name))).toBeDefined();
    const processed = traced.find((span) => span.name === "process process-episode");
    expect(processed?.scope).toBe("pg-boss");
    expect(processed?.parentSpanId).toBe(sent?.spanId);
  });
});
