/**
 * OpenTelemetry traces, opt-in: on when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, exported over OTLP/HTTP. Temporal's OpenTelemetry
 * interceptors make a span for each workflow, activity, child, signal and update, and carry the trace
 * through Temporal's headers, so a job started from the CLI is one trace across every worker.
 *
 * The interceptors put an error's message and stack trace on the span that failed, and ours name the
 * user (`user alice@contoso.com: Graph answered 403 …`). Every span is therefore redacted before export:
 * the status message and the exception's message and stack trace are dropped, its type kept. Span names
 * and attributes carry only workflow types, ids (the job id and an opaque hash per user) and activity
 * names.
 */
import type { Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
  type TimedEvent,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';

/** What an exception event may keep: its class, never its message or stack (they can name a user). */
const KEPT_EXCEPTION_ATTRIBUTES = new Set(['exception.type']);

/** The span without anything an error message could have put into it. */
export function redactSpan(span: ReadableSpan): ReadableSpan {
  const events: TimedEvent[] = span.events.map((event) =>
    event.name === 'exception'
      ? {
          ...event,
          attributes: Object.fromEntries(
            Object.entries(event.attributes ?? {}).filter(([key]) => KEPT_EXCEPTION_ATTRIBUTES.has(key)),
          ),
        }
      : event,
  );
  // The SDK's spans keep state behind methods (spanContext()): inherit from the span, override the rest.
  return Object.create(span, {
    status: { value: { code: span.status.code }, enumerable: true },
    events: { value: events, enumerable: true },
  }) as ReadableSpan;
}

/** Hands every ended span, redacted, to the next processor. */
export class RedactingSpanProcessor implements SpanProcessor {
  constructor(private readonly next: SpanProcessor) {}

  onStart(span: Span, parentContext: Context): void {
    this.next.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.next.onEnd(redactSpan(span));
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.next.shutdown();
  }
}

export interface Tracing {
  /** For Worker.create and the Client: Temporal's interceptors, and the sink for workflow spans. */
  readonly plugin: OpenTelemetryPlugin;
  /** Where spans go, for the log. */
  readonly endpoint: string;
  /** Sends the spans still buffered; call before the process exits. */
  shutdown(): Promise<void>;
}

let current: Tracing | undefined;

/** Whether the environment asks for traces. */
export function tracingEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
}

/**
 * Starts exporting traces if the environment asks for them, once per process; undefined when it does
 * not. The exporter reads the rest of the standard variables itself (`OTEL_EXPORTER_OTLP_HEADERS`, …).
 */
export function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (current) return current;
  const endpoint = tracingEndpoint(env);
  if (!endpoint) return undefined;
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME || serviceName });
  const processor = new RedactingSpanProcessor(new BatchSpanProcessor(new OTLPTraceExporter()));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // Global, because Temporal's client and activity interceptors take their tracer from the global API.
  provider.register();
  current = {
    plugin: new OpenTelemetryPlugin({ resource, spanProcessor: processor }),
    endpoint,
    async shutdown() {
      await provider.shutdown();
    },
  };
  return current;
}

/** Sends what is still buffered, if this process started tracing. */
export async function stopTracing(): Promise<void> {
  await current?.shutdown();
}

/** The tracing plugin if this process started tracing, for clients and workers to include. */
export function tracingPlugins(): OpenTelemetryPlugin[] {
  return current ? [current.plugin] : [];
}
