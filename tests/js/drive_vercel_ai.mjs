// The Vercel AI SDK (`ai`), telemetry on, with its mock language model, through every scenario;
// the OpenTelemetry JS SDK exports the spans over OTLP/HTTP (protobuf) to `otel-labelstudio serve`.
//
//   node drive_vercel_ai.mjs --endpoint http://127.0.0.1:PORT/v1/traces --texts FILE.json \
//        [--copy-endpoint http://127.0.0.1:PORT2/v1/traces]
//
// With --copy-endpoint, the same spans also go there (the test keeps them to read in-process).
// FILE.json holds the scenario texts (tests/integration/frameworks/scenarios.py writes it), so the
// Python test knows exactly what was sent. Each scenario runs under its own root span named
// `scenario <name>` (an ordinary span, not GenAI); stdout is one JSON line:
// {"ai": "<version>", "scenarios": {"<name>": "<trace id>"}}. The mock model answers like the
// fake OpenAI server of the Python tests: "You said: <first 40 characters>". The AI SDK takes one
// answer per call, so there is no n = 2 scenario.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (i % 2 ? pairs : [...pairs, [arg.replace(/^--/, ''), all[i + 1]]]), []),
);
const texts = JSON.parse(readFileSync(args.texts, 'utf8'));
const endpoints = [args.endpoint, args['copy-endpoint']].filter(Boolean);
const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'vercel-ai-app' }),
  spanProcessors: endpoints.map(
    (url) => new BatchSpanProcessor(new OTLPTraceExporter({ url, timeoutMillis: 10_000 })),
  ),
});
provider.register();
const tracer = trace.getTracer('drive-vercel-ai');

const usage = (input, output) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});
const echo = (text) => `You said: ${text.slice(0, 40)}`;
const lastUser = (prompt) => {
  const users = prompt.filter((m) => m.role === 'user');
  const parts = users.at(-1)?.content ?? [];
  return parts.filter((p) => p.type === 'text').map((p) => p.text).join(' ');
};

function model() {
  return new MockLanguageModelV3({
    provider: 'mock-provider',
    modelId: 'mock-model-1',
    doGenerate: async ({ prompt, tools }) => {
      const last = prompt.at(-1);
      if (lastUser(prompt) === texts.FAIL) throw new Error('the mock model is down');
      if (tools?.length && last.role !== 'tool') {
        return {
          content: [{ type: 'tool-call', toolCallId: 'call_weather_1', toolName: 'get_weather', input: JSON.stringify({ city: 'Paris' }) }],
          finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
          usage: usage(8, 1),
          warnings: [],
        };
      }
      if (last.role === 'tool') {
        const output = last.content[0].output;
        return {
          content: [{ type: 'text', text: `The weather tool says: ${output.value}` }],
          finishReason: { unified: 'stop', raw: 'stop' },
          usage: usage(11, 9),
          warnings: [],
        };
      }
      const text = echo(lastUser(prompt));
      return { content: [{ type: 'text', text }], finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(5, 7), warnings: [] };
    },
    doStream: async ({ prompt }) => {
      const text = echo(lastUser(prompt));
      const chunks = [{ type: 'stream-start', warnings: [] }, { type: 'text-start', id: 't1' }];
      for (let i = 0; i < text.length; i += 8) chunks.push({ type: 'text-delta', id: 't1', delta: text.slice(i, i + 8) });
      chunks.push({ type: 'text-end', id: 't1' }, { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(4, 7) });
      return { stream: simulateReadableStream({ chunks }) };
    },
  });
}

const telemetry = { isEnabled: true, functionId: 'labelled-fn' };
const weather = tool({
  description: 'The current weather in a city.',
  inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
  execute: async () => texts.TOOL_RESULT,
});

const scenarios = {
  single: () => generateText({ model: model(), prompt: texts.SINGLE, experimental_telemetry: telemetry }),
  system_user: () => generateText({ model: model(), system: texts.SYSTEM, prompt: texts.SYSTEM_USER, experimental_telemetry: telemetry }),
  multi_turn: () => generateText({
    model: model(),
    messages: [
      { role: 'user', content: texts.TURNS[0] },
      { role: 'assistant', content: texts.TURNS[1] },
      { role: 'user', content: texts.TURNS[2] },
    ],
    experimental_telemetry: telemetry,
  }),
  tool_round_trip: () => generateText({ model: model(), prompt: texts.TOOL_QUESTION, tools: { get_weather: weather }, stopWhen: stepCountIs(3), experimental_telemetry: telemetry }),
  streaming: async () => {
    const result = streamText({ model: model(), prompt: texts.STREAM, experimental_telemetry: telemetry });
    for await (const _ of result.textStream) { /* drain */ }
  },
  failed: async () => {
    try {
      await generateText({ model: model(), prompt: texts.FAIL, maxRetries: 0, experimental_telemetry: telemetry });
    } catch { return; }
    throw new Error('the failing mock model answered');
  },
  non_ascii: () => generateText({ model: model(), prompt: texts.NON_ASCII, experimental_telemetry: telemetry }),
  big_prompt: () => generateText({ model: model(), prompt: texts.BIG, experimental_telemetry: telemetry }),
};

const traces = {};
for (const [name, run] of Object.entries(scenarios)) {
  const root = tracer.startSpan(`scenario ${name}`);
  traces[name] = root.spanContext().traceId;
  await context.with(trace.setSpan(context.active(), root), run);
  root.end();
}
await provider.forceFlush();
await provider.shutdown();
const require = createRequire(import.meta.url);
console.log(JSON.stringify({ ai: require('ai/package.json').version, scenarios: traces }));
