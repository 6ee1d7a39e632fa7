// The semsearch page: search, read, "similar", and a tray of liked and disliked papers.
// Plain DOM, no framework and nothing fetched from elsewhere: it works offline. Text from the
// index is always set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const RESULTS = 20;
const TYPING_PAUSE_MS = 350;
const picks = { liked: new Map(), disliked: new Map() };  // id -> title
let asked = 0;           // the number of the latest request: older answers are dropped
let typingTimer = null;

function filters() {
  const from = $("year-from").value.trim(), to = $("year-to").value.trim();
  const chosen = {};
  if (from || to) chosen.year = from === to ? from : `${from}..${to}`;
  if ($("category").value) chosen.category = [$("category").value];
  if ($("author").value.trim()) chosen.author = [$("author").value.trim()];
  return chosen;
}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function call(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

async function answer(what, request) {
  const mine = ++asked;
  say(`Searching ${what}…`);
  try {
    const body = await request();
    if (mine !== asked) return;
    show(body.results);
    say(body.results.length ? `${body.results.length} papers ${what}` : `No papers ${what}`);
  } catch (error) {
    if (mine !== asked) return;
    $("results").replaceChildren();
    say(error.message, true);
  }
}

function search() {
  const q = $("q").value.trim();
  if (!q) return;
  const params = new URLSearchParams({ q, k: RESULTS, mode: $("mode").value });
  if ($("explain").checked) params.set("explain", "true");
  for (const [name, value] of Object.entries(filters())) {
    for (const one of [].concat(value)) params.append(name, one);
  }
  history.replaceState(null, "", `?q=${encodeURIComponent(q)}`);
  answer(`for “${q}”`, () => call(`/api/search?${params}`));
}

function like(ids, unlike, what) {
  const body = { ids, not: unlike, k: RESULTS, mode: $("mode").value,
                 explain: $("explain").checked, ...filters() };
  answer(what, () => call("/api/like", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }));
}

function show(rows) {
  $("results").replaceChildren(...rows.map(resultItem));
}

function element(tag, properties = {}, ...children) {
  const made = Object.assign(document.createElement(tag), properties);
  made.append(...children);
  return made;
}

function button(label, className, onClick, extra = {}) {
  return element("button", { type: "button", className, onclick: onClick, ...extra }, label);
}

function resultItem(row) {
  const title = row.link
    ? element("a", { href: row.link, target: "_blank", rel: "noopener" }, row.title || row.id)
    : document.createTextNode(row.title || row.id);
  const meta = [];
  if (row.authors && row.authors.length) {
    meta.push(row.authors.slice(0, 4).join(", ") + (row.authors.length > 4 ? " et al." : ""));
  }
  if (row.year) meta.push(String(row.year));
  if (row.categories && row.categories.length) meta.push(row.categories.join(" "));
  meta.push(row.id, `score ${row.score.toFixed(3)}`);
  const item = element("li", { className: "result" },
    element("h3", {}, title), element("p", { className: "meta" }, meta.join(" · ")));
  item.dataset.id = row.id;
  if (row.explain) {
    item.append(element("p", { className: "why", title: "the sentence closest to the query" },
                        ...marked(row.explain.sentence, row.explain.matched_terms)));
  }
  const abstract = element("div", { className: "abstract", hidden: true },
    ...highlighted(row.abstract || "(no abstract)", row.explain));
  const toggle = button("Abstract", "toggle", () => {
    abstract.hidden = !abstract.hidden;
    toggle.setAttribute("aria-expanded", String(!abstract.hidden));
  });
  toggle.setAttribute("aria-expanded", "false");
  const name = row.title || row.id;
  item.append(element("div", { className: "actions" },
    toggle,
    button("Similar", "similar", () => like([row.id], [], `like “${name}”`)),
    pickButton("Like", "like", "liked", row.id, name),
    pickButton("Not this", "dislike", "disliked", row.id, name)), abstract);
  return item;
}

function pickButton(label, className, side, id, title) {
  const pressed = () => String(picks[side].has(id));
  const made = button(label, className, () => {
    const other = side === "liked" ? "disliked" : "liked";
    if (picks[side].has(id)) picks[side].delete(id);
    else { picks[side].set(id, title); picks[other].delete(id); }
    drawTray();
  });
  made.setAttribute("aria-pressed", pressed());
  made.dataset.side = side;
  return made;
}

// The abstract, its sentence closest to the query marked, and the query's words in it.
function highlighted(text, explanation) {
  if (!explanation) return [text];
  const at = text.indexOf(explanation.sentence);
  if (at < 0) return marked(text, explanation.matched_terms);
  const sentence = element("mark", { className: "near" },
    ...marked(explanation.sentence, explanation.matched_terms));
  return [...marked(text.slice(0, at), explanation.matched_terms), sentence,
          ...marked(text.slice(at + explanation.sentence.length), explanation.matched_terms)];
}

function marked(text, terms) {
  const words = (terms || []).filter(Boolean).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!words.length) return [text];
  // a matched term is a word's stem: mark the whole word that starts with it
  const pattern = new RegExp(`\\b(?:${words.join("|")})\\w*`, "giu");
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parts.push(text.slice(last, match.index), element("mark", {}, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function drawTray() {
  for (const side of ["liked", "disliked"]) {
    $(side).replaceChildren(...[...picks[side]].map(([id, title]) => element("li", {},
      title, button("×", "unpick", () => { picks[side].delete(id); drawTray(); },
                    { title: "take it out", ariaLabel: `take out ${title}` }))));
  }
  $("more").disabled = picks.liked.size === 0;
  $("clear").disabled = picks.liked.size + picks.disliked.size === 0;
  $("tray-hint").hidden = picks.liked.size + picks.disliked.size > 0;
  for (const made of document.querySelectorAll("button[data-side]")) {
    const id = made.closest(".result").dataset.id;
    made.setAttribute("aria-pressed", String(picks[made.dataset.side].has(id)));
  }
}

async function setUp() {
  const [schema, facets, info] = await Promise.all([
    call("/openapi.json"), call("/api/facets?kind=year&kind=category"), call("/api/info")]);
  const modes = schema.components.schemas.LikeRequest.properties.mode;
  for (const mode of modes.enum) {
    $("mode").append(element("option", { value: mode, selected: mode === modes.default }, mode));
  }
  for (const { value, count } of facets.category) {
    $("category").append(element("option", { value }, `${value} (${count})`));
  }
  if (facets.year.length) {
    $("year-from").placeholder = facets.year[0].value;
    $("year-to").placeholder = facets.year[facets.year.length - 1].value;
  }
  $("about").textContent = `${info.count.toLocaleString()} papers`;
  const q = new URLSearchParams(location.search).get("q");
  if (q) { $("q").value = q; search(); }
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(typingTimer);
  search();
});
$("q").addEventListener("input", () => {
  clearTimeout(typingTimer);
  if ($("q").value.trim().length >= 3) typingTimer = setTimeout(search, TYPING_PAUSE_MS);
});
for (const id of ["year-from", "year-to", "category", "mode", "explain"]) {
  $(id).addEventListener("change", search);
}
$("author").addEventListener("change", search);
$("more").addEventListener("click", () => like([...picks.liked.keys()], [...picks.disliked.keys()],
  `like your ${picks.liked.size} liked paper${picks.liked.size > 1 ? "s" : ""}`));
$("clear").addEventListener("click", () => { picks.liked.clear(); picks.disliked.clear(); drawTray(); });
document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "/" && !typing) { event.preventDefault(); $("q").focus(); $("q").select(); }
});
setUp().catch((error) => say(error.message, true));
