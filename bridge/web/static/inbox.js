// The embedded Messages page: the person's conversations on the left, the open one on the
// right, New Message, the composer, reports, and live updates from the bridge.

import { Api, ApiError, LiveStream } from "./api.js";
import { avatar, el, fullTime, safeHtml, shortTime } from "./render.js";
import { STRINGS, t } from "./strings.js";

const PAGE_SIZE = 30;
const REFRESH_DELAY_MS = 60;

const api = new Api();
const state = {
  me: null,
  conversations: [],
  current: null, // the open conversation's id
  detail: null, // its PageConversation
  messages: [], // oldest first
  nextBefore: null,
  loadingOlder: false,
  pending: [], // messages typed here and not answered yet: {clientId, body, status, error}
  editing: null, // the id of the message being edited
  deleting: null, // the id of the message whose deletion waits for a confirmation
  reporting: null, // the message being reported
  dirty: new Set(), // conversations changed since the last refresh
  refreshTimer: null,
  live: null,
};
const ui = {};

// --- start ---

async function start() {
  document.title = STRINGS.pageTitle;
  document.getElementById("loading").textContent = t("loading");
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  // The code works once: take it out of the address so a reload or a copied link never shows it.
  history.replaceState(null, "", location.pathname);
  if (!code) return showGone("expired");
  let session;
  try {
    session = await api.open(code);
  } catch (error) {
    return showGone(error instanceof ApiError && error.status === 401 ? "expired" : "error", error);
  }
  state.me = session.me;
  api.onEnded = () => showGone("ended");
  buildLayout();
  const fromPath = location.pathname.match(/\/embed\/conversations\/([^/]+)$/);
  const landing = fromPath ? decodeURIComponent(fromPath[1]) : session.conversation_id;
  state.live = new LiveStream(api, {
    onChange: changed,
    onReload: () => refreshAll(),
    onState: liveState,
    onEnded: () => showGone("ended"),
  });
  state.live.start();
  await loadConversations();
  if (landing) await openConversation(landing, { focus: false });
  ui.app.removeAttribute("aria-busy");
}

function showGone(kind, error) {
  if (state.live) state.live.stop();
  const app = document.getElementById("app");
  const title = kind === "ended" ? t("endedTitle") : t("expiredTitle");
  const body = kind === "error" ? describeError(error) : kind === "ended" ? t("endedBody") : t("expiredBody");
  app.replaceChildren(
    el("main", { class: "gone" }, el("h1", { text: title }), el("p", { text: body })),
  );
  app.removeAttribute("aria-busy");
}

// --- layout ---

function buildLayout() {
  ui.app = document.getElementById("app");
  ui.list = el("ul", { class: "conversation-list" });
  ui.newButton = el("button", { class: "primary", type: "button", onclick: openSearch }, t("newMessage"));
  ui.listPane = el(
    "nav",
    { class: "list-pane", "aria-label": t("conversations") },
    el("header", { class: "list-header" }, el("h1", { text: t("pageTitle") }), ui.newButton),
    ui.list,
  );
  ui.header = el("header", { class: "conversation-header" });
  ui.olderButton = el("button", { class: "link older", type: "button", onclick: loadOlder }, t("loadOlder"));
  ui.messages = el("ol", { class: "messages" });
  ui.history = el(
    "div",
    { class: "history", role: "log", tabindex: "0", "aria-label": t("conversations") },
    ui.olderButton,
    ui.messages,
  );
  ui.history.addEventListener("scroll", () => {
    if (ui.history.scrollTop < 40) loadOlder();
  });
  ui.composerArea = el("div", { class: "composer-area" });
  ui.placeholder = el("p", { class: "placeholder", text: t("pickConversation") });
  ui.conversationPane = el("main", { class: "conversation-pane" }, ui.placeholder);
  ui.status = el("p", { class: "live-state", role: "status" });
  ui.announcer = document.getElementById("announcer");
  ui.app.replaceChildren(ui.listPane, ui.conversationPane, ui.status);
  buildComposer();
  buildSearchDialog();
  buildReportDialog();
}

function liveState(now) {
  const wasLost = ui.status.dataset.state === "lost";
  ui.status.dataset.state = now;
  ui.status.textContent = now === "lost" ? t("liveLost") : "";
  // Back after a drop the stream could not resume (no change seen yet): read everything again.
  if (now === "live" && wasLost && state.live.lastId === null) refreshAll();
}

// --- the conversation list ---

async function loadConversations() {
  const { conversations } = await api.get("/embed/api/conversations");
  state.conversations = conversations;
  renderList();
}

function renderList() {
  if (!state.conversations.length) {
    ui.list.replaceChildren(el("li", { class: "empty", text: t("noConversations") }));
    return;
  }
  ui.list.replaceChildren(
    ...state.conversations.map((conversation) => {
      const other = conversation.other;
      const last = conversation.last_message;
      const role = other.role ? t(`roles.${other.role}`) : "";
      const current = conversation.id === state.current;
      const preview = last ? `${last.sender === state.me.user_id ? `${t("you")}: ` : ""}${last.preview}` : "";
      return el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: `conversation-item${current ? " current" : ""}${conversation.unread ? " has-unread" : ""}`,
            "aria-current": current ? "true" : null,
            "data-id": conversation.id,
            onclick: () => openConversation(conversation.id, { focus: true }),
          },
          avatar(other),
          el(
            "span",
            { class: "item-text" },
            el(
              "span",
              { class: "item-top" },
              el("span", { class: "name", text: other.display_name }),
              last ? el("time", { datetime: last.created_at, text: shortTime(last.created_at) }) : null,
            ),
            el(
              "span",
              { class: "item-bottom" },
              el("span", { class: "role", text: role }),
              conversation.state === "read_only" ? el("span", { class: "tag", text: t("readOnly") }) : null,
            ),
            el("span", { class: "preview", text: preview }),
          ),
          conversation.unread
            ? el(
                "span",
                { class: "badge", "aria-label": t("unread", { count: conversation.unread }) },
                String(conversation.unread),
              )
            : null,
        ),
      );
    }),
  );
}

// --- one conversation ---

async function openConversation(id, { focus }) {
  const switching = id !== state.current;
  state.current = id;
  if (switching) {
    state.messages = [];
    state.nextBefore = null;
    state.pending = [];
    state.editing = state.deleting = null;
  }
  history.replaceState(null, "", `/embed/conversations/${encodeURIComponent(id)}`);
  ui.app.classList.add("show-conversation");
  try {
    await refreshConversation(true);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
      state.current = null;
      ui.app.classList.remove("show-conversation");
      return;
    }
    throw error;
  }
  renderList();
  if (focus) {
    const box = ui.composer.isConnected ? ui.textarea : ui.title;
    box.focus();
  }
}

async function refreshConversation(scrollDown) {
  const id = state.current;
  const [detail, page] = await Promise.all([
    api.get(`/embed/api/conversations/${encodeURIComponent(id)}`),
    api.get(`/embed/api/conversations/${encodeURIComponent(id)}/messages?limit=${PAGE_SIZE}`),
  ]);
  if (id !== state.current) return;
  const nearBottom = ui.history.scrollHeight - ui.history.scrollTop - ui.history.clientHeight < 80;
  state.detail = detail;
  mergeMessages(page.messages);
  if (state.messages.length <= page.messages.length) state.nextBefore = page.next_before;
  renderConversation();
  if (scrollDown || nearBottom) ui.history.scrollTop = ui.history.scrollHeight;
  markRead();
}

function mergeMessages(fresh) {
  const byId = new Map(state.messages.map((m) => [m.id, m]));
  for (const message of fresh) byId.set(message.id, message);
  state.messages = [...byId.values()].sort((a, b) =>
    a.created_at === b.created_at ? 0 : a.created_at < b.created_at ? -1 : 1,
  );
  const known = new Set(state.messages.map((m) => m.client_message_id));
  state.pending = state.pending.filter((p) => !known.has(p.clientId) || p.status === "failed");
}

async function loadOlder() {
  if (!state.nextBefore || state.loadingOlder || !state.current) return;
  state.loadingOlder = true;
  ui.olderButton.textContent = t("olderLoading");
  const id = state.current;
  try {
    const page = await api.get(
      `/embed/api/conversations/${encodeURIComponent(id)}/messages?limit=${PAGE_SIZE}&before=${encodeURIComponent(state.nextBefore)}`,
    );
    if (id !== state.current) return;
    const height = ui.history.scrollHeight;
    mergeMessages(page.messages);
    state.nextBefore = page.next_before;
    renderMessages();
    ui.history.scrollTop += ui.history.scrollHeight - height; // keep what was on screen in place
  } finally {
    state.loadingOlder = false;
    ui.olderButton.textContent = t("loadOlder");
  }
}

async function markRead() {
  const newest = [...state.messages].reverse().find((m) => m.sender !== state.me.user_id);
  if (!newest || newest.read || document.visibilityState === "hidden") return;
  newest.read = true;
  try {
    await api.post(`/embed/api/conversations/${encodeURIComponent(state.current)}/read`, {
      up_to: newest.id,
    });
  } catch {
    newest.read = false;
  }
  const row = state.conversations.find((c) => c.id === state.current);
  if (row && row.unread) {
    row.unread = 0;
    renderList();
  }
}

function renderConversation() {
  const { conversation, read_only_reason: reason } = state.detail;
  const other = conversation.other;
  ui.title = el("h2", { tabindex: "-1", text: other.display_name });
  const hours = other.availability;
  ui.header.replaceChildren(
    el(
      "button",
      { type: "button", class: "back", onclick: closeConversation, "aria-label": t("back") },
      "‹",
    ),
    avatar(other, "large"),
    el(
      "div",
      { class: "header-text" },
      ui.title,
      el("p", { class: "role", text: other.role ? t(`roles.${other.role}`) : "" }),
      hours
        ? el(
            "p",
            { class: "availability" },
            el("span", { class: "visually-hidden", text: `${t("availability")}: ` }),
            [hours.hours, hours.note].filter(Boolean).join(" · "),
          )
        : null,
    ),
  );
  ui.history.setAttribute("aria-label", other.display_name);
  if (!ui.header.isConnected) {
    ui.conversationPane.replaceChildren(ui.header, ui.history, ui.composerArea);
  }
  if (conversation.state === "read_only") {
    ui.composerArea.replaceChildren(
      el("p", { class: "read-only", role: "note", text: t("readOnlyComposer", { reason: reason || "" }) }),
    );
  } else if (!ui.composer.isConnected) {
    ui.composerArea.replaceChildren(ui.composer, ui.guideline);
  }
  renderMessages();
}

function closeConversation() {
  const id = state.current;
  ui.app.classList.remove("show-conversation");
  history.replaceState(null, "", "/embed/");
  const item = ui.list.querySelector(`[data-id="${CSS.escape(id)}"]`);
  if (item) item.focus();
}

function renderMessages() {
  const notices = state.detail ? state.detail.notices : [];
  const rows = [
    ...state.messages.map((m) => ({ at: m.created_at, node: () => messageItem(m) })),
    ...notices.map((n) => ({ at: n.created_at, node: () => noticeItem(n) })),
  ].sort((a, b) => (a.at === b.at ? 0 : a.at < b.at ? -1 : 1));
  const items = rows.map((row) => row.node());
  for (const pending of state.pending) items.push(pendingItem(pending));
  if (!items.length) items.push(el("li", { class: "empty", text: t("noMessagesYet") }));
  const focused = document.activeElement && document.activeElement.dataset.focusKey;
  ui.messages.replaceChildren(...items);
  ui.olderButton.hidden = !state.nextBefore;
  if (focused) {
    const again = ui.messages.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function noticeItem(notice) {
  return el(
    "li",
    { class: "notice", role: "note" },
    el("span", { class: "notice-label", text: t("automaticNotice") }),
    el("span", { text: notice.body }),
  );
}

function messageItem(message) {
  const mine = message.sender === state.me.user_id;
  const other = state.detail.conversation.other;
  const body = message.deleted
    ? el("p", { class: "deleted", text: t("deleted") })
    : state.editing === message.id
      ? editForm(message)
      : el("div", { class: "body" }, message.html ? safeHtml(message.html) : plainText(message.body));
  const attachment =
    message.attachment && !message.deleted
      ? el(
          "button",
          {
            type: "button",
            class: "link attachment",
            onclick: () => download(message),
            "data-focus-key": `file-${message.id}`,
          },
          `📎 ${t("attachment", { name: message.attachment.name })}`,
        )
      : null;
  return el(
    "li",
    { class: `message ${mine ? "mine" : "theirs"}`, "data-id": message.id },
    el(
      "p",
      { class: "meta" },
      el("span", { class: "sender", text: mine ? t("you") : other.display_name }),
      " ",
      el("time", { datetime: message.created_at, title: fullTime(message.created_at), text: shortTime(message.created_at) }),
      message.edited_at && !message.deleted ? el("span", { class: "edited", text: ` · ${t("edited")}` }) : null,
    ),
    body,
    attachment,
    mine ? ownStatus(message) : null,
    message.deleted ? null : mine ? ownActions(message) : reportAction(message),
  );
}

function plainText(body) {
  const fragment = document.createDocumentFragment();
  String(body || "")
    .split("\n")
    .forEach((line, index) => {
      if (index) fragment.append(el("br"));
      fragment.append(document.createTextNode(line));
    });
  return el("p", {}, fragment);
}

function ownStatus(message) {
  if (message.deleted) return null;
  const words =
    message.status === "queued"
      ? t("queued")
      : message.status === "failed"
        ? t("failed")
        : message.seen
          ? t("seen")
          : t("sent");
  return el("p", { class: `status status-${message.status}`, text: words });
}

function ownActions(message) {
  if (state.deleting === message.id) {
    return el(
      "div",
      { class: "actions confirm", role: "group", "aria-label": t("confirmDelete") },
      el("span", { text: t("confirmDelete") }),
      el("button", { type: "button", class: "danger", "data-focus-key": `confirm-${message.id}`, onclick: () => remove(message) }, t("delete")),
      el("button", { type: "button", onclick: () => { state.deleting = null; renderMessages(); } }, t("cancel")),
    );
  }
  if (state.editing === message.id) return null;
  const actions = [];
  if (!message.attachment && state.detail.conversation.state === "active") {
    actions.push(
      el("button", { type: "button", class: "link", "data-focus-key": `edit-${message.id}`, onclick: () => startEdit(message) }, t("edit")),
    );
  }
  actions.push(
    el("button", { type: "button", class: "link", "data-focus-key": `delete-${message.id}`, onclick: () => { state.deleting = message.id; renderMessages(); focusKey(`confirm-${message.id}`); } }, t("delete")),
  );
  return el("div", { class: "actions" }, ...actions);
}

function reportAction(message) {
  if (message.reported) return el("div", { class: "actions" }, el("span", { class: "reported", text: t("reported") }));
  return el(
    "div",
    { class: "actions" },
    el("button", { type: "button", class: "link", "data-focus-key": `report-${message.id}`, onclick: () => openReport(message) }, t("report")),
  );
}

function focusKey(key) {
  const node = ui.messages.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
  if (node) node.focus();
}

function pendingItem(pending) {
  const status =
    pending.status === "failed"
      ? el(
          "p",
          { class: "status status-failed", role: "alert" },
          `${t("failed")}: ${pending.error} `,
          el("button", { type: "button", class: "link", "data-focus-key": `retry-${pending.clientId}`, onclick: () => send(pending) }, t("retry")),
        )
      : el("p", { class: "status status-sending", text: t("sending") });
  return el(
    "li",
    { class: "message mine pending", "data-client-id": pending.clientId },
    el("p", { class: "meta" }, el("span", { class: "sender", text: t("you") })),
    el("div", { class: "body" }, plainText(pending.body)),
    status,
  );
}

// --- writing ---

function buildComposer() {
  ui.textarea = el("textarea", {
    id: "composer-text",
    rows: "2",
    placeholder: t("composerPlaceholder"),
    "aria-describedby": "guideline",
  });
  ui.textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });
  ui.composer = el(
    "form",
    { class: "composer", onsubmit: (event) => { event.preventDefault(); submitComposer(); } },
    el("label", { for: "composer-text", class: "visually-hidden", text: t("composerLabel") }),
    ui.textarea,
    el("button", { type: "submit", class: "primary" }, t("send")),
  );
  ui.guideline = el("p", { id: "guideline", class: "guideline", text: t("guideline") });
}

function submitComposer() {
  const body = ui.textarea.value;
  if (!body.trim()) return;
  ui.textarea.value = "";
  const pending = { clientId: newClientId(), body, status: "sending", error: null };
  state.pending.push(pending);
  send(pending);
}

function newClientId() {
  if (crypto.randomUUID) return `page-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `page-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function send(pending) {
  const conversationId = state.current;
  pending.status = "sending";
  renderMessages();
  ui.history.scrollTop = ui.history.scrollHeight;
  try {
    // The same client_message_id on a retry: the bridge answers the stored message, never a second.
    const message = await api.post(`/embed/api/conversations/${encodeURIComponent(conversationId)}/messages`, {
      body: pending.body,
      client_message_id: pending.clientId,
    });
    if (conversationId !== state.current) return;
    state.pending = state.pending.filter((p) => p !== pending);
    mergeMessages([{ ...message, read: true, seen: false, reported: false }]);
    if (message.contact_info) announce(message.contact_info.message);
  } catch (error) {
    pending.status = "failed";
    pending.error = describeError(error);
    // A refusal for good (not a lost connection) shows the words; the typed text stays to copy.
  }
  if (conversationId === state.current) {
    renderMessages();
    ui.history.scrollTop = ui.history.scrollHeight;
  }
}

function startEdit(message) {
  state.editing = message.id;
  state.deleting = null;
  renderMessages();
  const box = ui.messages.querySelector(`[data-id="${CSS.escape(message.id)}"] textarea`);
  if (box) {
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }
}

function editForm(message) {
  const id = `edit-text-${message.id}`;
  const box = el("textarea", { id, rows: "2", "data-focus-key": `editing-${message.id}` });
  box.value = message.body || "";
  const error = el("p", { class: "status status-failed", role: "alert", hidden: true });
  const save = async () => {
    const body = box.value;
    if (!body.trim()) return;
    try {
      const edited = await api.call("PATCH", `/embed/api/messages/${encodeURIComponent(message.id)}`, { body });
      state.editing = null;
      mergeMessages([{ ...message, ...edited }]);
      renderMessages();
      focusKey(`edit-${message.id}`);
    } catch (failure) {
      error.hidden = false;
      error.textContent = describeError(failure);
    }
  };
  const cancel = () => {
    state.editing = null;
    renderMessages();
    focusKey(`edit-${message.id}`);
  };
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      save();
    } else if (event.key === "Escape") {
      cancel();
    }
  });
  return el(
    "form",
    { class: "edit-form", onsubmit: (event) => { event.preventDefault(); save(); } },
    el("label", { for: id, class: "visually-hidden", text: t("editMessage") }),
    box,
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, t("save")), el("button", { type: "button", onclick: cancel }, t("cancel"))),
    error,
  );
}

async function remove(message) {
  state.deleting = null;
  try {
    const deleted = await api.call("DELETE", `/embed/api/messages/${encodeURIComponent(message.id)}`);
    mergeMessages([{ ...message, ...deleted }]);
  } catch (error) {
    announce(describeError(error));
  }
  renderMessages();
  ui.textarea.focus();
}

async function download(message) {
  try {
    const blob = await api.download(message.id);
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: message.attachment.name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    announce(describeError(error));
  }
}

// --- New Message ---

function buildSearchDialog() {
  ui.searchInput = el("input", { id: "search-input", type: "search", autocomplete: "off", placeholder: t("searchPlaceholder") });
  ui.searchResults = el("ul", { class: "search-results", id: "search-results" });
  ui.searchHint = el("p", { class: "hint", role: "status" });
  ui.search = el(
    "dialog",
    { class: "dialog", "aria-labelledby": "search-title" },
    el(
      "div",
      { class: "dialog-header" },
      el("h2", { id: "search-title", text: t("searchTitle") }),
      el("button", { type: "button", class: "link", onclick: () => ui.search.close() }, t("close")),
    ),
    el("label", { for: "search-input", text: t("searchLabel") }),
    ui.searchInput,
    ui.searchHint,
    ui.searchResults,
  );
  let timer = null;
  ui.searchInput.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(runSearch, 150);
  });
  ui.searchInput.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      const first = ui.searchResults.querySelector("button");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  ui.searchResults.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = [...ui.searchResults.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    event.preventDefault();
    const next = at + (event.key === "ArrowDown" ? 1 : -1);
    (next < 0 ? ui.searchInput : buttons[Math.min(next, buttons.length - 1)]).focus();
  });
  ui.search.addEventListener("close", () => ui.newButton.focus());
  document.body.append(ui.search);
}

function openSearch() {
  ui.searchInput.value = "";
  ui.search.showModal();
  ui.searchInput.focus();
  runSearch();
}

async function runSearch() {
  const query = ui.searchInput.value.trim();
  const { contacts } = await api.get(`/embed/api/contacts?limit=20&q=${encodeURIComponent(query)}`);
  if (query !== ui.searchInput.value.trim()) return; // a newer search is on its way
  const shown = [...ui.searchResults.querySelectorAll("button")].map((b) => b.dataset.userId);
  // The same people again: keep the list as it is, and the focus where the person put it.
  if (shown.join("\n") !== contacts.map((c) => c.user_id).join("\n")) renderContacts(contacts);
  const noTutor = state.me.role === "student" && !contacts.some((c) => c.role === "tutor");
  const words = [contacts.length ? "" : t("searchNone"), noTutor ? t("noTutorHint") : ""];
  ui.searchHint.textContent = words.filter(Boolean).join(" ");
}

function renderContacts(contacts) {
  const focused = ui.searchResults.contains(document.activeElement)
    ? document.activeElement.dataset.userId
    : null;
  ui.searchResults.replaceChildren(
    ...contacts.map((contact) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "contact",
            "data-user-id": contact.user_id,
            onclick: () => startWith(contact),
          },
          avatar(contact),
          el(
            "span",
            { class: "item-text" },
            el("span", { class: "name", text: contact.display_name }),
            el("span", { class: "reason", text: contact.reason }),
            contact.availability && contact.availability.hours
              ? el("span", { class: "availability", text: contact.availability.hours })
              : null,
          ),
        ),
      ),
    ),
  );
  if (focused) {
    const again = ui.searchResults.querySelector(`[data-user-id="${CSS.escape(focused)}"]`);
    (again || ui.searchInput).focus();
  }
}

async function startWith(contact) {
  try {
    const conversation = await api.post("/embed/api/conversations", { recipient: contact.user_id });
    ui.search.close();
    await loadConversations();
    await openConversation(conversation.id, { focus: true });
  } catch (error) {
    ui.searchHint.textContent = describeError(error);
  }
}

// --- reports ---

function buildReportDialog() {
  ui.reportCategory = el(
    "select",
    { id: "report-category" },
    ...Object.entries(STRINGS.categories).map(([value, words]) => el("option", { value }, words)),
  );
  ui.reportReason = el("textarea", { id: "report-reason", rows: "3", required: true, maxlength: "2000" });
  ui.reportQuote = el("blockquote", { class: "quote" });
  ui.reportError = el("p", { class: "status status-failed", role: "alert", hidden: true });
  ui.report = el(
    "dialog",
    { class: "dialog", "aria-labelledby": "report-title" },
    el(
      "form",
      { onsubmit: (event) => { event.preventDefault(); fileReport(); } },
      el("h2", { id: "report-title", text: t("reportTitle") }),
      ui.reportQuote,
      el("label", { for: "report-category", text: t("reportCategory") }),
      ui.reportCategory,
      el("label", { for: "report-reason", text: t("reportReason") }),
      ui.reportReason,
      ui.reportError,
      el(
        "div",
        { class: "actions" },
        el("button", { type: "submit", class: "primary" }, t("reportSend")),
        el("button", { type: "button", onclick: () => ui.report.close() }, t("cancel")),
      ),
    ),
  );
  ui.report.addEventListener("close", () => {
    if (state.reporting) focusKey(`report-${state.reporting.id}`);
    state.reporting = null;
  });
  document.body.append(ui.report);
}

function openReport(message) {
  state.reporting = message;
  ui.reportQuote.textContent = message.body || "";
  ui.reportCategory.value = "other";
  ui.reportReason.value = "";
  ui.reportError.hidden = true;
  ui.report.showModal();
  ui.reportCategory.focus();
}

async function fileReport() {
  const message = state.reporting;
  if (!message || !ui.reportReason.value.trim()) return;
  try {
    await api.post(`/embed/api/messages/${encodeURIComponent(message.id)}/reports`, {
      category: ui.reportCategory.value,
      reason: ui.reportReason.value,
    });
  } catch (error) {
    ui.reportError.hidden = false;
    ui.reportError.textContent = describeError(error);
    return;
  }
  message.reported = true;
  state.reporting = null;
  ui.report.close();
  renderMessages();
  announce(t("reportThanks"));
}

// --- live ---

function changed(change) {
  if (change.conversation_id) state.dirty.add(change.conversation_id);
  if (change.type === "message.created" && change.conversation_id !== state.current) {
    const row = state.conversations.find((c) => c.id === change.conversation_id);
    if (row) announce(t("newMessageFrom", { name: row.other.display_name }));
  }
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshDirty, REFRESH_DELAY_MS);
}

async function refreshDirty() {
  const dirty = state.dirty;
  state.dirty = new Set();
  await loadConversations();
  if (state.current && dirty.has(state.current)) await refreshConversation(false);
}

async function refreshAll() {
  await loadConversations();
  if (state.current) await refreshConversation(false);
}

// --- words ---

function describeError(error) {
  if (!(error instanceof ApiError)) return t("errors.unknown", { message: String(error) });
  if (error.code in STRINGS.errors) return t(`errors.${error.code}`, { message: error.message });
  return error.message || t("errors.unknown", { message: error.code });
}

function announce(words) {
  ui.announcer.textContent = "";
  setTimeout(() => {
    ui.announcer.textContent = words;
  }, 30);
}

start().catch((error) => showGone("error", error));
