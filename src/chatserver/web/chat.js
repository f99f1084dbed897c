// The open chat: new or existing, its messages, and sending a turn over the stream.

import { ApiError, describeError } from "./api.js";
import { approvalCards, resumeButton } from "./approvals.js";
import { chatTitle } from "./chats.js";
import { byId, newId, store } from "./dom.js";
import { treeActions } from "./tree_actions.js";

const MESSAGE_PAGE = 50;
/** The open chat, reopened after a reload of the tab. */
export const CHAT_KEY = "chatserver.chat";
/** The run answering in the open chat, {chatId, runId}: a reload mid-answer follows it again. */
const RUN_KEY = "chatserver.run";
const RUNNING = new Set(["queued", "running"]);

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
    this.runId = null;
    this.stopRequested = false;
    this.title = byId("chat-title");
    this.input = byId("message");
    this.sendButton = byId("send");
    this.stopButton = byId("stop");
    this.earlierButton = byId("earlier");
    this.budgetLine = byId("budget");
    this.earlierButton.addEventListener("click", () => this.loadMessages(this.earlier));
    this.stopButton.addEventListener("click", () => this.stop());
    this.conversation.actions = treeActions(this);
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
    await this.resume(chat.id);
    await this.offerToGoOn(chat.id);
  }

  /** The chat's last run waits for a decision (its cards again) or was interrupted (Resume). */
  async offerToGoOn(chatId) {
    if (this.busy) return;
    let page;
    try {
      page = await this.api.get(`/api/chats/${encodeURIComponent(chatId)}/runs?limit=1`);
    } catch {
      return; // the chat is shown; this is only an offer
    }
    const run = page.items[0];
    if (!run || chatId !== this.chatId) return;
    const goOn = () => this.follow((signal) => this.api.streamRun(run.id, null, signal), null);
    if (run.status === "requires_action") await goOn();
    else if (run.status === "interrupted") this.offerResume(run.id, goOn);
  }

  offerResume(runId, goOn) {
    // One offer at a time: the chat may be opened twice at once (a reload, then a click on it).
    this.resumeOffer?.element.remove();
    const holder = this.resumeOffer = this.conversation.startAssistant();
    holder.element.append(resumeButton(this.api, runId, () => {
      holder.element.remove();
      goOn();
    }));
    holder.finish();
  }

  /** A run of this chat still answering (the tab was reloaded mid-answer): follow it to its end. */
  async resume(chatId) {
    const active = parseRun(store.get(RUN_KEY));
    if (!active || active.chatId !== chatId || this.busy) return;
    let run;
    try {
      run = await this.api.get(`/api/runs/${encodeURIComponent(active.runId)}`);
    } catch {
      store.remove(RUN_KEY);
      return;
    }
    if (!RUNNING.has(run.status) || chatId !== this.chatId) {
      store.remove(RUN_KEY);
      return;
    }
    await this.follow((signal) => this.api.streamRun(run.id, null, signal), null);
  }

  /** Stop the answer: the run is cancelled on the server, whichever replica runs it. */
  async stop() {
    if (!this.runId) {
      this.stopRequested = true;
      return;
    }
    try {
      await this.api.post(`/api/runs/${encodeURIComponent(this.runId)}/cancel`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 409)) this.controller?.abort();
    }
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
    const body = { agent_name: this.agentName, message: text, session_id: this.chatId };
    await this.follow((signal) => this.api.streamChat(body, signal), () => this.send(text));
  }

  /** Show a run's events as an answer, until it ends; `retry` sends the message again. */
  async follow(open, retry) {
    const chatId = this.chatId;
    const agentName = this.agentName;
    const turn = this.conversation.startAssistant();
    const controller = new AbortController();
    this.setBusy(controller);
    try {
      const finished = await this.consume(open(controller.signal), turn, retry);
      // Only a run seen to its end is forgotten: a page that is going away (a reload) keeps it.
      if (finished) store.remove(RUN_KEY);
      else turn.fail({ text: "The answer was cut off before it finished.", retry: true }, retry);
    } catch (error) {
      if (error.name === "AbortError") turn.fail({ text: "Stopped.", retry: true }, retry);
      else turn.fail(describeError(error), retry);
    } finally {
      turn.finish();
      if (this.controller === controller) this.setBusy(null);
    }
    if (chatId === this.chatId) await this.afterTurn(chatId, agentName);
    await this.showBudget();
  }

  /** What is left of the budgets that bind the user, when any does (GET /api/budget). */
  async showBudget() {
    let budgets;
    try {
      budgets = await this.api.get("/api/budget");
    } catch {
      return; // the answer is shown; the budget line is only a hint
    }
    this.budgetLine.textContent = budgets.map(describeBudget).join(" · ");
    this.budgetLine.hidden = budgets.length === 0;
  }

  /** Feed the run's events to the turn; true when the run ended (done, cancelled or an error). */
  async consume(events, turn, retry) {
    for await (const { event, data, id } of events) {
      if (event === "run") this.started(data.run_id);
      else if (event === "token") turn.appendDelta(data.delta ?? "");
      else if (event === "tool_call") turn.toolCall(data.name, data.args);
      else if (event === "tool_result") turn.toolResult(data.name, data.result);
      else if (event === "approval_required") {
        const after = () => this.follow((signal) => this.api.streamRun(data.run_id, id, signal), null);
        turn.element.append(...approvalCards(this.api, data.run_id, data.approvals ?? [], after));
        return true;
      }
      else if (event === "done") {
        turn.meta(data.model, data.usage);
        return true;
      }
      else if (event === "cancelled") {
        turn.fail({ text: "Stopped.", retry: true }, retry);
        return true;
      } else if (event === "error") {
        // Reported mid-stream, so by the server, after the turn started: worth a retry.
        turn.fail(describeError(new ApiError(500, data.code ?? "error", data.detail ?? "")), retry);
        return true;
      }
    }
    return false;
  }

  /** The run is on the server (its chat too): a reload from now on reopens both. */
  started(runId) {
    this.runId = runId;
    store.set(CHAT_KEY, this.chatId);
    store.set(RUN_KEY, JSON.stringify({ chatId: this.chatId, runId }));
    if (this.stopRequested) this.stop();
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
    await this.attachBars(chatId);
  }

  /** The just-stored messages' ids, times and versions, for the bars under them. */
  async attachBars(chatId) {
    try {
      const page = await this.api.get(`/api/chats/${encodeURIComponent(chatId)}/messages?limit=${MESSAGE_PAGE}`);
      if (chatId === this.chatId) this.conversation.attachBars(page.items);
    } catch {
      // only the bars are missing: the answer is shown
    }
  }

  setBusy(controller) {
    this.controller = controller;
    if (controller === null) {
      this.runId = null;
      this.stopRequested = false;
    }
    this.sendButton.hidden = controller !== null;
    this.stopButton.hidden = controller === null;
  }
}

const LIMITS = [["requests", "requests"], ["tokens", "tokens"], ["cost_usd", "USD"]];

/** "12 requests, 3400 tokens left today (resets 00:00 UTC)" */
export function describeBudget(budget) {
  const left = LIMITS.filter(([key]) => budget.remaining[key] !== null)
    .map(([key, unit]) => `${key === "cost_usd" ? budget.remaining[key].toFixed(2) : budget.remaining[key]} ${unit}`);
  const scope = budget.agent_name ? ` on ${budget.agent_name}` : "";
  const period = budget.period === "day" ? "today" : "this month";
  const resets = new Date(budget.resets_at).toISOString().slice(0, 16).replace("T", " ");
  return `${left.join(", ")} left${scope} ${period} (resets ${resets} UTC)`;
}

function parseRun(text) {
  try {
    const run = JSON.parse(text ?? "null");
    return run && typeof run.chatId === "string" && typeof run.runId === "string" ? run : null;
  } catch {
    return null;
  }
}
