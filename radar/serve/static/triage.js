// RADAR triage page: plain JS, no build step, nothing from the network.
// Every piece of data reaches the page as text (textContent / text nodes), never as HTML.
"use strict";

const API = "/triage/api";
const PAGE = 50;
const state = { offset: 0, goffset: 0, facets: null, effect: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

function message(text) { $("message").textContent = text || ""; }

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin" }, options || {});
  opts.headers = Object.assign({ "X-Radar-Triage": "1" }, opts.headers || {});
  let waited = false;
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(API + path, opts);
    if (response.status === 401) { window.location.reload(); throw new Error("token needed"); }
    if (response.status === 503 && attempt < 600) {
      const body = await response.json().catch(() => ({}));
      message(body.detail || "the server is busy; retrying");
      waited = true;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    const body = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      throw new Error(`${response.status}: ${detail}`);
    }
    if (waited) message("");
    return body;
  }
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string") return value;          // "Infinity"
  return Number(value).toPrecision(digits || 4);
}

function sevBadge(severity) {
  return el("span", { class: `sev sev-${severity || "none"}` }, severity || "flagged");
}

function verdictBadge(verdict) {
  if (!verdict) return el("span", { class: "muted" }, "–");
  const word = verdict.verdict === "unsure" ? "not sure" : verdict.verdict;
  return el("span", { class: `verdict verdict-${verdict.verdict}`,
    title: `${verdict.who || "someone"} at ${verdict.when}` }, word);
}

// ---------------------------------------------------------------- filters
function filterParams() {
  const params = new URLSearchParams();
  for (const name of ["service", "day", "severity"]) {
    const value = $(`f-${name}`).value;
    if (value) params.append(name, value);
  }
  const agreement = $("f-agreement").value;
  if (agreement && agreement !== "0") params.set("agreement", agreement);
  if ($("f-flagged").value !== "yes") params.set("flagged", $("f-flagged").value);
  return params;
}

function filterBody() {
  const body = {};
  for (const name of ["service", "day", "severity"]) {
    const value = $(`f-${name}`).value;
    body[name] = value ? [value] : [];
  }
  body.agreement = Number($("f-agreement").value || 0);
  body.flagged = $("f-flagged").value;
  return body;
}

function fillSelect(id, items, label) {
  const select = $(id);
  for (const item of items) {
    if (item.value === null) continue;
    select.append(el("option", { value: item.value }, `${label(item.value)} (${item.count})`));
  }
}

async function loadStatus() {
  const status = await api("/status");
  state.facets = status.facets;
  $("run").textContent = `${status.run}: ${status.facets.flagged} flagged of ${status.sessions} sessions`;
  fillSelect("f-service", status.facets.service, (v) => v);
  fillSelect("f-day", status.facets.day, (v) => v);
  fillSelect("f-severity", status.facets.severity, (v) => v);
  for (let n = 1; n <= status.facets.n_detectors; n++) {
    $("f-agreement").append(el("option", { value: n }, `${n} of ${status.facets.n_detectors}`));
  }
  for (const id of ["f-flagged", "f-service", "f-day", "f-severity", "f-agreement", "f-by"]) {
    $(id).addEventListener("change", () => { state.offset = 0; state.goffset = 0; route(); });
  }
}

// ---------------------------------------------------------------- verdicts
async function giveVerdict(verdict, target) {
  const who = $("who").value.trim();
  const body = Object.assign({ verdict, who }, target);
  const answer = await api("/verdicts", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  state.effect = answer.effect;
  showSummary();
  const word = verdict === "unsure" ? "not sure" : verdict;
  message(`saved: ${answer.saved} session(s) marked ${verdict === "clear" ? "unjudged" : word}`);
  return answer;
}

function verdictButtons(target, current, after, count) {
  const suffix = count ? ` (${count})` : "";
  const make = (verdict, text) => el("button", {
    class: `${verdict}${current === verdict ? " current" : ""}`, "data-verdict": verdict,
    onclick: async (event) => {
      event.stopPropagation();
      try { await giveVerdict(verdict, target); await after(); }
      catch (error) { message(error.message); }
    } }, text + suffix);
  return [make("anomaly", "Anomaly"), make("normal", "Normal (false alarm)"),
    make("unsure", "Not sure")];
}

function showSummary() {
  const effect = state.effect;
  if (!effect) return;
  $("verdict-summary").textContent = effect.total
    ? `verdicts: ${effect.total} · confirmed ${effect.confirmed} · false alarms ${effect.false_alarms} · not sure ${effect.unsure}`
    : "no verdicts yet";
}

async function loadEffect() {
  state.effect = await api("/verdicts");
  showSummary();
}

// ---------------------------------------------------------------- list
async function showList(group, by) {
  const params = filterParams();
  params.set("offset", state.offset);
  params.set("limit", PAGE);
  if (group) { params.set("group", group); params.set("by", by); }
  const answer = await api(`/sessions?${params}`);
  const body = $("sessions").tBodies[0];
  body.replaceChildren();
  for (const s of answer.sessions) {
    const row = el("tr", { class: "clickable", "data-row": s.row,
      onclick: () => { window.location.hash = `#session/${s.row}`; } },
    el("td", {}, sevBadge(s.severity)),
    el("td", {}, `${fmt(s.score)} / ${fmt(s.threshold)}`),
    el("td", { title: "detectors that flagged it on their own thresholds" },
      `${s.agreement} of ${s.n_detectors}`),
    el("td", {}, s.service), el("td", {}, s.day),
    el("td", {}, el("a", { href: `#session/${s.row}` }, String(s.session_id)),
      s.session_key ? el("span", { class: "muted" }, ` ${s.session_key}`) : null),
    el("td", {}, s.group_label),
    el("td", { class: "verdict-cell" }, verdictBadge(s.verdict)));
    body.append(row);
  }
  const last = Math.min(answer.offset + answer.sessions.length, answer.total);
  $("page-info").textContent = answer.total
    ? `${answer.offset + 1}–${last} of ${answer.total}` : "no session matches the filters";
  $("prev").disabled = answer.offset === 0;
  $("next").disabled = last >= answer.total;
  const actions = $("group-actions");
  actions.replaceChildren();
  actions.hidden = !group;
  if (group) {
    $("list-title").textContent = "Members of the group";
    actions.append(el("p", {}, el("a", { href: "#groups" }, "← all groups")),
      el("div", { class: "verdict-buttons" }, el("span", {}, "Verdict for all of them:"),
        verdictButtons({ group: Object.assign({ key: group, by }, filterBody()) }, null,
          () => showList(group, by), answer.total)));
  } else {
    $("list-title").textContent = $("f-flagged").value === "no"
      ? "Sessions the run did not flag, highest scores first: any anomaly here was missed"
      : "Flagged sessions, most severe first";
  }
}

// ---------------------------------------------------------------- groups
async function showGroups() {
  const params = filterParams();
  const by = $("f-by").value;
  params.set("by", by);
  params.set("offset", state.goffset);
  params.set("limit", PAGE);
  const answer = await api(`/groups?${params}`);
  const body = $("groups").tBodies[0];
  body.replaceChildren();
  for (const g of answer.groups) {
    const given = Object.entries(g.verdicts || {}).map(([v, n]) => `${n} ${v}`).join(", ");
    const open = `#group/${by}/${encodeURIComponent(g.key)}`;
    body.append(el("tr", { "data-key": g.key },
      el("td", {}, String(g.size)), el("td", {}, sevBadge(g.severity)),
      el("td", {}, el("a", { href: open, class: "open-group" }, g.label),
        el("div", { class: "muted" }, `highest score ${fmt(g.max_score)}`)),
      el("td", {}, given || "–"),
      el("td", {}, el("div", { class: "verdict-buttons" },
        verdictButtons({ group: Object.assign({ key: g.key, by }, filterBody()) }, null,
          showGroups, g.size)))));
  }
  const last = Math.min(answer.offset + answer.groups.length, answer.total);
  $("gpage-info").textContent = answer.total
    ? `groups ${answer.offset + 1}–${last} of ${answer.total} (${answer.sessions} sessions)`
    : "no session matches the filters";
  $("gprev").disabled = answer.offset === 0;
  $("gnext").disabled = last >= answer.total;
}

// ---------------------------------------------------------------- detail
function codeBlock(lines) {
  const pre = el("pre", { class: "code" });
  for (const line of lines) {
    pre.append(el("span", { class: line.focus ? "focus" : null },
      `${String(line.line).padStart(4)}  ${line.text}`), "\n");
  }
  return pre;
}

function probability(item) {
  if (item.kind === "unseen") return "never seen in training";
  if (item.kind === "end") return "session ended early";
  if (item.probability === null || item.probability === undefined) return "surprising";
  return `p = ${fmt(item.probability, 3)}${item.rank !== null && item.rank !== undefined ? `, rank ${item.rank}` : ""}`;
}

async function showDetail(row) {
  const s = await api(`/session/${row}`);
  $("d-title").textContent = `${s.service} · session ${s.session_id}${s.session_key ? ` (${s.session_key})` : ""} · ${s.file}`;
  const buttons = $("d-verdict");
  buttons.replaceChildren(el("span", {}, "Verdict:"),
    ...verdictButtons({ sessions: [{ file: s.file, session_id: s.session_id }] },
      s.verdict ? s.verdict.verdict : null, () => showDetail(row)));
  if (s.verdict) {
    buttons.append(el("span", { class: "muted" },
      `given by ${s.verdict.who || "someone"} at ${s.verdict.when}`));
  }
  $("d-score").replaceChildren(sevBadge(s.severity),
    ` score ${fmt(s.score)} against the threshold ${fmt(s.threshold)}; ${s.agreement} of ${s.n_detectors} detector(s) flagged it${s.explained_by ? `; explained by ${s.explained_by}` : ""}`);
  $("d-reasons").replaceChildren(...(s.reasons || []).map((r) => el("li", {}, r)));
  const members = $("d-members");
  members.hidden = !(s.members && s.members.length);
  members.tBodies[0].replaceChildren(...(s.members || []).map((m) => el("tr", {},
    el("td", {}, m.name), el("td", {}, fmt(m.score)), el("td", {}, fmt(m.threshold)),
    el("td", {}, m.flagged ? "yes" : "no"))));
  const events = $("d-events");
  events.replaceChildren();
  const hot = new Map();
  for (const item of s.top || []) {
    hot.set(item.position, item);
    const src = item.source;
    events.append(el("div", { class: "event" },
      el("div", {}, el("strong", {}, `line ${item.position}`), ` · ${probability(item)}`,
        item.event_id !== null && item.event_id !== undefined ? ` · event ${item.event_id}` : ""),
      src ? el("div", {}, el("span", { class: "where" }, `${src.file}:${src.line}`),
        src.function ? ` in ${src.class ? src.class + "." : ""}${src.function}` : "",
        src.template ? el("div", { class: "muted" }, src.template) : null)
        : (item.template ? el("div", { class: "muted" }, item.template) : null),
      src && src.code ? codeBlock(src.code)
        : (src ? el("pre", { class: "code" }, src.statement) : null)));
  }
  if (!(s.top || []).length) events.append(el("p", { class: "muted" }, "no explained event"));
  const list = $("d-lines");
  list.replaceChildren();
  if (s.lines === null) {
    $("d-lines-info").textContent = `(not found: the day file ${s.file} is not in ${s.data_dir || "the run's data folder"})`;
  } else {
    $("d-lines-info").textContent = s.lines_total > s.lines.length
      ? `(first ${s.lines.length} of ${s.lines_total})` : `(${s.lines_total})`;
    s.lines.forEach((text, i) => {
      const item = hot.get(i);
      list.append(el("li", { class: item ? "hot" : null, "data-line": i }, text,
        item ? el("span", { class: "prob" }, `◀ ${probability(item)}`) : null));
    });
  }
}

// ---------------------------------------------------------------- verdicts view
async function showVerdicts() {
  await loadEffect();
  const e = state.effect;
  const rows = [["verdicts given", e.total], ["confirmed anomalies (flagged, you said anomaly)", e.confirmed],
    ["false alarms (flagged, you said normal)", e.false_alarms],
    ["anomalies the run missed", e.missed], ["not sure", e.unsure],
    ["precision of the judged flags", e.precision_of_judged === null ? "–" : fmt(e.precision_of_judged, 3)]];
  $("v-counts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  $("v-command").textContent = e.command;
  $("v-note").textContent = e.note + (e.run_label_file
    ? ` This run was trained with the label file ${e.run_label_file}: merge its rows into the verdict file, or the next run uses only the verdicts.` : "");
  $("v-file").textContent = e.file;
}

// ---------------------------------------------------------------- routing
function show(view) {
  for (const name of ["list", "groups", "detail", "verdicts"]) {
    $(`view-${name}`).hidden = name !== view;
  }
  for (const name of ["list", "groups", "verdicts"]) {
    $(`nav-${name}`).classList.toggle("active", name === view);
  }
  $("f-by-label").hidden = view !== "groups";
}

async function route() {
  const hash = window.location.hash || "#list";
  try {
    if (hash.startsWith("#session/")) {
      show("detail");
      await showDetail(Number(hash.slice("#session/".length)));
    } else if (hash.startsWith("#group/")) {
      const [by, ...rest] = hash.slice("#group/".length).split("/");
      show("list");
      await showList(decodeURIComponent(rest.join("/")), by);
    } else if (hash === "#groups") {
      show("groups");
      await showGroups();
    } else if (hash === "#verdicts") {
      show("verdicts");
      await showVerdicts();
    } else {
      show("list");
      await showList(null, null);
    }
    document.body.dataset.ready = hash;
  } catch (error) {
    message(error.message);
  }
}

async function main() {
  const who = $("who");
  who.value = localStorage.getItem("radar.triage.who") || "";
  who.addEventListener("change", () => localStorage.setItem("radar.triage.who", who.value.trim()));
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); route(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; route(); });
  $("gprev").addEventListener("click", () => { state.goffset = Math.max(0, state.goffset - PAGE); route(); });
  $("gnext").addEventListener("click", () => { state.goffset += PAGE; route(); });
  window.addEventListener("hashchange", () => { state.offset = 0; message(""); route(); });
  try {
    await loadStatus();
    await loadEffect();
  } catch (error) {
    message(error.message);
    return;
  }
  await route();
}

document.addEventListener("DOMContentLoaded", main);
