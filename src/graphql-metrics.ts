import { context, SpanStatusCode, trace } from "@opentelemetry/api";
import { getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Metrics } from "./metrics.ts";
import { TRACER_NAME } from "./tracing.ts";

type OperationMetrics = Pick<Metrics, "graphqlOperationDuration" | "subscriptionsOpen">;

const OPERATION_TYPES = new Set(["query", "mutation", "subscription"]);

/**
 * Times every GraphQL operation yoga executes (HTTP, SSE and graphql-ws alike, since the socket
 * server runs yoga's envelop too) by type and result, and counts the subscriptions running: one
 * more when a subscription's stream starts, one less when it ends, however it ends (completed,
 * cancelled by the client, socket closed). With tracing on (src/tracing.ts), each execution is a
 * span, `{type} {name}`, active while its resolvers run (their SQL and jobs nest under it).
 */
export function useOperationMetrics(metrics: OperationMetrics): Plugin {
  const since = (started: number) => (performance.now() - started) / 1_000;
  /** The operation's type (for the metric's label) and name, from one look at the document. */
  const describe = (args: {
    document: Parameters<typeof getOperationAST>[0];
    operationName?: string | null;
  }) => {
    const ast = getOperationAST(args.document, args.operationName);
    const operation = ast?.operation;
    return {
      operation: operation && OPERATION_TYPES.has(operation) ? operation : "unknown",
      name: ast?.name?.value,
    };
  };
  const tracer = trace.getTracer(TRACER_NAME);
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const started = performance.now();
      const { operation, name } = describe(args);
      const span = tracer.startSpan(name ? `${operation} ${name}` : operation, {
        attributes: {
          "graphql.operation.type": operation,
          ...(name ? { "graphql.operation.name": name } : {}),
        },
      });
      const active = trace.setSpan(context.active(), span);
      setExecuteFn((executeArgs) => context.with(active, () => executeFn(executeArgs)));
      return {
        onExecuteDone({ result }) {
          const failed =
            !(Symbol.asyncIterator in result) &&
            Boolean((result as { errors?: unknown[] }).errors?.length);
          metrics.graphqlOperationDuration.observe(
            { operation, result: failed ? "error" : "ok" },
            since(started),
          );
          if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        },
      };
    },
    onSubscribe({ args }) {
      const started = performance.now();
      const { operation } = describe(args);
      return {
        onSubscribeError() {
          metrics.graphqlOperationDuration.observe({ operation, result: "error" }, since(started));
        },
        onSubscribeResult({ result }) {
          const streaming = Symbol.asyncIterator in result;
          metrics.graphqlOperationDuration.observe(
            { operation, result: streaming ? "ok" : "error" },
            since(started),
          );
          if (!streaming) return;
          metrics.subscriptionsOpen.inc();
          let ended = false;
          return {
            onEnd() {
              if (ended) return;
              ended = true;
              metrics.subscriptionsOpen.dec();
            },
          };
        },
      };
    },
  };
}
