// The OpenTelemetry JS SDK sends GenAI spans to `otel-labelstudio serve` over OTLP/HTTP.
//
//   node send_genai_spans.mjs --endpoint http://127.0.0.1:PORT/v1/traces \
//        [--protocol json|protobuf] [--tag TEXT]
//
// Spans are made the way a JS GenAI instrumentation makes them (GenAI semantic conventions
// >= 1.37: gen_ai.input.messages / gen_ai.output.messages / gen_ai.system_instructions as JSON
// strings, provider, models, usage), under ordinary HTTP server spans and next to ordinary HTTP
// client spans, with service.name "js-app". They go through NodeTracerProvider, a
// BatchSpanProcessor and the SDK's own OTLP exporter: exporter-trace-otlp-http (JSON) or
// exporter-trace-otlp-proto (protobuf).
//
// Prints one JSON line on stdout: {"protocol", "tag", "genai": [...], "other": [...]}, each span
// with its hex ids and what a task made from it should show. Exits 1 when an export fails (the
// exporter's result is checked batch by batch, not left to the SDK's global error handler), 2 on
// bad arguments.

import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVICE_NAME,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import {
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
} from '@opentelemetry/semantic-conventions/incubating';

const SERVICE = 'js-app';
const EXPORT_TIMEOUT_MS = 10_000;

function parseArgs(argv) {
  const args = { endpoint: null, protocol: 'json', tag: '' };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = inline ?? argv[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    if (flag === '--endpoint') args.endpoint = value;
    else if (flag === '--protocol') args.protocol = value;
    else if (flag === '--tag') args.tag = value;
    else usage(`unknown argument ${flag}`);
  }
  if (!args.endpoint) usage('--endpoint is required');
  if (!['json', 'protobuf'].includes(args.protocol)) usage('--protocol is json or protobuf');
  return args;
}

function usage(message) {
  process.stderr.write(
    `send_genai_spans: ${message}\n` +
      'usage: node send_genai_spans.mjs --endpoint URL [--protocol json|protobuf] [--tag TEXT]\n',
  );
  process.exit(2);
}

// An exporter that remembers whether every export succeeded. The BatchSpanProcessor reports a
// failed export to the global error handler and carries on; the caller wants an exit status.
class Checked {
  constructor(inner) {
    this.inner = inner;
    this.failures = [];
    this.exported = 0;
  }

  export(spans, done) {
    this.inner.export(spans, (result) => {
      if (result.code === 0) this.exported += spans.length;
      else this.failures.push(String(result.error?.message ?? result.error ?? 'export failed'));
      done(result);
    });
  }

  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }

  shutdown() {
    return this.inner.shutdown();
  }
}

const text = (content) => ({ type: 'text', content });
const json = (value) => JSON.stringify(value);

function hexIds(span) {
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

// One LLM call, as a GenAI instrumentation records it: a CLIENT span named
// "{operation} {model}", with the provider's HTTP call as its child.
function llmCall(tracer, parentCtx, start, call) {
  const span = tracer.startSpan(
    `chat ${call.requestModel}`,
    {
      kind: SpanKind.CLIENT,
      startTime: start,
      attributes: {
        [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
        [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
        [ATTR_GEN_AI_REQUEST_MODEL]: call.requestModel,
        [ATTR_GEN_AI_REQUEST_TEMPERATURE]: 0.2,
        [ATTR_GEN_AI_REQUEST_MAX_TOKENS]: 256,
        [ATTR_GEN_AI_RESPONSE_MODEL]: call.responseModel,
        [ATTR_GEN_AI_RESPONSE_ID]: call.responseId,
        [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: [call.finishReason],
        [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: call.inputTokens,
        [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: call.outputTokens,
        [ATTR_GEN_AI_INPUT_MESSAGES]: json(call.input),
        [ATTR_GEN_AI_OUTPUT_MESSAGES]: json(call.output),
        [ATTR_SERVER_ADDRESS]: 'api.openai.example',
        ...(call.system ? { [ATTR_GEN_AI_SYSTEM_INSTRUCTIONS]: json(call.system) } : {}),
      },
    },
    parentCtx,
  );
  const http = tracer.startSpan(
    'POST',
    {
      kind: SpanKind.CLIENT,
      startTime: start + 2,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: 'POST',
        [ATTR_URL_FULL]: 'https://api.openai.example/v1/chat/completions',
        [ATTR_SERVER_ADDRESS]: 'api.openai.example',
        [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200,
      },
    },
    trace.setSpan(parentCtx, span),
  );
  http.end(start + call.latencyMs - 2);
  span.setStatus({ code: SpanStatusCode.UNSET });
  span.end(start + call.latencyMs);
  return { span, http };
}

function serverRequest(tracer, route, start) {
  return tracer.startSpan(
    `POST ${route}`,
    {
      kind: SpanKind.SERVER,
      startTime: start,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: 'POST',
        [ATTR_HTTP_ROUTE]: route,
        [ATTR_URL_PATH]: route,
        [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200,
      },
    },
    context.active(),
  );
}

function makeSpans(tracer, tag) {
  const genai = [];
  const other = [];
  const base = Date.now() - 10_000;
  const suffix = tag ? ` [${tag}]` : '';

  // 1. A single prompt with system instructions: a prompt task.
  {
    const root = serverRequest(tracer, '/ask', base);
    const ctx = trace.setSpan(context.active(), root);
    const question = `What is the capital of Australia?${suffix}`;
    const answer = 'Canberra.';
    const system = 'You are a terse geography tutor.';
    const call = {
      requestModel: 'gpt-4o-mini',
      responseModel: 'gpt-4o-mini-2024-07-18',
      responseId: 'chatcmpl-js-1',
      finishReason: 'stop',
      inputTokens: 21,
      outputTokens: 3,
      latencyMs: 842,
      system: [text(system)],
      input: [{ role: 'user', parts: [text(question)] }],
      output: [{ role: 'assistant', parts: [text(answer)], finish_reason: 'stop' }],
    };
    const { span, http } = llmCall(tracer, ctx, base + 5, call);
    root.end(base + 900);
    genai.push({
      ...hexIds(span),
      shape: 'prompt',
      prompt: `system: ${system}\n\nuser: ${question}`,
      response: answer,
      model: call.responseModel,
      input_tokens: call.inputTokens,
      output_tokens: call.outputTokens,
      latency_ms: call.latencyMs,
      finish_reason: 'stop',
    });
    other.push({ ...hexIds(root), name: 'POST /ask' }, { ...hexIds(http), name: 'POST' });
  }

  // 2. A conversation: a dialogue task.
  {
    const start = base + 1_000;
    const root = serverRequest(tracer, '/chat', start);
    const ctx = trace.setSpan(context.active(), root);
    const turns = [
      ['user', `Hi! Can you help me plan a trip?${suffix}`],
      ['assistant', 'Of course. Where would you like to go?'],
      ['user', 'Somewhere warm in March, two people, one week.'],
    ];
    const answer = 'Consider the Canary Islands: about 22 °C in March, and direct flights.';
    const call = {
      requestModel: 'gpt-4o',
      responseModel: 'gpt-4o-2024-08-06',
      responseId: 'chatcmpl-js-2',
      finishReason: 'stop',
      inputTokens: 48,
      outputTokens: 17,
      latencyMs: 1234,
      input: turns.map(([role, content]) => ({ role, parts: [text(content)] })),
      output: [{ role: 'assistant', parts: [text(answer)], finish_reason: 'stop' }],
    };
    const { span, http } = llmCall(tracer, ctx, start + 5, call);
    root.end(start + 1_300);
    genai.push({
      ...hexIds(span),
      shape: 'dialogue',
      dialogue: turns.map(([role, content]) => ({ role, content })),
      response: answer,
      model: call.responseModel,
      input_tokens: call.inputTokens,
      output_tokens: call.outputTokens,
      latency_ms: call.latencyMs,
      finish_reason: 'stop',
    });
    other.push({ ...hexIds(root), name: 'POST /chat' }, { ...hexIds(http), name: 'POST' });
  }

  // 3. The model answers with a tool call: a prompt task whose prediction names the call.
  {
    const start = base + 3_000;
    const root = serverRequest(tracer, '/weather', start);
    const ctx = trace.setSpan(context.active(), root);
    const question = `Do I need an umbrella in Paris today?${suffix}`;
    const call = {
      requestModel: 'gpt-4o-mini',
      responseModel: 'gpt-4o-mini-2024-07-18',
      responseId: 'chatcmpl-js-3',
      finishReason: 'tool_calls',
      inputTokens: 35,
      outputTokens: 12,
      latencyMs: 610,
      input: [{ role: 'user', parts: [text(question)] }],
      output: [
        {
          role: 'assistant',
          parts: [
            { type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } },
          ],
          finish_reason: 'tool_call',
        },
      ],
    };
    const { span, http } = llmCall(tracer, ctx, start + 5, call);
    root.end(start + 700);
    genai.push({
      ...hexIds(span),
      shape: 'prompt',
      prompt: question,
      response: '→ get_weather({"city": "Paris"})',
      model: call.responseModel,
      input_tokens: call.inputTokens,
      output_tokens: call.outputTokens,
      latency_ms: call.latencyMs,
      // OpenAI's "tool_calls" is read as the semantic conventions' "tool_call".
      finish_reason: 'tool_call',
    });
    other.push({ ...hexIds(root), name: 'POST /weather' }, { ...hexIds(http), name: 'POST' });
  }

  // 4. An ordinary request with no LLM call in it.
  {
    const start = base + 4_000;
    const root = tracer.startSpan(
      'GET /health',
      {
        kind: SpanKind.SERVER,
        startTime: start,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: 'GET',
          [ATTR_HTTP_ROUTE]: '/health',
          [ATTR_URL_PATH]: '/health',
          [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200,
        },
      },
      context.active(),
    );
    root.end(start + 1);
    other.push({ ...hexIds(root), name: 'GET /health' });
  }
  return { genai, other };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const Exporter = args.protocol === 'json' ? JsonExporter : ProtoExporter;
  const exporter = new Checked(
    new Exporter({ url: args.endpoint, timeoutMillis: EXPORT_TIMEOUT_MS }),
  );
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: SERVICE }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('js-genai-instrumentation', '1.0.0');
  const made = makeSpans(tracer, args.tag);
  const total = made.genai.length + made.other.length;

  await provider.forceFlush();
  await provider.shutdown();
  if (exporter.failures.length || exporter.exported !== total) {
    process.stderr.write(
      `send_genai_spans: exported ${exporter.exported} of ${total} spans to ${args.endpoint}` +
        ` (${args.protocol}); failures: ${exporter.failures.join('; ') || 'none reported'}\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ protocol: args.protocol, tag: args.tag, ...made })}\n`);
}

main().catch((error) => {
  process.stderr.write(`send_genai_spans: ${error?.stack ?? error}\n`);
  process.exit(1);
});
