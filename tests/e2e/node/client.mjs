// The official Node openai package against a live chatserver: prints what it got, as JSON, for
// tests/e2e/test_openai_node.py to check. CHATSERVER_URL and CHATSERVER_TOKEN say where and who.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: `${process.env.CHATSERVER_URL}/v1`,
  apiKey: process.env.CHATSERVER_TOKEN,
  maxRetries: 0,
  timeout: 30_000,
});

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

const plain = await client.chat.completions.create({
  model: "assistant",
  messages: [{ role: "user", content: "hello from node" }],
});

const called = await client.chat.completions.create({
  model: "assistant",
  messages: [{ role: "user", content: '/tool get_weather {"city": "Paris"}' }],
  tools: [weather],
});

const stream = await client.chat.completions.create({
  model: "assistant",
  messages: [{ role: "user", content: '/tool get_weather {"city": "Oslo"}' }],
  tools: [weather],
  stream: true,
});
const streamedCalls = [];
let streamedFinish = null;
for await (const chunk of stream) {
  const choice = chunk.choices[0];
  if (!choice) continue;
  for (const call of choice.delta.tool_calls ?? []) streamedCalls.push(call.function);
  streamedFinish = choice.finish_reason ?? streamedFinish;
}

const response = await client.responses.create({ model: "assistant", input: "hello responses" });
const chained = await client.responses.create({
  model: "assistant",
  input: "/recall",
  previous_response_id: response.id,
});
const model = await client.models.retrieve("assistant");

let unknownType = null;
try {
  await client.chat.completions.create({
    model: "assistant",
    messages: [{ role: "user", content: "hi" }],
    tools: [{ type: "retrieval" }],
  });
} catch (error) {
  unknownType = { status: error.status, param: error.param };
}

console.log(
  JSON.stringify({
    plain: plain.choices[0].message.content,
    called: {
      finish: called.choices[0].finish_reason,
      calls: called.choices[0].message.tool_calls.map((call) => call.function),
    },
    streamed: { finish: streamedFinish, calls: streamedCalls },
    response: response.output_text,
    chained: chained.output_text,
    model: model.id,
    unknownType,
  }),
);
