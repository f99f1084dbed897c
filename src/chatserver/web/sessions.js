// A session instance for the open chat: opened when a chat that exists is shown, heartbeated while
// the page is visible (so the server keeps the agent warm), ended when the chat is left or the page
// goes away (a keepalive request, which outlives the page). Failures here never disturb chatting:
// the server sweeps forgotten sessions by itself.

const HEARTBEAT_MS = 60_000;

export class SessionKeeper {
  constructor(api, { heartbeatMs = HEARTBEAT_MS } = {}) {
    this.api = api;
    this.heartbeatMs = heartbeatMs;
    this.wanted = null; // {agentName, chatId} the page shows
    this.session = null; // the server's session object, once opened
    this.timer = null;
    document.addEventListener("visibilitychange", () => this.onVisibility());
    window.addEventListener("pagehide", () => this.endOnExit());
    window.addEventListener("pageshow", (event) => {
      // Back from the back/forward cache: pagehide ended the session, so open it again.
      if (event.persisted && this.wanted) this.reopen();
    });
  }

  get id() {
    return this.session?.id ?? null;
  }

  async open(agentName, chatId) {
    const same = this.wanted?.agentName === agentName && this.wanted?.chatId === chatId;
    if (same && this.session) return;
    await this.end();
    this.wanted = { agentName, chatId };
    await this.reopen();
  }

  async reopen() {
    const wanted = this.wanted;
    if (!wanted) return;
    try {
      const body = { agent_name: wanted.agentName, chat_id: wanted.chatId };
      const session = await this.api.post("/api/chat_sessions", body);
      if (this.wanted !== wanted) {
        // The user moved on while this was opening.
        this.api.delete(`/api/chat_sessions/${encodeURIComponent(session.id)}`).catch(() => {});
        return;
      }
      this.session = session;
      this.schedule();
    } catch (error) {
      console.warn("chatserver: could not open a session instance", error);
    }
  }

  schedule() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.session && document.visibilityState === "visible") {
      this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    }
  }

  async beat() {
    const session = this.session;
    if (!session) return;
    try {
      await this.api.post(`/api/chat_sessions/${encodeURIComponent(session.id)}/heartbeat`);
    } catch (error) {
      if (error.status === 404 && this.session === session) {
        this.session = null;
        await this.reopen();
      }
    }
  }

  onVisibility() {
    if (document.visibilityState === "visible") {
      if (this.session) this.beat();
      else if (this.wanted) this.reopen();
    }
    this.schedule();
  }

  /** Leave the chat: end its session (awaited, the page stays). */
  async end() {
    clearInterval(this.timer);
    this.timer = null;
    const session = this.session;
    this.session = null;
    this.wanted = null;
    if (session) {
      await this.api.delete(`/api/chat_sessions/${encodeURIComponent(session.id)}`).catch(() => {});
    }
  }

  /** The page is going away: a keepalive request is the only kind that still gets sent. */
  endOnExit() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.session) this.api.sendBeacon("DELETE", `/api/chat_sessions/${encodeURIComponent(this.session.id)}`);
    this.session = null;
  }
}
