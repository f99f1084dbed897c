// The page's entry point: sign-in, then the chat view wired to the sidebar, the agent picker, the
// instructions panel and the session keeper.

import { Api, ApiError, NetworkError, describeError } from "./api.js";
import { CHAT_KEY, ChatController } from "./chat.js";
import { ChatList, chatTitle } from "./chats.js";
import { Conversation } from "./conversation.js";
import { CustomizationPanel } from "./customizations.js";
import { byId, h, store } from "./dom.js";
import { AdminPanel } from "./admin.js";
import { MemoriesPanel } from "./memories.js";
import { keptToken } from "./remember.js";
import { SessionKeeper } from "./sessions.js";

const TOKEN_KEY = "chatserver.token";
const AGENT_KEY = "chatserver.agent";
const NARROW = window.matchMedia("(max-width: 760px)");

let signedIn = false;
let bannerRetry = null;

const api = new Api(() => store.get(TOKEN_KEY), () => signOut("Your key or token is no longer accepted. Sign in again."));
const sessions = new SessionKeeper(api);
const conversation = new Conversation(byId("messages"), byId("scroller"), byId("empty"));
const panel = new CustomizationPanel(api);
const chats = new ChatList(api, {
  onOpen: (item) => { closeSidebarIfNarrow(); chat.openChat(item); },
  onDeleted: (item) => { if (item.id === chat.chatId) chat.newChat(chat.agentName); },
  onError: (error) => showBanner(error, () => chats.refresh()),
  onChanged: (item) => { if (item.id === chat.chatId) chat.title.textContent = chatTitle(item); },
});
new MemoriesPanel(api, () => chat.agentName);
const admin = new AdminPanel(api, async () => {
  fillAgents(await api.get("/api/agents"));
  byId("agent").value = chat.agentName ?? "";
});
const chat = new ChatController({
  api, conversation, chats, sessions,
  onAgentChange: (name) => agentChanged(name),
  onError: (error, retry) => showBanner(error, retry),
});

// ---- sign-in ----

function showSignin(message) {
  byId("app").hidden = true;
  byId("signin").hidden = false;
  const error = byId("signin-error");
  error.textContent = message ?? "";
  error.hidden = !message;
  byId("token").focus();
}

function signinMessage(error) {
  if (error instanceof ApiError && error.status === 401) {
    return "That key or token was not accepted (401 unauthorized). Check that it is complete, "
      + "and that it has not expired or been revoked.";
  }
  if (error instanceof NetworkError) return `Cannot reach the server at ${location.origin}. Is it running?`;
  return describeError(error).text;
}

async function signIn(token) {
  const button = byId("signin-button");
  button.disabled = true;
  store.set(TOKEN_KEY, token);
  if (byId("remember").checked) keptToken.set(token);
  else keptToken.remove();
  try {
    const agents = await api.get("/api/agents");
    await enterApp(agents);
  } catch (error) {
    // A server that is down says nothing about the token: keep it for the next try.
    if (!(error instanceof NetworkError)) {
      store.remove(TOKEN_KEY);
      keptToken.remove();
    }
    byId("token").value = store.get(TOKEN_KEY) ?? "";
    showSignin(signinMessage(error));
  } finally {
    button.disabled = false;
  }
}

async function signOut(message) {
  if (!signedIn) return;
  signedIn = false;
  chat.controller?.abort();
  await sessions.end();
  store.remove(TOKEN_KEY);
  keptToken.remove();
  store.remove(CHAT_KEY);
  hideBanner();
  conversation.clear();
  byId("chat-list").replaceChildren();
  byId("token").value = "";
  showSignin(message);
}

// ---- the chat view ----

function fillAgents(agents) {
  const select = byId("agent");
  select.replaceChildren(...agents.map((agent) =>
    h("option", { value: agent.name, title: agent.description || agent.model }, agent.name)));
  select.disabled = agents.length === 0;
  byId("message").disabled = agents.length === 0;
}

function defaultAgent(agents) {
  const names = agents.map((agent) => agent.name);
  const remembered = store.get(AGENT_KEY);
  if (names.includes(remembered)) return remembered;
  return names.includes("assistant") ? "assistant" : names[0] ?? null;
}

async function enterApp(agents) {
  signedIn = true;
  byId("signin").hidden = true;
  byId("signin-error").hidden = true;
  byId("app").hidden = false;
  fillAgents(agents);
  admin.offer();
  if (!agents.length) showBannerText("No agents exist yet. An admin can create one: chatserver agents create NAME --model echo ...");
  await chats.refresh();
  const wanted = store.get(CHAT_KEY);
  const existing = wanted ? chats.find(wanted) : null;
  if (existing) await chat.openChat(existing);
  else await chat.newChat(defaultAgent(agents));
  await chat.showBudget();
}

function agentChanged(name) {
  byId("agent").value = name ?? "";
  if (name) store.set(AGENT_KEY, name);
  if (!byId("panel").hidden && name) panel.load(name);
}

function showBannerText(text, retry) {
  byId("banner-text").textContent = text;
  bannerRetry = retry ?? null;
  byId("banner-retry").hidden = !bannerRetry;
  byId("banner").hidden = false;
}

function showBanner(error, retry) {
  if (error instanceof ApiError && error.status === 401) return;
  const described = describeError(error);
  showBannerText(described.text, described.retry ? retry : null);
}

function hideBanner() {
  byId("banner").hidden = true;
  bannerRetry = null;
}

function setPanel(open) {
  byId("panel").hidden = !open;
  byId("toggle-panel").setAttribute("aria-expanded", String(open));
  if (open) {
    panel.load(chat.agentName);
    panel.fields.firstField().focus();
  }
}

function setSidebar(open) {
  byId("sidebar").classList.toggle("open", open);
  byId("toggle-sidebar").setAttribute("aria-expanded", String(open));
}

function closeSidebarIfNarrow() {
  if (NARROW.matches) setSidebar(false);
}

function wire() {
  byId("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = byId("token").value.trim();
    if (token) signIn(token);
    else showSignin("Paste an API key or a JWT first.");
  });
  byId("signout").addEventListener("click", () => signOut());
  byId("new-chat").addEventListener("click", () => { closeSidebarIfNarrow(); chat.newChat(byId("agent").value); });
  byId("agent").addEventListener("change", (event) => {
    const name = event.target.value;
    if (chat.exists) chat.newChat(name);
    else chat.setAgent(name);
  });
  byId("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId("message");
    if (chat.send(input.value)) input.value = "";
  });
  byId("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      byId("composer").requestSubmit();
    }
  });
  byId("banner-close").addEventListener("click", hideBanner);
  byId("banner-retry").addEventListener("click", () => { const retry = bannerRetry; hideBanner(); retry?.(); });
  byId("toggle-panel").addEventListener("click", () => setPanel(byId("panel").hidden));
  byId("close-panel").addEventListener("click", () => { setPanel(false); byId("toggle-panel").focus(); });
  byId("toggle-sidebar").addEventListener("click", () => setSidebar(!byId("sidebar").classList.contains("open")));
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!byId("panel").hidden) { setPanel(false); byId("toggle-panel").focus(); }
    else if (byId("sidebar").classList.contains("open")) setSidebar(false);
  });
}

wire();
const kept = keptToken.get();
byId("remember").checked = Boolean(kept);
const saved = store.get(TOKEN_KEY) ?? kept;
if (saved) signIn(saved);
else showSignin();
