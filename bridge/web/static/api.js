// The page's calls to the bridge: the session token lives only in this module's memory (no
// cookie, no storage), and the live stream is read with fetch so it can carry the token.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api {
  constructor() {
    this.token = null;
    this.onEnded = () => {};
  }

  /** Trade the link's code for a session (once). */
  async open(code) {
    const session = await this.call("POST", "/embed/api/session", { code });
    this.token = session.token;
    return session;
  }

  async call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, "network", String(error));
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      const failure = new ApiError(
        response.status,
        error.code || "unknown",
        error.message || response.statusText,
        error,
      );
      if (failure.code === "session_ended") this.onEnded();
      throw failure;
    }
    return { status: response.status, ...data };
  }

  get(path) {
    return this.call("GET", path);
  }

  post(path, body) {
    return this.call("POST", path, body);
  }

  /** A file of a message, as a blob the page can offer for download. */
  async download(messageId) {
    const response = await fetch(`/embed/api/messages/${encodeURIComponent(messageId)}/attachment`, {
      headers: { Authorization: `Bearer ${this.token}` },
      credentials: "omit",
    });
    if (!response.ok) throw new ApiError(response.status, "download_failed", response.statusText);
    return response.blob();
  }
}

/**
 * The live stream of the person's changes (server-sent events over fetch). `onChange` gets each
 * change; after a dropped connection it reconnects with the last id it saw, so the bridge
 * replays what happened meanwhile. `onReload` is called when the bridge says to read
 * everything again; `onState` with "live" or "lost".
 */
export class LiveStream {
  constructor(api, { onChange, onReload, onState, onEnded }) {
    this.api = api;
    this.handlers = { onChange, onReload, onState, onEnded };
    this.lastId = null;
    this.stopped = false;
    this.controller = null;
  }

  start() {
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  async loop() {
    let delay = 500;
    while (!this.stopped) {
      try {
        const ended = await this.connect();
        if (ended) {
          this.handlers.onEnded();
          return;
        }
        delay = 500;
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof ApiError && error.status === 401) {
          this.handlers.onEnded();
          return;
        }
      }
      this.handlers.onState("lost");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }

  /** One connection; true when the session ended. */
  async connect() {
    this.controller = new AbortController();
    const headers = { Authorization: `Bearer ${this.api.token}`, Accept: "text/event-stream" };
    if (this.lastId !== null) headers["Last-Event-ID"] = String(this.lastId);
    const response = await fetch("/embed/api/stream", {
      headers,
      credentials: "omit",
      cache: "no-store",
      signal: this.controller.signal,
    });
    if (response.status === 401) throw new ApiError(401, "session_ended", "ended");
    if (!response.ok || !response.body) throw new ApiError(response.status, "stream", "no stream");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (this.dispatch(block)) return true;
      }
    }
  }

  /** Handle one event block; true when the session ended. */
  dispatch(block) {
    let event = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (event === "ready") {
      this.handlers.onState("live");
    } else if (event === "reload") {
      this.handlers.onReload();
    } else if (event === "ended") {
      return true;
    } else if (event === "change") {
      const seq = Number(id);
      if (this.lastId !== null && seq <= this.lastId) return false; // already seen
      this.lastId = seq;
      try {
        this.handlers.onChange(JSON.parse(data.join("\n")));
      } catch {
        /* a change the page can't read is skipped; the next reload shows it */
      }
    }
    return false;
  }
}
