// mock-radius live page: the control API's own data, nothing from elsewhere.
// Every value from the journal is written with textContent: User-Names and attributes come
// from whoever sent a datagram, so they are never parsed as HTML.
"use strict";

const MAX_ROWS = 500; // rows kept on the page; the journal itself keeps more
const REFRESH_MS = 1500; // health and sessions
const BAR_SECONDS = 10; // a delay this long fills its bar

const $ = (id) => document.getElementById(id);
let stream = null;
let activeName = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function getJson(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.message || `${response.status} ${response.statusText}`);
  }
  return body;
}

function clock(epoch) {
  const when = new Date(epoch * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}` +
    `.${pad(when.getMilliseconds(), 3)}`;
}

// scenarios and their steps

function describeStep(step) {
  const item = el("li", "step-line");
  item.dataset.step = step.name;
  item.append(el("span", "name", step.name), document.createTextNode(": "));
  const action = step.drop ? "drop" : step.reply;
  item.append(el("span", "action", action));
  const details = [];
  const match = Object.entries(step.match || {}).map(([k, v]) =>
    `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`);
  if (match.length) details.push(`if ${match.join(", ")}`);
  if (step.delay) details.push(`after ${step.delay} s`);
  if (step.times !== null && step.times !== undefined) details.push(`times ${step.times}`);
  if (details.length) item.append(el("span", "detail", ` (${details.join("; ")})`));
  return item;
}

function renderScenarios(listing) {
  activeName = listing.active;
  $("active").textContent = listing.active || "none (routed by users)";
  const list = $("scenarios");
  const open = new Set([...list.querySelectorAll("details[open]")].map((d) => d.dataset.name));
  list.replaceChildren();
  const names = listing.scenarios.map((scenario) => scenario.name);
  const ordered = [...listing.scenarios].sort((a, b) =>
    (b.name === listing.active) - (a.name === listing.active)); // the active one first
  for (const scenario of ordered) {
    const isActive = scenario.name === listing.active;
    const item = el("li", isActive ? "scenario active" : "scenario");
    item.dataset.name = scenario.name;
    const details = el("details");
    details.dataset.name = scenario.name;
    details.open = isActive || open.has(scenario.name);
    const summary = el("summary");
    summary.append(el("span", "name", scenario.name));
    if (scenario.users.length) summary.append(el("span", "users", scenario.users.join(", ")));
    const button = el("button", "activate", isActive ? "active" : "activate");
    button.type = "button";
    button.disabled = isActive;
    button.dataset.scenario = scenario.name;
    button.addEventListener("click", (event) => {
      event.preventDefault();
      activate(scenario.name);
    });
    summary.append(button);
    details.append(summary);
    if (scenario.description) details.append(el("p", "quiet", scenario.description));
    const steps = el("ol", "steps");
    for (const step of scenario.script.steps) steps.append(describeStep(step));
    details.append(steps);
    if (scenario.script.accounting.length) {
      details.append(el("p", "quiet", "accounting:"));
      const accounting = el("ol", "steps");
      for (const step of scenario.script.accounting) accounting.append(describeStep(step));
      details.append(accounting);
    }
    item.append(details);
    list.append(item);
  }
  const select = document.querySelector("#filters select[name=scenario]");
  const chosen = select.value;
  select.replaceChildren(el("option", null, "any"));
  select.firstChild.value = "";
  for (const name of names) select.append(el("option", null, name));
  select.value = chosen;
}

async function activate(name) {
  const problem = $("activate-error");
  try {
    await getJson("/activate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenario: name }),
    });
    problem.hidden = true;
  } catch (error) {
    problem.textContent = `activate ${name}: ${error.message}`;
    problem.hidden = false;
  }
  await refreshScenarios();
}

async function refreshScenarios() {
  try {
    renderScenarios(await getJson("/scenarios"));
  } catch (error) {
    $("active").textContent = `unavailable: ${error.message}`;
  }
}

// health and sessions

async function refreshHealth() {
  try {
    const health = await getJson("/health");
    const drops = Object.entries(health.sockets || {})
      .map(([name, s]) => `${name} ${s.kernelDrops ?? "?"}`).join(", ");
    $("health").textContent =
      `${health.scenarios} scenarios · ${health.sessions} sessions · ` +
      `${health.pending} replies pending · ${health.journal.entries} journal entries · ` +
      `kernel drops: ${drops || "n/a"} · errors ${health.errors}`;
    return health;
  } catch (error) {
    $("health").textContent = `health unavailable: ${error.message}`;
    return null;
  }
}

async function refreshSessions() {
  try {
    const live = await getJson("/sessions?limit=50");
    const body = $("sessions").tBodies[0];
    body.replaceChildren();
    for (const exchange of live.exchanges) {
      const row = el("tr");
      for (const value of [exchange.user, exchange.scenario, exchange.step ?? "(mismatch)",
        exchange.idle.toFixed(1)]) {
        row.append(el("td", null, value));
      }
      body.append(row);
    }
    $("sessions-empty").hidden = live.exchanges.length > 0;
  } catch (error) {
    $("sessions-empty").textContent = `sessions unavailable: ${error.message}`;
  }
}

// the journal

function replyClass(code) {
  if (!code) return "reply none";
  if (code.endsWith("Accept") || code === "Accounting-Response") return "reply accept";
  if (code.endsWith("Reject")) return "reply reject";
  if (code.endsWith("Challenge")) return "reply challenge";
  return "reply";
}

function fillDelay(box, entry) {
  box.replaceChildren();
  const bar = el("span", "bar");
  const text = el("span", "delay-text");
  if (entry.delay > 0) {
    bar.style.width = `${Math.min(entry.delay, BAR_SECONDS) / BAR_SECONDS * 100}%`;
    if (entry.sent === null || entry.sent === undefined) {
      bar.classList.add("pending");
      text.textContent = `delay ${entry.delay.toFixed(2)} s, pending`;
    } else {
      text.textContent = `delay ${entry.delay.toFixed(2)} s, sent after ` +
        `${(entry.sent - entry.time).toFixed(3)} s`;
    }
  } else {
    bar.hidden = true;
    text.textContent = entry.reply ? "at once" : "";
  }
  box.append(bar, text);
}

function renderEntry(entry) {
  const row = el("li", `entry outcome-${entry.outcome}`);
  row.dataset.seq = entry.seq;
  row.dataset.outcome = entry.outcome;
  row.append(el("span", "time", clock(entry.time)));
  row.append(el("span", "user", entry.user ?? "(no User-Name)"));
  const flow = el("span", "flow");
  const request = entry.code || "datagram";
  flow.append(el("span", "request", entry.authType ? `${request} (${entry.authType})` : request));
  flow.append(el("span", "arrow", "→"));
  if (entry.step) {
    flow.append(el("span", "step", entry.step));
  } else {
    flow.append(el("span", "note", entry.hint || entry.error || entry.outcome));
  }
  if (entry.transmission && entry.transmission > 1) {
    flow.append(el("span", "note", `transmission ${entry.transmission}`));
  }
  flow.append(el("span", "arrow", "→"));
  const code = entry.reply ? entry.reply.code : null;
  flow.append(el("span", replyClass(code), code || `no reply (${entry.outcome})`));
  row.append(flow);
  const delay = el("span", "delay");
  fillDelay(delay, entry);
  row.append(delay);
  return row;
}

function addEntry(entry) {
  const timeline = $("timeline");
  const known = timeline.querySelector(`li[data-seq="${entry.seq}"]`);
  if (known) {
    known.replaceWith(renderEntry(entry));
    return;
  }
  timeline.prepend(renderEntry(entry));
  while (timeline.children.length > MAX_ROWS) timeline.lastElementChild.remove();
  const seen = $("outcomes-seen");
  if (![...seen.options].some((o) => o.value === entry.outcome)) {
    const option = el("option");
    option.value = entry.outcome;
    seen.append(option);
  }
}

function markSent(entry) {
  const row = $("timeline").querySelector(`li[data-seq="${entry.seq}"]`);
  if (row) fillDelay(row.querySelector(".delay"), entry);
}

function filterQuery() {
  const query = new URLSearchParams();
  for (const [name, value] of new FormData($("filters"))) {
    if (String(value).trim()) query.append(name, String(value).trim());
  }
  return query;
}

async function openStream() {
  if (stream) stream.close();
  stream = null;
  $("timeline").replaceChildren();
  const problem = $("journal-error");
  const query = filterQuery();
  try {
    await getJson(`/journal?${query}&limit=1`); // a bad filter: the API's message, shown
    problem.hidden = true;
  } catch (error) {
    problem.textContent = error.message;
    problem.hidden = false;
    return;
  }
  const health = await refreshHealth();
  const last = health ? health.journal.lastSeq : 0;
  query.set("since", String(Math.max(0, last - MAX_ROWS)));
  stream = new EventSource(`/journal/stream?${query}`);
  const live = $("live");
  stream.addEventListener("open", () => {
    live.dataset.state = "open";
    live.textContent = "live";
  });
  stream.addEventListener("error", () => {
    live.dataset.state = "closed";
    live.textContent = "reconnecting";
  });
  stream.addEventListener("entry", (event) => addEntry(JSON.parse(event.data)));
  stream.addEventListener("sent", (event) => markSent(JSON.parse(event.data)));
}

function start() {
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    openStream();
  });
  $("filters").addEventListener("reset", () => setTimeout(openStream, 0));
  refreshScenarios();
  refreshSessions();
  openStream();
  setInterval(() => {
    refreshHealth();
    refreshSessions();
  }, REFRESH_MS);
}

start();
