// The HTTP API of DESIGN.md, seen from the page: JSON calls, and the chat stream as Server-Sent
// Events read from a POST (EventSource can only GET, and cannot send the Authorization header).

/** The server answered with an error body {detail, code}. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** No answer at all: the server is down, or the network is. */
export class NetworkError extends Error {
  constructor(cause) {
    super("cannot reach the server");
    this.name = "NetworkError";
    this.cause = cause;
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status alone must do.
  }
  const code = body && typeof body.code === "string" ? body.code : `http_${response.status}`;
  const detail = body && body.detail !== undefined ? body.detail : response.statusText;
  return new ApiError(response.status, code, detail);
}

export class Api {
  /** @param {() => string | null} token  @param {() => void} onUnauthorized */
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  headers(json) {
    const headers = { Accept: "application/json" };
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json) headers["Content-Type"] = "application/json";
    return headers;
  }

  async fetch(method, path, body, options = {}) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: this.headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        ...options,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new NetworkError(error);
    }
    if (!response.ok) {
      const error = await errorFrom(response);
      if (error.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return response;
  }

  async json(method, path, body) {
    const response = await this.fetch(method, path, body);
    return response.status === 204 ? null : response.json();
  }

  get(path) { return this.json("GET", path); }
  post(path, body) { return this.json("POST", path, body ?? {}); }
  put(path, body) { return this.json("PUT", path, body); }
  patch(path, body) { return this.json("PATCH", path, body); }
  delete(path) { return this.json("DELETE", path); }

  /** A request that must outlive the page (sent from pagehide). */
  sendBeacon(method, path) {
    try {
      fetch(path, { method, headers: this.headers(false), keepalive: true }).catch(() => {});
    } catch {
      // The page is going away; nothing useful is left to do with the failure.
    }
  }

  /** One streamed chat turn: yields {event, data, id} until the stream ends. */
  streamChat(body, signal) {
    return this.stream(this.fetch("POST", "/api/chat/stream", body, { signal }));
  }

  /** A run's events after `lastEventId` (all when null), live until the run ends. */
  streamRun(runId, lastEventId, signal) {
    const headers = { ...this.headers(false), ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) };
    const path = `/api/runs/${encodeURIComponent(runId)}/events`;
    return this.stream(this.fetch("GET", path, undefined, { signal, headers }));
  }

  async *stream(started) {
    const response = await started;
    try {
      for await (const event of parseSSE(response.body)) yield event;
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new NetworkError(error);
    }
  }
}

/** Parse a text/event-stream body into {event, data} objects (data parsed as JSON). */
export async function* parseSSE(stream) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
      // A chunk may end between the \r and \n of one line break: keep that \r for the next round.
      const held = !done && buffer.endsWith("\r") ? "\r" : "";
      buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const event = parseBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
      buffer += held;
      if (done) return;
    }
  } finally {
    // Closes the connection when the reader stops early; harmless after the end of the stream.
    reader.cancel().catch(() => {});
  }
}

function parseBlock(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  const text = data.join("\n");
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return id === null ? { event, data: parsed } : { event, data: parsed, id };
}

function detailText(detail) {
  if (Array.isArray(detail)) {
    return detail.map((item) => (item && item.msg ? item.msg : String(item))).join("; ");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

/** What to tell the user about a failure, and whether trying again can help. */
export function describeError(error) {
  if (error instanceof NetworkError) {
    return { text: "Cannot reach the server. Check that it is running, then retry.", retry: true };
  }
  if (!(error instanceof ApiError)) {
    return { text: `Something went wrong: ${error.message || error}`, retry: true };
  }
  const detail = detailText(error.detail);
  switch (error.code) {
    case "unauthorized":
      return { text: "Your key or token was not accepted. Sign in again.", retry: false };
    case "chat_busy":
      return { text: "This chat is still answering another message. Wait a moment, then retry.", retry: true };
    case "model_error":
      return { text: `The model failed to answer: ${detail}`, retry: true };
    case "model_timeout":
      return { text: "The model took too long to answer.", retry: true };
    case "database_unavailable":
      return { text: "The server's database is unavailable right now.", retry: true };
    case "rate_limited":
      return { text: "Too many requests. Wait a moment, then retry.", retry: true };
    case "payload_too_large":
      return { text: `That message is too long: ${detail}`, retry: false };
    default:
      return { text: `${detail} (${error.code})`, retry: error.status >= 500 };
  }
}
