// The open chat: new or existing, its messages, and sending a turn over the stream.

import { ApiError, describeError } from "./api.js";
import { chatTitle } from "./chats.js";
import { byId, newId, store } from "./dom.js";

const MESSAGE_PAGE = 50;
/** The open chat, reopened after a reload of the tab. */
export const CHAT_KEY = "chatserver.chat";

export class ChatController {
  constructor({ api, conversation, chats, sessions, onAgentChange, onError }) {
    this.api = api;
    this.conversation = conversation;
    this.chats = chats;
    this.sessions = sessions;
    this.onAgentChange = onAgentChange;
    this.onError = onError;
    this.chatId = null;
    this.agentName = null;
    this.exists = false;
    this.earlier = null;
    this.controller = null;
    this.title = byId("chat-title");
    this.input = byId("message");
    this.sendButton = byId("send");
    this.stopButton = byId("stop");
    this.earlierButton = byId("earlier");
    this.earlierButton.addEventListener("click", () => this.loadMessages(this.earlier));
    this.stopButton.addEventListener("click", () => this.controller?.abort());
  }

  get busy() {
    return this.controller !== null;
  }

  /** An empty chat with a fresh id; it exists on the server once its first message is sent. */
  async newChat(agentName) {
    this.controller?.abort();
    await this.sessions.end();
    this.chatId = newId();
    this.exists = false;
    this.earlier = null;
    this.earlierButton.hidden = true;
    this.conversation.clear();
    this.title.textContent = "New chat";
    this.chats.setActive(null);
    store.remove(CHAT_KEY);
    this.setAgent(agentName);
    this.conversation.setLoading(false);
    this.input.focus();
  }

  async openChat(chat) {
    this.controller?.abort();
    this.chatId = chat.id;
    this.exists = true;
    this.title.textContent = chatTitle(chat);
    this.chats.setActive(chat.id);
    store.set(CHAT_KEY, chat.id);
    this.setAgent(chat.agent_name);
    this.conversation.clear();
    this.earlier = null;
    await this.loadMessages(null);
    this.sessions.open(chat.agent_name, chat.id);
  }

  setAgent(agentName) {
    const changed = agentName !== this.agentName;
    this.agentName = agentName;
    if (changed) this.onAgentChange(agentName);
  }

  async loadMessages(before) {
    const chatId = this.chatId;
    const query = `limit=${MESSAGE_PAGE}${before ? `&before=${encodeURIComponent(before)}` : ""}`;
    this.conversation.setLoading(true);
    try {
      const page = await this.api.get(`/api/chats/${encodeURIComponent(chatId)}/messages?${query}`);
      if (chatId !== this.chatId) return;
      this.conversation.showHistory(page.items, { prepend: Boolean(before) });
      this.earlier = page.next_before;
      this.earlierButton.hidden = !this.earlier;
    } catch (error) {
      this.onError(error, () => this.loadMessages(before));
    } finally {
      if (chatId === this.chatId) this.conversation.setLoading(false);
    }
  }

  send(text) {
    if (this.busy || !text.trim() || !this.agentName) return false;
    this.conversation.addUser(text);
    this.runTurn(text);
    return true;
  }

  async runTurn(text) {
    const chatId = this.chatId;
    const agentName = this.agentName;
    const turn = this.conversation.startAssistant();
    const controller = new AbortController();
    this.setBusy(controller);
    const retry = () => this.send(text);
    try {
      const body = { agent_name: agentName, message: text, session_id: chatId };
      const finished = await this.consume(this.api.streamChat(body, controller.signal), turn, retry);
      if (!finished) turn.fail({ text: "The answer was cut off before it finished.", retry: true }, retry);
    } catch (error) {
      if (error.name === "AbortError") turn.fail({ text: "Stopped.", retry: true }, retry);
      else turn.fail(describeError(error), retry);
    } finally {
      turn.finish();
      if (this.controller === controller) this.setBusy(null);
    }
    if (chatId === this.chatId) await this.afterTurn(chatId, agentName);
  }

  /** Feed the stream's events to the turn; true when the turn ended (done or a reported error). */
  async consume(events, turn, retry) {
    for await (const { event, data } of events) {
      if (event === "token") turn.appendDelta(data.delta ?? "");
      else if (event === "tool_call") turn.toolCall(data.name, data.args);
      else if (event === "tool_result") turn.toolResult(data.name, data.result);
      else if (event === "done") return true;
      else if (event === "error") {
        // Reported mid-stream, so by the server, after the turn started: worth a retry.
        turn.fail(describeError(new ApiError(500, data.code ?? "error", data.detail ?? "")), retry);
        return true;
      }
    }
    return false;
  }

  /** The chat now exists on the server (even when the model failed): list it, keep a session. */
  async afterTurn(chatId, agentName) {
    await this.chats.refresh();
    const chat = this.chats.find(chatId);
    if (!chat) return;
    this.exists = true;
    this.title.textContent = chatTitle(chat);
    this.chats.setActive(chatId);
    store.set(CHAT_KEY, chatId);
    this.sessions.open(agentName, chatId);
  }

  setBusy(controller) {
    this.controller = controller;
    this.sendButton.hidden = controller !== null;
    this.stopButton.hidden = controller === null;
  }
}
