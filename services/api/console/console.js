// The ops console: reads the API's /v1 routes with the token typed in the page (kept in sessionStorage only),
// draws supply against demand as inline SVG, the ledger at the slider's moment, an order's trail and the dead
// letters, and refreshes them when the read models move (server-sent events read with fetch, which, unlike
// EventSource, can send the Authorization header).
"use strict";

const TOKEN_KEY = "h200.console.token";
const SVG = "http://www.w3.org/2000/svg";
const FIGURES = {
  manufactured: "#2f6fba", requested: "#c9a227", approved: "#8a5cc2",
  allocated: "#2e9a5b", shipped: "#d2691e", delivered: "#1d2330",
};
const state = { points: [], pending: null, live: null, lastEventId: null };

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem(TOKEN_KEY);

async function api(path, options = {}) {
  const answer = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${token() || ""}`, ...(options.headers || {}) },
  });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const refusal = body.code ? body : body.detail || {};
    throw new Error(`${answer.status} ${refusal.code || ""}: ${refusal.detail || JSON.stringify(body)}`);
  }
  return body;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

const number = (n) => (n === undefined || n === null ? "" : Number(n).toLocaleString("en-US"));

function svg(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

function drawChart(points) {
  const chart = $("chart");
  chart.replaceChildren();
  const [width, height, left, right, top, bottom] = [900, 320, 70, 20, 15, 30];
  if (!points.length) {
    svg("text", { x: left, y: height / 2, class: "tick" }, chart).textContent = "nothing recorded yet";
    return;
  }
  const times = points.map((p) => Date.parse(p.at));
  const [first, last] = [Math.min(...times), Math.max(...times)];
  const span = Math.max(last - first, 1);
  const top_ = Math.max(1, ...points.flatMap((p) => Object.keys(FIGURES).map((f) => p[f])));
  const x = (t) => left + ((t - first) / span) * (width - left - right);
  const y = (v) => height - bottom - (v / top_) * (height - top - bottom);
  svg("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, class: "axis" }, chart);
  svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "axis" }, chart);
  for (const fraction of [0, 0.5, 1]) {
    const label = svg("text", { x: 4, y: y(top_ * fraction) + 4, class: "tick" }, chart);
    label.textContent = number(Math.round(top_ * fraction));
    const moment = new Date(first + span * fraction).toISOString().slice(0, 16).replace("T", " ");
    const anchor = fraction === 0 ? "start" : fraction === 1 ? "end" : "middle";
    svg("text", { x: x(first + span * fraction), y: height - 8, class: "tick", "text-anchor": anchor }, chart)
      .textContent = moment;
  }
  for (const [figure, colour] of Object.entries(FIGURES)) {
    // a running total holds until the next change: a step line
    const corners = points.flatMap((p, i) => {
      const here = [x(times[i]), y(p[figure])];
      return i === 0 ? [here] : [[x(times[i]), y(points[i - 1][figure])], here];
    });
    const group = svg("g", { class: "figure", "data-figure": figure }, chart);
    // supply is drawn wide and first: where every chip is allocated, the allocated line runs inside it
    const width_ = figure === "manufactured" ? 7 : 2;
    svg("polyline", {
      class: "series", stroke: colour, "stroke-width": width_, points: corners.map((c) => c.join(",")).join(" "),
    }, group);
    points.forEach((p, i) => {
      const r = figure === "manufactured" ? 5 : 3;
      const dot = svg("circle", { class: "point", cx: x(times[i]), cy: y(p[figure]), r, fill: colour }, group);
      svg("title", {}, dot).textContent = `${figure} ${number(p[figure])} at ${p.at}`;
    });
  }
  state.chartScale = { x, top, bottom: height - bottom };
  drawMarker();
}

function drawMarker() {
  const chart = $("chart");
  chart.querySelector(".marker")?.remove();
  const moment = asOf();
  if (!moment || !state.chartScale) return;
  const { x, top, bottom } = state.chartScale;
  const at = x(Date.parse(moment));
  svg("line", { x1: at, x2: at, y1: top, y2: bottom, class: "marker" }, chart);
}

function drawLegend() {
  $("legend").replaceChildren(...Object.entries(FIGURES).map(([figure, colour]) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = colour;
    item.append(swatch, figure);
    return item;
  }));
}

const asOf = () => {
  const index = Number($("as-of").value);
  return index < state.points.length ? state.points[index].at : null;
};

async function loadTotals() {
  const totals = await api("/v1/totals");
  const atEnd = Number($("as-of").value) >= state.points.length;
  state.points = totals.points;
  const slider = $("as-of");
  slider.max = String(state.points.length); // the last position is "now"
  if (atEnd) slider.value = slider.max;
  drawChart(state.points);
}

async function loadLedger() {
  const moment = asOf();
  $("as-of-label").textContent = moment || "now";
  const ledger = await api(moment ? `/v1/ledger?as_of=${encodeURIComponent(moment)}` : "/v1/ledger");
  const rows = $("ledger-rows");
  rows.replaceChildren();
  for (const line of ledger.lines) {
    const row = rows.insertRow();
    row.className = `line ${line.status}`;
    row.dataset.allocation = line.allocation_id;
    [line.allocated_at, line.buyer_id, line.batch_id].forEach((v) => cell(row, v));
    cell(row, number(line.quantity), "n");
    [line.status, line.shipment || "-", line.rule, String(line.allocation_id).slice(0, 8)].forEach((v) => cell(row, v));
  }
  const buyers = $("buyer-rows");
  buyers.replaceChildren();
  for (const [buyer, t] of Object.entries(ledger.totals.buyers)) {
    const row = buyers.insertRow();
    cell(row, buyer);
    for (const name of ["requested", "approved", "allocated", "shipped", "delivered", "released"]) {
      cell(row, number(t[name]), "n");
    }
  }
  const chips = ledger.lines.filter((l) => l.status !== "released").reduce((sum, l) => sum + l.quantity, 0);
  $("ledger-summary").textContent =
    `${ledger.lines.length} line(s), ${number(chips)} chips held, as of ${ledger.as_of || "now"} (namespace ${ledger.namespace})`;
  drawMarker();
}

async function loadTrail(event) {
  if (event) event.preventDefault();
  const [buyer, ref] = [$("trail-buyer").value.trim(), $("trail-ref").value.trim()];
  if (!buyer || !ref) return;
  const list = $("trail");
  list.replaceChildren();
  try {
    const order = await api(`/v1/orders/${encodeURIComponent(buyer)}/${encodeURIComponent(ref)}/trail`);
    $("trail-summary").className = "status";
    $("trail-summary").textContent = `order ${order.order_id}: ${order.status || "?"}, requested ${number(order.quantity)}, ` +
      `approved ${number(order.approved_quantity)}, allocated ${number(order.allocated)}`;
    for (const entry of order.trail) {
      const item = document.createElement("li");
      const type = document.createElement("span");
      type.className = "type";
      type.textContent = entry.type;
      item.append(`${entry.at} `, type, ` ${entry.what} (event ${String(entry.id).slice(0, 8)})`);
      list.appendChild(item);
    }
  } catch (error) {
    $("trail-summary").className = "status refused";
    $("trail-summary").textContent = error.message;
  }
}

async function loadLetters() {
  const found = await api("/v1/dead-letters");
  const rows = $("dead-letters");
  rows.replaceChildren();
  for (const letter of found.dead_letters) {
    const row = rows.insertRow();
    row.className = "letter";
    [letter.service, letter.offset, letter.code, letter.source, letter.at].forEach((v) => cell(row, v));
    cell(row, letter.error, "error");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "redrive";
    button.textContent = "Re-drive";
    button.addEventListener("click", () => redrive(letter, true));
    cell(row, "").appendChild(button);
  }
  const counts = Object.entries(found.counts).map(([s, codes]) =>
    `${s}: ${Object.entries(codes).map(([c, n]) => `${c} ${n}`).join(", ")}`);
  $("letters-summary").textContent = `${found.dead_letters.length} dead letter(s)${counts.length ? "; " + counts.join("; ") : ""}`;
}

async function redrive(letter, dryRun) {
  const result = $("redrive-result");
  const confirm = $("redrive-confirm");
  confirm.hidden = true;
  const where = `h200.dlq.${letter.service}@${letter.offset}`;
  try {
    const path = `/v1/dead-letters/${letter.service}/${letter.offset}/redrive${dryRun ? "?dry_run=true" : ""}`;
    const answer = await api(path, { method: "POST" });
    result.className = "status";
    result.textContent = `${where}: ${answer.outcome.replace("_", " ")} ${answer.type} to ${answer.topic}` +
      ` as id ${answer.new_id}${answer.at ? " at " + answer.at : ""}`;
    if (answer.outcome === "would_send") {
      confirm.hidden = false;
      confirm.onclick = () => redrive(letter, false);
    }
  } catch (error) {
    result.className = "status refused";
    result.textContent = `${where}: ${error.message}`;
  }
}

function refreshSoon() {
  clearTimeout(state.pending);
  state.pending = setTimeout(() => refresh().catch(showError), 300);
}

async function follow() {
  if (state.live) state.live.abort();
  const control = new AbortController();
  state.live = control;
  while (!control.signal.aborted && token()) {
    try {
      const headers = { Authorization: `Bearer ${token()}` };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const answer = await fetch("/v1/events", { headers, signal: control.signal });
      if (!answer.ok) throw new Error(`${answer.status}`);
      const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          onFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (control.signal.aborted) return;
      $("live-status").textContent = `live: reconnecting (${error.message})`;
    }
    await new Promise((resume) => setTimeout(resume, 2000));
  }
}

function onFrame(text) {
  const fields = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) fields[line.slice(0, at)] = (fields[line.slice(0, at)] || "") + line.slice(at + 1).trimStart();
  }
  if (!fields.data) return;
  const data = JSON.parse(fields.data);
  const first = state.lastEventId === null;
  state.lastEventId = fields.id || state.lastEventId;
  $("live-status").textContent = `live: position ${number(data.position)} of namespace ${data.namespace}`;
  if (!first) refreshSoon();
}

function showLettersError(error) {
  $("letters-summary").className = "status refused";
  $("letters-summary").textContent = error.message;
}

function showError(error) {
  $("caller").className = "status refused";
  $("caller").textContent = error.message;
}

async function refresh() {
  await loadTotals();
  await Promise.all([loadLedger(), loadLetters().catch(showLettersError)]);
}

async function start() {
  if (!token()) return;
  try {
    const caller = await api("/v1/caller");
    $("caller").className = "status";
    $("caller").textContent = `signed in as ${caller.caller}` +
      (caller.may_redrive ? " (may re-drive dead letters)" : " (reads only)");
  } catch (error) {
    showError(error);
    return;
  }
  follow();
  await loadTotals().catch(showError);
  await Promise.all([loadLedger().catch(showError), loadLetters().catch(showLettersError)]);
}

document.addEventListener("DOMContentLoaded", () => {
  drawLegend();
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    state.lastEventId = null;
    start();
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.live) state.live.abort();
    $("caller").textContent = "No token.";
  });
  $("as-of").addEventListener("input", () => loadLedger().catch(showError));
  $("trail-form").addEventListener("submit", loadTrail);
  start();
});
