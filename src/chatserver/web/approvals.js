// A run that waits for the user: a card per tool call to approve (its arguments editable as JSON)
// or deny; and a Resume button for a run that was interrupted (the server stopped mid-run).

import { describeError } from "./api.js";
import { formatJson, h } from "./dom.js";

/** Cards for `approvals` of run `runId`; `onAllDecided` runs once every one is decided. */
export function approvalCards(api, runId, approvals, onAllDecided) {
  let left = approvals.length;
  const decided = () => {
    left -= 1;
    if (left === 0) onAllDecided();
  };
  return approvals.map((approval) => approvalCard(api, runId, approval, decided));
}

function approvalCard(api, runId, approval, onDecided) {
  const original = formatJson(approval.args ?? {});
  const args = h("textarea", { class: "approval-args", rows: 4, "aria-label": `Arguments of ${approval.tool_name}` });
  args.value = original;
  const problem = h("p", { class: "approval-problem", role: "alert", hidden: true });
  const approve = h("button", { type: "button", class: "primary approve" }, "Approve");
  const deny = h("button", { type: "button", class: "deny" }, "Deny");
  const card = h("div", { class: "approval", role: "group", "aria-label": `Approve ${approval.tool_name}` },
    h("p", { class: "tool-heading" }, "Approve the call of ", h("code", {}, approval.tool_name), "?"),
    args, problem, h("div", { class: "approval-actions" }, approve, deny));
  const send = async (decision) => {
    approve.disabled = deny.disabled = true;
    try {
      await api.post(`/api/runs/${encodeURIComponent(runId)}/approvals`, { decisions: [decision] });
    } catch (error) {
      show(problem, describeError(error).text);
      approve.disabled = deny.disabled = false;
      return;
    }
    card.replaceChildren(h("p", { class: "hint" }, `${approval.tool_name}: ${decision.approve ? "approved" : "denied"}`));
    onDecided();
  };
  approve.addEventListener("click", () => {
    let edited;
    try {
      edited = JSON.parse(args.value);
    } catch {
      show(problem, "The arguments are not valid JSON.");
      return;
    }
    const decision = { id: approval.id, approve: true };
    if (args.value !== original) decision.args = edited;
    send(decision);
  });
  deny.addEventListener("click", () => send({ id: approval.id, approve: false, reason: "denied in the web page" }));
  return card;
}

/** A Resume button for an interrupted run; `onResumed` follows it once the server took it up. */
export function resumeButton(api, runId, onResumed) {
  const problem = h("p", { class: "approval-problem", role: "alert", hidden: true });
  const button = h("button", { type: "button", class: "primary resume" }, "Resume");
  const box = h("div", { class: "approval" },
    h("p", { class: "hint" }, "The server stopped while answering."), button, problem);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api.post(`/api/runs/${encodeURIComponent(runId)}/resume`);
    } catch (error) {
      show(problem, describeError(error).text);
      button.disabled = false;
      return;
    }
    box.remove();
    onResumed();
  });
  return box;
}

function show(element, text) {
  element.textContent = text;
  element.hidden = false;
}
