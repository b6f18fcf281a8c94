// OpenTelemetry tracing: a server span per request and a client span per
// upstream attempt (retries are separate spans), W3C trace context read from
// the client and written to the upstream, spans exported over OTLP/HTTP
// (JSON) in batches. Off unless `tracing:` is configured; then the request
// path pays one null check per request and per attempt.
//
// The OpenTelemetry SDK is used without its context manager (no
// AsyncLocalStorage): the gateway knows each span's parent explicitly (the
// incoming traceparent, then the request's server span), so parents are
// passed by hand and nothing else in the process is instrumented.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import type { IncomingHttpHeaders } from 'node:http';
import type { AttemptTrace, Exchange, ExchangeTrace } from '../exchange/exchange.js';

export interface TracingConfig {
  /** OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces */
  endpoint: string;
  headers: Record<string, string>;
  serviceName: string;
  /** Share of new traces sampled (a sampled or unsampled parent decides for its children). */
  sampleRatio: number;
  /** How long spans wait to be sent in a batch. */
  exportDelayMs: number;
  timeoutMs: number;
}

const propagator = new W3CTraceContextPropagator();
const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (h) => Object.keys(h),
  get: (h, k) => h[k],
};

function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags & 1}`;
}

class Attempt implements AttemptTrace {
  readonly traceparent: string;
  constructor(private readonly span: Span) {
    this.traceparent = traceparentOf(span);
  }

  end(outcome: { status?: number; failure?: string }): void {
    const s = this.span;
    if (outcome.status !== undefined && outcome.status > 0) s.setAttribute('http.response.status_code', outcome.status);
    if (outcome.failure !== undefined) {
      s.setAttribute('error.type', outcome.failure);
      s.setStatus({ code: SpanStatusCode.ERROR, message: outcome.failure });
    } else if (outcome.status !== undefined && outcome.status >= 500) {
      s.setStatus({ code: SpanStatusCode.ERROR });
    }
    s.end();
  }
}

class RequestTrace implements ExchangeTrace {
  readonly traceId: string;
  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
  ) {
    this.traceId = span.spanContext().traceId;
  }

  startAttempt(ex: Exchange, instance: string, attempt: number): AttemptTrace {
    const colon = instance.lastIndexOf(':');
    const span = this.tracer.startSpan(
      `${ex.method} ${ex.service || ex.routeName}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': ex.method,
          'server.address': colon > 0 ? instance.slice(0, colon).replace(/^\[|\]$/g, '') : instance,
          'server.port': colon > 0 ? Number(instance.slice(colon + 1)) : 0,
          'meshgate.service': ex.service,
          'http.request.resend_count': attempt - 1,
        },
      },
      trace.setSpan(ROOT_CONTEXT, this.span),
    );
    return new Attempt(span);
  }

  end(ex: Exchange, status: number): void {
    const s = this.span;
    s.updateName(`${ex.method} ${ex.routeName || '(no route)'}`);
    s.setAttribute('http.route', ex.routeName);
    s.setAttribute('http.response.status_code', status);
    if (ex.flag) s.setAttribute('meshgate.flag', ex.flag);
    if (ex.consumer !== undefined) s.setAttribute('meshgate.consumer', ex.consumer);
    if (status >= 500 || status === 0) s.setStatus({ code: SpanStatusCode.ERROR, message: ex.flag || undefined });
    s.end();
  }
}

export class Tracing {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;

  constructor(readonly config: TracingConfig) {
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [
        // Bounded: when the collector is slow or away, spans over the queue are dropped, never buffered without end.
        new BatchSpanProcessor({
          exporter: new OTLPTraceExporter({ url: config.endpoint, headers: config.headers, timeoutMillis: config.timeoutMs }),
          scheduledDelayMillis: config.exportDelayMs,
          exportTimeoutMillis: config.timeoutMs,
          maxQueueSize: 4096,
          maxExportBatchSize: 512,
        }),
      ],
    });
    this.tracer = this.provider.getTracer('meshgate');
  }

  /** The server span of a request, child of the client's traceparent when it sent a valid one. */
  startRequest(ex: Exchange): ExchangeTrace {
    const parent = ex.req.headers.traceparent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, ex.req.headers, headerGetter);
    const span = this.tracer.startSpan(
      `${ex.method}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': ex.method,
          'url.path': ex.matchPath,
          'url.scheme': ex.scheme,
          'server.address': ex.host,
          'client.address': ex.clientIp,
          'network.protocol.version': ex.req.httpVersion,
          'meshgate.request_id': ex.requestId,
        },
      },
      parent,
    );
    return new RequestTrace(this.tracer, span);
  }

  /** Sends what is queued and stops. */
  async close(): Promise<void> {
    await this.provider.shutdown().catch(() => undefined);
  }
}
