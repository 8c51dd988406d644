// Building the page's elements safely: text always goes in as text, and message HTML (already
// sanitised by the bridge) is rebuilt element by element from an allow-list, never assigned as
// markup, so nothing a Matrix client sends can run or navigate.

const ALLOWED = new Set([
  "p", "br", "strong", "b", "em", "i", "u", "s", "del", "code", "pre", "blockquote",
  "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6", "span", "sub", "sup", "hr",
]);
const HEADINGS = new Set(["h1", "h2", "h3", "h4", "h5", "h6"]);
const SAFE_LINK = /^(https?:|mailto:)/i;

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** The message's HTML as safe elements. */
export function safeHtml(html) {
  const parsed = new DOMParser().parseFromString(String(html), "text/html");
  const fragment = document.createDocumentFragment();
  for (const child of [...parsed.body.childNodes]) copyInto(fragment, child);
  return fragment;
}

function copyInto(parent, node) {
  if (node.nodeType === Node.TEXT_NODE) {
    parent.append(document.createTextNode(node.textContent));
    return;
  }
  if (node.nodeType !== Node.ELEMENT_NODE) return;
  const tag = node.tagName.toLowerCase();
  if (tag === "mx-reply" || tag === "script" || tag === "style" || tag === "template") return;
  if (!ALLOWED.has(tag)) {
    for (const child of [...node.childNodes]) copyInto(parent, child);
    return;
  }
  // Headings inside a message are shown as bold text: they must not break the page's outline.
  const copy = document.createElement(HEADINGS.has(tag) ? "strong" : tag);
  if (tag === "a") {
    const href = (node.getAttribute("href") || "").trim();
    if (SAFE_LINK.test(href)) {
      copy.setAttribute("href", href);
      copy.setAttribute("target", "_blank");
      copy.setAttribute("rel", "noopener noreferrer nofollow");
    }
  }
  for (const child of [...node.childNodes]) copyInto(copy, child);
  parent.append(copy);
}

/** An avatar: the photo when there is one, otherwise the initials. */
export function avatar(person, size = "normal") {
  const classes = `avatar avatar-${size}`;
  if (person.avatar_url && /^https?:/i.test(person.avatar_url)) {
    return el("img", { class: classes, src: person.avatar_url, alt: "" });
  }
  return el("span", { class: `${classes} initials`, "aria-hidden": "true" }, person.initials || "?");
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const DAY = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A short time for lists: the clock today, the date before. */
export function shortTime(iso) {
  const when = new Date(iso);
  const now = new Date();
  return when.toDateString() === now.toDateString() ? TIME.format(when) : DAY.format(when);
}

/** The full date and time, for a `<time>`'s title. */
export function fullTime(iso) {
  return FULL.format(new Date(iso));
}
