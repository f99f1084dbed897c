// The AI SDK's and AG-UI's own clients against a live chatserver, one scenario per run.
//
//   node clients.mjs '<scenario JSON>'   ->   one JSON object on stdout
//
// A scenario is {kind, url, token, chatId, agent, ...}; kinds:
//   ui-chat    {texts, newestOnly?}: a Chat (the AI SDK's state machine over DefaultChatTransport, as
//              useChat runs it) sends each text in turn; -> {status, error, messages, sent: the
//              number of messages each request carried}
//   ui-reload  {text}: a Chat sends text and is stopped once its answer has begun (a page reload);
//              a new Chat of the same id resumes the run, then resumes once more (nothing active)
//   ui-resume  {}: a new Chat of that id resumes whatever runs in it; -> {status, error, messages}
//   ui-tree    {steps}: a Chat takes each step in turn: {send: text}, {regenerate: i} (the message at
//              index i of chat.messages; null: the last answer) or {edit: i, text} (sendMessage with
//              that message's id); -> {status, error, messages, requests: each POST's
//              {trigger, messageId, count}}
//   agui       {texts}: an HttpAgent of @ag-ui/client runs once per text; -> {runs, messages}

import { AbstractChat, DefaultChatTransport } from "ai";
import { HttpAgent } from "@ag-ui/client";

const WAIT_MS = 20;
const MAX_WAITS = 500; // 10 s for the answer's message to start

class MemoryState {
  constructor(messages = []) {
    this.status = "ready";
    this.error = undefined;
    this.messages = messages;
  }
  pushMessage = (message) => {
    this.messages = this.messages.concat(message);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), message, ...this.messages.slice(index + 1)];
  };
  snapshot = (thing) => structuredClone(thing);
}

class Chat extends AbstractChat {
  constructor({ messages, ...init }) {
    super({ ...init, state: new MemoryState(messages) });
  }
}

// The README's advice for long chats: the server reads only the newest message, so send only that.
const newestOnly = ({ id, messages, body, trigger }) => ({
  body: { ...body, id, trigger, messages: messages.slice(-1) },
});

function newChat(scenario, messages = [], sent = [], requests = []) {
  // Counts the messages each POST carried: what the server was given to read from.
  const counting = (url, init) => {
    if (init?.method === "POST") {
      const body = JSON.parse(init.body);
      sent.push(body.messages.length);
      requests.push({ trigger: body.trigger, messageId: body.messageId ?? null, count: body.messages.length });
    }
    return fetch(url, init);
  };
  const transport = new DefaultChatTransport({
    api: `${scenario.url}/api/ui/chat`,
    headers: { Authorization: `Bearer ${scenario.token}` },
    body: { agent_name: scenario.agent },
    prepareSendMessagesRequest: scenario.newestOnly ? newestOnly : undefined,
    fetch: counting,
  });
  return new Chat({ id: scenario.chatId, transport, messages });
}

function outcome(chat) {
  return { status: chat.status, error: chat.error?.message ?? null, messages: chat.messages };
}

async function uiChat(scenario) {
  const sent = [];
  const chat = newChat(scenario, [], sent);
  for (const text of scenario.texts) {
    await chat.sendMessage({ text });
    if (chat.status === "error") break;
  }
  return { ...outcome(chat), sent };
}

async function uiTree(scenario) {
  const requests = [];
  const chat = newChat(scenario, [], [], requests);
  for (const step of scenario.steps) {
    if ("send" in step) await chat.sendMessage({ text: step.send });
    else if ("edit" in step) await chat.sendMessage({ text: step.text, messageId: chat.messages[step.edit].id });
    else await chat.regenerate(step.regenerate === null ? {} : { messageId: chat.messages[step.regenerate].id });
    if (chat.status === "error") break;
  }
  return { ...outcome(chat), requests };
}

async function uiReload(scenario) {
  const first = newChat(scenario);
  const sent = first.sendMessage({ text: scenario.text });
  const answering = () => first.messages.some((message) => message.role === "assistant");
  for (let i = 0; i < MAX_WAITS && !answering(); i++) {
    await new Promise((resolve) => setTimeout(resolve, WAIT_MS));
  }
  const answerStartedBeforeReload = answering();
  await first.stop();
  await sent;
  // What a reloaded page has: the messages it kept, the user's message among them.
  const kept = first.messages.filter((message) => message.role === "user");
  const second = newChat(scenario, kept);
  await second.resumeStream();
  const resumed = outcome(second);
  const third = newChat(scenario, second.messages);
  await third.resumeStream();
  return { answerStartedBeforeReload, resumed, again: outcome(third) };
}

async function uiResume(scenario) {
  const chat = newChat(scenario);
  await chat.resumeStream();
  return outcome(chat);
}

async function agui(scenario) {
  const agent = new HttpAgent({
    url: `${scenario.url}/api/agui`,
    headers: { Authorization: `Bearer ${scenario.token}` },
    threadId: scenario.chatId,
  });
  const runs = [];
  for (const [index, text] of scenario.texts.entries()) {
    agent.addMessage({ id: `user-${index}-${Date.now()}`, role: "user", content: text });
    const events = [];
    const subscriber = { onEvent: ({ event }) => void events.push(event) };
    try {
      const { result } = await agent.runAgent({ forwardedProps: { agent_name: scenario.agent } }, subscriber);
      runs.push({ events, result: result ?? null, error: null });
    } catch (error) {
      runs.push({ events, result: null, error: String(error?.message ?? error) });
      break;
    }
  }
  return { runs, messages: agent.messages };
}

const KINDS = { "ui-chat": uiChat, "ui-tree": uiTree, "ui-reload": uiReload, "ui-resume": uiResume, agui };

const scenario = JSON.parse(process.argv[2]);
const answer = await KINDS[scenario.kind](scenario);
process.stdout.write(JSON.stringify(answer));
