// The semsearch page: search, read, "similar", a tray of liked and disliked papers, tags kept by
// the server (for and against, one click on a result), recommendations for a tag, the inbox,
// the collection's near-duplicates, its map (map.js).
// Plain DOM, no framework and nothing fetched from elsewhere: it works offline. Text from the
// index is always set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const RESULTS = 20;
const TYPING_PAUSE_MS = 350;
const picks = { liked: new Map(), disliked: new Map() };  // id -> title
const tagged = new Map();  // id -> "for" | "against", in the current tag
let asked = 0;           // the number of the latest request: older answers are dropped
let typingTimer = null;
let shownAs = "search";  // what the results are: "search", "inbox", "recommend", "duplicates"

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

async function answer(what, request, kind = "search", summary = null) {
  const mine = ++asked;
  say(`Searching ${what}…`);
  try {
    const body = await request();
    if (mine !== asked) return;
    shownAs = kind;
    show(body.results);
    say(summary ? summary(body)
      : body.results.length ? `${body.results.length} papers ${what}` : `No papers ${what}`);
  } catch (error) {
    if (mine !== asked) return;
    $("results").replaceChildren();
    say(error.message, true);
  }
}

// -- tags: kept by the server, by paper id; the result buttons use the tag named in the panel
function currentTag() { return $("tag-name").value.trim(); }

async function post(path, body) {
  return call(path, { method: "POST", headers: { "content-type": "application/json" },
                      body: JSON.stringify(body) });
}

async function loadTags() {
  const { tags } = await call("/api/tags");
  $("tags").replaceChildren(...tags.map((tag) => element("li", {},
    button(tag.name, "tag-link", () => { $("tag-name").value = tag.name; loadMarks().then(
      () => recommendFor(tag.name)); }, { ariaCurrent: String(tag.name === currentTag()) }),
    element("span", { className: "count", title: "papers for it · against it" },
            `${tag.papers} · ${tag.against}`))));
  $("tag-names").replaceChildren(...tags.map((tag) => element("option", { value: tag.name })));
  $("tags-hint").hidden = tags.length > 0;
  if (!currentTag() && tags.length) $("tag-name").value = tags[0].name;
  for (const link of document.querySelectorAll("#tags .tag-link")) {
    link.setAttribute("aria-current", String(link.textContent === currentTag()));
  }
}

async function loadMarks() {
  tagged.clear();
  const name = currentTag();
  if (name) {
    try {
      const { papers } = await call(`/api/tags/${encodeURIComponent(name)}`);
      for (const paper of papers) tagged.set(paper.id, paper.verdict);
    } catch (error) { /* a tag not made yet has no papers */ }
  }
  drawMarks();
  await loadTags();
}

function drawMarks() {
  for (const made of document.querySelectorAll("button[data-verdict]")) {
    const id = made.closest(".result").dataset.id;
    made.setAttribute("aria-pressed", String(tagged.get(id) === made.dataset.verdict));
  }
}

async function mark(id, verdict) {
  const name = currentTag();
  if (!name) { say("Name a tag in the panel first (type one to make it).", true); $("tag-name").focus(); return; }
  const path = `/api/tags/${encodeURIComponent(name)}`;
  try {
    if (tagged.get(id) === verdict) {
      await post(`${path}/untag`, { papers: [id] });
      tagged.delete(id);
    } else {
      await post(path, { papers: [id], against: verdict === "against" });
      tagged.set(id, verdict);
    }
    drawMarks();
    await loadTags();
  } catch (error) { say(error.message, true); }
}

function recommendFor(name) {
  const params = new URLSearchParams({ k: RESULTS });
  if (name) params.append("tag", name);
  answer(`for “${name}”`, () => call(`/api/recommend?${params}`), "recommend",
         (body) => `${body.results.length} papers recommended for “${name}”`);
}

function openInbox() {
  answer("in your inbox", () => call(`/api/inbox?k=${RESULTS}`), "inbox", (body) =>
    `${body.new} new since ${body.since || "the start"}; ${body.results.length} shown` +
    (body.ranked_for_tags ? ", ranked for your tags" : " (tag papers to have them ranked)"));
}

async function openDuplicates() {
  const mine = ++asked;
  say("Looking for papers held twice (a scan of the whole collection)…");
  try {
    const body = await call("/api/duplicates");
    if (mine !== asked) return;
    shownAs = "duplicates";
    $("results").replaceChildren(...body.groups.map(duplicateGroup));
    const count = body.groups.length;
    say(count ? `${count} group${count === 1 ? "" : "s"} of papers that are one paper`
              : "No near-duplicates");
  } catch (error) {
    if (mine !== asked) return;
    $("results").replaceChildren();
    say(error.message, true);
  }
}

function duplicateGroup(group) {
  const papers = group.ids.map((id, at) => element("li", {},
    element("button", { type: "button", className: "linkish", onclick: () => showPaper(id) },
            group.titles[at] || id),
    ` ${id}` + (at === 0 ? " (first in the index)" : "")));
  return element("li", { className: "result duplicates" },
    element("p", { className: "meta" }, `lowest cosine ${group.similarity.toFixed(3)}`),
    element("ul", {}, ...papers));
}

function showPaper(id) {
  const path = id.split("/").map(encodeURIComponent).join("/");
  answer(`: ${id}`, async () => ({ results: [await call(`/api/papers/${path}`)] }), "search",
         () => `The paper ${id}`);
}

async function markRead(id, item) {
  try {
    await post("/api/seen", { papers: [id] });
    item.remove();
    say(`Marked read; ${$("results").children.length} left`);
  } catch (error) { say(error.message, true); }
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
  markOnMap();
}

// -- the map: the papers shown and the tag's papers marked on it ---------------------------
let theMap = null;

async function toggleMap() {
  const panel = $("map-panel"), opening = panel.hidden;
  panel.hidden = !opening;
  $("map-button").setAttribute("aria-expanded", String(opening));
  if (!opening || theMap) { if (opening) markOnMap(); return; }
  say("Opening the map…");
  try {
    theMap = window.semsearchMap = await SemsearchMap.served($("map"), showPaper);
    const meta = theMap.meta;
    say(`The map of ${meta.count.toLocaleString()} papers in ${meta.regions.length} regions`);
    markOnMap();
  } catch (error) {
    panel.hidden = true;
    $("map-button").setAttribute("aria-expanded", "false");
    say(error.message, true);
  }
}

function markOnMap() {
  if (!theMap || $("map-panel").hidden) return;
  const shown = [...$("results").querySelectorAll(":scope > li[data-id]")]
    .map((item) => item.dataset.id);
  const ofTag = [...tagged.entries()].filter(([, verdict]) => verdict === "for")
    .map(([id]) => id);
  theMap.locate(shown, ofTag).catch((error) => say(error.message, true));
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
  meta.push(row.id);
  if (typeof row.score === "number") meta.push(`score ${row.score.toFixed(3)}`);
  const item = element("li", { className: "result" },
    element("h3", {}, title), element("p", { className: "meta" }, meta.join(" · ")));
  item.dataset.id = row.id;
  if (row.reason && row.reason.tag) {
    item.append(element("p", { className: "reason" },
      `for “${row.reason.tag}”, like “${row.reason.closest.title}” (${row.reason.similarity.toFixed(2)})`));
  }
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
  const actions = element("div", { className: "actions" },
    toggle,
    button("Similar", "similar", () => like([row.id], [], `like “${name}”`)),
    pickButton("Like", "like", "liked", row.id, name),
    pickButton("Not this", "dislike", "disliked", row.id, name),
    verdictButton("For tag", "for", row.id), verdictButton("Against tag", "against", row.id));
  if (shownAs === "inbox") actions.append(button("Mark read", "read", () => markRead(row.id, item)));
  item.append(actions, abstract);
  return item;
}

function verdictButton(label, verdict, id) {
  const made = button(label, verdict, () => mark(id, verdict),
                      { title: `mark it ${verdict} the tag named in the panel` });
  made.dataset.verdict = verdict;
  made.setAttribute("aria-pressed", String(tagged.get(id) === verdict));
  return made;
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
  await loadTags();   // names the latest tag as the one the buttons use, if none is named
  await loadMarks();
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
$("inbox").addEventListener("click", openInbox);
$("duplicates").addEventListener("click", openDuplicates);
$("map-button").addEventListener("click", toggleMap);
$("new-tag").addEventListener("submit", (event) => { event.preventDefault(); loadMarks(); });
$("tag-name").addEventListener("change", () => loadMarks());
$("more").addEventListener("click", () => like([...picks.liked.keys()], [...picks.disliked.keys()],
  `like your ${picks.liked.size} liked paper${picks.liked.size > 1 ? "s" : ""}`));
$("clear").addEventListener("click", () => { picks.liked.clear(); picks.disliked.clear(); drawTray(); });
document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "/" && !typing) { event.preventDefault(); $("q").focus(); $("q").select(); }
});
setUp().catch((error) => say(error.message, true));
