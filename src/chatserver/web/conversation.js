// The message list: user messages as plain text, assistant answers as sanitized Markdown with
// their tool calls inline (collapsible: name, arguments, result), live while a turn streams.

import { ApiError, describeError } from "./api.js";
import { addCodeCopy, messageBar } from "./branches.js";
import { formatJson, h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

const RENDER_EVERY_MS = 40;

function toolCard(name, args) {
  const status = h("span", { class: "tool-status" }, "running");
  const result = h("pre", { class: "tool-result" }, "(waiting for the result)");
  const card = h(
    "details",
    { class: "tool" },
    h("summary", {}, "Tool ", h("code", {}, name), " ", status),
    h("div", { class: "tool-body" },
      h("p", { class: "tool-heading" }, "Arguments"),
      h("pre", { class: "tool-args" }, formatJson(args ?? {})),
      h("p", { class: "tool-heading" }, "Result"),
      result),
  );
  return {
    element: card,
    name,
    done: false,
    setResult(value) {
      result.textContent = formatJson(value);
      status.textContent = "done";
      this.done = true;
    },
    setMissing() {
      result.textContent = "(no result)";
      status.textContent = "no result";
      this.done = true;
    },
  };
}

/** One assistant answer: text blocks and tool cards in the order they arrived. */
class AssistantTurn {
  constructor(element, onGrow) {
    this.element = element;
    this.onGrow = onGrow;
    this.cards = [];
    this.byCallId = new Map();
    this.block = null;
    this.text = "";
    this.timer = null;
  }

  appendDelta(delta) {
    if (!this.block) {
      this.block = h("div", { class: "md" });
      this.text = "";
      this.element.append(this.block);
    }
    this.text += delta;
    this.timer ??= setTimeout(() => this.render(), RENDER_EVERY_MS);
  }

  /** A finished piece of text (from history). */
  addText(text) {
    if (!text) return;
    this.appendDelta(text);
    this.render();
    this.block = null;
  }

  render() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.block) {
      renderMarkdown(this.block, this.text);
      addCodeCopy(this.block);
    }
    this.onGrow();
  }

  toolCall(name, args, callId) {
    this.render();
    this.block = null;
    const card = toolCard(name, args);
    this.cards.push(card);
    if (callId) this.byCallId.set(callId, card);
    this.element.append(card.element);
    this.onGrow();
  }

  toolResult(name, result, callId) {
    let card = callId ? this.byCallId.get(callId) : undefined;
    card ??= this.cards.find((c) => !c.done && c.name === name);
    if (!card) {
      this.toolCall(name, undefined, callId);
      card = this.cards[this.cards.length - 1];
    }
    card.setResult(result);
    this.onGrow();
  }

  fail({ text, retry }, onRetry) {
    this.render();
    const box = h("div", { class: "turn-error", role: "alert" }, h("span", {}, text));
    if (retry && onRetry) {
      const button = h("button", { type: "button", class: "retry", onclick: () => { button.remove(); onRetry(); } }, "Retry");
      box.append(button);
    }
    this.element.append(box);
    this.onGrow();
  }

  /** Who answered and what it took, under the answer: "echo · 12 in, 5 out tokens". */
  meta(model, usage) {
    if (!model) return;
    this.render();
    this.block = null;
    const tokens = usage ? ` · ${usage.input_tokens} in, ${usage.output_tokens} out tokens` : "";
    this.element.append(h("p", { class: "hint turn-meta" }, `${model}${tokens}`));
  }

  /** A remark under the answer, e.g. that it was stopped. */
  note(text) {
    this.render();
    this.block = null;
    this.element.append(h("p", { class: "hint turn-note" }, text));
  }

  finish() {
    this.render();
    this.block = null;
    this.element.classList.remove("streaming");
    for (const card of this.cards) if (!card.done) card.setMissing();
    if (!this.element.querySelector(".md, .tool, .turn-error, .approval")) {
      this.element.append(h("p", { class: "hint" }, "(no answer)"));
    }
  }
}

export class Conversation {
  constructor(list, scroller, empty) {
    /** {edit, regenerate, retry, switchTo} (tree_actions.js), set by the chat controller. */
    this.actions = null;
    this.list = list;
    this.scroller = scroller;
    this.empty = empty;
    this.stick = true;
    scroller.addEventListener("scroll", () => { this.stick = this.atBottom(); }, { passive: true });
  }

  /** aria-busy tells assistive technology (and tests) that messages are still being loaded. */
  setLoading(loading) {
    this.list.setAttribute("aria-busy", String(loading));
  }

  clear() {
    this.list.replaceChildren();
    this.empty.hidden = false;
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  follow(wasAtBottom) {
    if (wasAtBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  userItem(text) {
    return h("li", { class: "msg user" }, h("span", { class: "visually-hidden" }, "You: "),
      h("div", { class: "plain" }, text));
  }

  assistantItem() {
    return h("li", { class: "msg assistant" }, h("span", { class: "visually-hidden" }, "Assistant: "));
  }

  addUser(text) {
    this.empty.hidden = true;
    this.list.append(this.userItem(text));
    this.follow(true);
  }

  startAssistant() {
    const item = this.assistantItem();
    item.classList.add("streaming");
    this.list.append(item);
    this.stick = true;
    return new AssistantTurn(item, () => this.follow(this.stick));
  }

  closeTurn(turn) {
    turn.finish();
    turn.element.append(messageBar(turn.first, turn.texts.join("\n\n"), this.actions));
  }

  /** After a streamed turn: the bars of its stored messages (the newest user message, its answer). */
  attachBars(items) {
    const users = this.list.querySelectorAll(".msg.user");
    const answers = this.list.querySelectorAll(".msg.assistant");
    const lastUser = users[users.length - 1];
    const lastAnswer = answers[answers.length - 1];
    const at = items.findLastIndex((m) => m.role === "user");
    if (at < 0 || !lastUser || lastUser.querySelector(".msg-actions")) return;
    lastUser.append(messageBar(items[at], items[at].content, this.actions));
    const answer = items.slice(at + 1);
    if (!answer.length || !lastAnswer || lastAnswer.compareDocumentPosition(lastUser) & Node.DOCUMENT_POSITION_FOLLOWING) return;
    const text = answer.filter((m) => m.role === "assistant" && m.content).map((m) => m.content).join("\n\n");
    lastAnswer.append(messageBar(answer[0], text, this.actions));
  }

  /** A stored user message left without an answer: how its run ended, as the live turn said it. */
  unanswered(message, last, fragment) {
    // The chat's last run, interrupted, is offered Resume instead (ChatController.offerToGoOn).
    if (last && message.run.status === "interrupted") return;
    const item = this.assistantItem();
    fragment.append(item);
    const turn = new AssistantTurn(item, () => {});
    const retry = last && this.actions ? () => this.actions.retry(message) : null;
    turn.fail({ ...endedAs(message.run), retry: Boolean(retry) }, retry);
    turn.finish();
  }

  /** Render stored messages (oldest first); `prepend` puts them above what is shown. */
  showHistory(items, { prepend = false, complete = !prepend } = {}) {
    const fragment = document.createDocumentFragment();
    let turn = null;
    let asked = null;
    const endTurn = (last) => {
      if (turn) {
        if (turn.run) turn.meta(turn.run.model, turn.run.usage);
        this.closeTurn(turn);
      } else if (asked?.message.run) this.unanswered(asked.message, last, fragment);
      else if (asked) asked.item.append(h("p", { class: "hint turn-note" }, "No answer: the turn failed or was stopped."));
      turn = null;
    };
    for (const [at, message] of items.entries()) {
      if (message.role === "user") {
        if (at > 0) endTurn(false);
        asked = { message, item: this.userItem(message.content) };
        asked.item.append(messageBar(message, message.content, this.actions));
        fragment.append(asked.item);
        continue;
      }
      if (!turn) {
        const item = this.assistantItem();
        fragment.append(item);
        turn = new AssistantTurn(item, () => {});
        turn.first = message;
        turn.texts = [];
      }
      if (message.role === "assistant") {
        turn.addText(message.content);
        if (message.content) turn.texts.push(message.content);
        if (message.incomplete) turn.note("Stopped before the answer was finished.");
        for (const call of message.tool_calls ?? []) turn.toolCall(call.name, call.args, call.id);
        turn.run = message.run ?? turn.run;
      } else if (message.role === "tool") {
        turn.toolResult(message.tool_name ?? "tool", message.content, message.tool_call_id);
      }
    }
    if (turn || asked?.message.run) endTurn(complete);
    if (items.length) this.empty.hidden = true;
    if (prepend) {
      const before = this.scroller.scrollHeight;
      this.list.prepend(fragment);
      this.scroller.scrollTop += this.scroller.scrollHeight - before;
    } else {
      this.list.append(fragment);
      this.follow(true);
    }
  }
}

/** What the live view said when a run ended this way: "Stopped.", the error, or the server stopping. */
function endedAs(run) {
  if (run.status === "cancelled") return { text: "Stopped." };
  if (run.status === "interrupted") return { text: "The server stopped before it answered." };
  const error = run.error ?? { code: "error", detail: "the run failed" };
  return { text: describeError(new ApiError(500, error.code, error.detail)).text };
}
