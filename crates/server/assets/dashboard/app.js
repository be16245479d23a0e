// winsink dashboard: polls the JSON API (no framework, no network but this server).
//
// Polling rates are modest on purpose: the page must never load the DNS path. The log
// is asked every 2 s, the areas every 5 s, the plot and the uncatalogued names every
// 15 s, and nothing while the tab is hidden.
"use strict";

(() => {
  const POLL = { summary: 5000, log: 2000, chart: 15000, uncatalogued: 15000 };
  const LOG_LINES = 200;
  const TOP_AREAS = 8;
  const FORWARDED = ["log", "allow", "pass"];

  const $ = (sel) => document.querySelector(sel);
  const fmt = new Intl.NumberFormat("en");
  const state = {
    token: sessionStorage.getItem("winsink-token") || "",
    summary: null,
    sort: { key: "queries", dir: -1 },
    expanded: new Set(),
    changes: { allowed: false, reason: "loading" },
    pending: new Map(),
    range: 3600,
    paused: false,
    chart: null,
    series: null,
  };

  // --- HTTP ---------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const res = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (res.status === 401) {
      showAuth();
      throw new HttpError(401, "this listener needs its token");
    }
    if (!res.ok) {
      throw new HttpError(res.status, (body && body.error) || res.status + " " + res.statusText);
    }
    return body;
  }

  function setStatus(text, error) {
    const el = $("#status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(error));
  }

  function showAuth() {
    $("#auth").hidden = false;
  }

  $("#auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem("winsink-token", state.token);
    $("#auth").hidden = true;
    refreshAll();
  });

  // --- helpers ------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else if (k in e && typeof v !== "string") e[k] = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // An area as the API gives it: a name, or {id, name}.
  function nameOf(area) {
    return area && typeof area === "object" ? area.name || area.id : area;
  }

  function badge(word) {
    return el("span", { class: "badge " + word, text: word });
  }

  function num(n, opts) {
    const extra = opts && opts.class ? " " + opts.class : "";
    const td = el("td", { class: "num" + (n ? "" : " zero") + extra, text: fmt.format(n || 0) });
    if (opts && opts.atLeast) td.textContent = "≥ " + td.textContent;
    return td;
  }

  function ago(iso) {
    if (!iso) return "—";
    const secs = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (secs < 60) return Math.round(secs) + " s ago";
    if (secs < 3600) return Math.round(secs / 60) + " min ago";
    if (secs < 86400) return Math.round(secs / 3600) + " h ago";
    return Math.round(secs / 86400) + " d ago";
  }

  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
  }

  function when(iso) {
    return el("td", { text: ago(iso), title: iso || "" });
  }

  // --- areas --------------------------------------------------------------------

  function kindOf(row) {
    if (row.id.startsWith("list:")) return "list";
    if (row.id === "rule") return "rule";
    if (row.id === "none") return "none";
    return row.action ? "area" : "area (no longer loaded)";
  }

  function rowLabel(row) {
    if (row.id.startsWith("list:")) return row.id.slice(5);
    if (row.id === "rule") return "Custom rules";
    if (row.id === "none") return "No match";
    return row.name || row.id;
  }

  function impactOf(row) {
    if (row.impact) return row.impact;
    if (row.id.startsWith("list:")) return "Names of this list file.";
    if (row.id === "rule") return "Names matched by [[rules]] in the config file.";
    if (row.id === "none") return "Names no area, rule or list matches: forwarded.";
    return "";
  }

  function sortValue(row, key) {
    switch (key) {
      case "name": return rowLabel(row).toLowerCase();
      case "action": return row.action || "~";
      case "last_seen": return row.last_seen || "";
      default: return row[key] || 0;
    }
  }

  function renderAreas() {
    const s = state.summary;
    if (!s) return;
    const rows = s.areas.concat(s.others || []);
    const { key, dir } = state.sort;
    rows.sort((a, b) => {
      const x = sortValue(a, key), y = sortValue(b, key);
      if (x < y) return -dir;
      if (x > y) return dir;
      return rowLabel(a).localeCompare(rowLabel(b));
    });
    const body = $("#areas tbody");
    const fresh = document.createDocumentFragment();
    for (const row of rows) {
      const open = state.expanded.has(row.id);
      const impact = impactOf(row);
      const kind = kindOf(row);
      const nameBtn = el("button", {
        class: "area-name", type: "button", "aria-expanded": String(open),
        onclick: () => {
          if (state.expanded.has(row.id)) state.expanded.delete(row.id);
          else state.expanded.add(row.id);
          renderAreas();
        },
      }, rowLabel(row));
      const nameCell = el("td", { class: "name" }, nameBtn,
        kind !== "area" ? el("span", { class: "kind", text: kind }) : null);
      const tr = el("tr", { "data-area": row.id, title: impact ? "If blocked: " + impact : null },
        nameCell,
        el("td", {}, actionCell(row)),
        num(row.queries), num(row.blocked), num(row.would_block),
        num(row.clients, { atLeast: row.clients_at_least, class: "opt" }),
        Object.assign(when(row.last_seen), { className: "opt" }));
      fresh.append(tr);
      if (open) {
        const seen = fmt.format(row.clients || 0) + (row.clients_at_least ? "+" : "") + " clients, last seen "
          + ago(row.last_seen) + ".";
        fresh.append(el("tr", { class: "impact", "data-impact-for": row.id },
          el("td", { colspan: "7" },
            el("div", { text: impact ? "What breaks if blocked: " + impact : "No impact text for this row." }),
            el("div", { class: "seen", text: seen }))));
      }
    }
    body.replaceChildren(fresh);
    for (const th of document.querySelectorAll("#areas th")) {
      const sorted = th.dataset.key === key;
      th.setAttribute("aria-sort", sorted ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    fillAreaFilter(rows);
  }

  function actionCell(row) {
    if (!row.action) return row.id.startsWith("list:") || row.id === "rule" ? "per entry" : "—";
    const pending = state.pending.get(row.id);
    const seg = el("div", { class: "seg toggle" + (pending ? " pending" : ""), role: "group", "aria-label": "Action for " + rowLabel(row) });
    for (const action of ["block", "log", "allow"]) {
      const current = (pending || row.action) === action;
      seg.append(el("button", {
        type: "button", "data-action": action, "aria-pressed": String(current),
        disabled: !state.changes.allowed || Boolean(pending) || undefined,
        title: state.changes.allowed ? (current ? "In force" : "Set " + rowLabel(row) + " to " + action)
          : "Cannot change: " + state.changes.reason,
        onclick: () => { if (!current) toggle(row, action); },
      }, action));
    }
    return seg;
  }

  document.querySelectorAll("#areas th").forEach((th) => {
    th.addEventListener("click", () => {
      const key = th.dataset.key;
      state.sort = state.sort.key === key ? { key, dir: -state.sort.dir }
        : { key, dir: ["name", "action"].includes(key) ? 1 : -1 };
      renderAreas();
    });
  });

  function renderTotals(s) {
    const d = s.decisions || {};
    const forwarded = FORWARDED.reduce((n, w) => n + (d[w] || 0), 0);
    const items = [
      ["Queries", s.queries], ["Blocked", d.block], ["Would block", d.log],
      ["Forwarded", forwarded], ["Refused", d.refuse],
    ];
    $("#totals").replaceChildren(...items.map(([k, v]) =>
      el("div", {}, el("dt", { text: k }), el("dd", { text: fmt.format(v || 0) }))));
    $("#version").textContent = "winsink " + (s.version || "") + " · up " + uptime(s.uptime_secs);
  }

  function uptime(secs) {
    secs = Math.floor(secs || 0);
    const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600), m = Math.floor(secs % 3600 / 60);
    return d ? d + " d " + h + " h" : h ? h + " h " + m + " min" : m + " min " + (secs % 60) + " s";
  }

  async function loadSummary() {
    const s = await api("api/v1/summary");
    for (const [id, action] of state.pending) {
      const row = s.areas.find((a) => a.id === id);
      if (row && row.action === action) {
        state.pending.delete(id);
        note("ok", rowLabel(row) + " is now " + action + " (the config file was changed and reloaded).");
      }
    }
    const first = !state.summary || state.summary.areas.length !== s.areas.length;
    state.summary = s;
    renderTotals(s);
    renderAreas();
    // The plot names areas from the summary: redraw it when the names first arrive.
    if (first && state.series) drawChart();
  }

  // --- toggling -----------------------------------------------------------------

  function note(kind, text) {
    const n = $("#toggle-note");
    n.className = "note " + (kind || "");
    n.textContent = text;
  }

  async function loadChanges() {
    try {
      const c = await api("api/v1/config");
      state.changes = c.changes || { allowed: false, reason: "unknown" };
      if (!state.changes.allowed) note("", "Toggles are off: " + state.changes.reason);
      else note("", "A toggle edits " + c.path + " (comments kept); winsink reloads it.");
    } catch (e) {
      state.changes = { allowed: false, reason: e.message };
      note("", "Toggles are off: " + e.message);
    }
    renderAreas();
  }

  async function toggle(row, action) {
    state.pending.set(row.id, action);
    renderAreas();
    try {
      const r = await api("api/v1/areas/" + encodeURIComponent(row.id) + "/action", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Winsink-Change": "area-action" },
        body: JSON.stringify({ action }),
      });
      note("", r.written
        ? "Wrote " + row.id + " = \"" + action + "\" to " + r.path + "; waiting for the reload…"
        : r.path + " already says " + row.id + " = \"" + action + "\"; waiting for the reload…");
      setTimeout(() => refresh("summary"), 600);
      setTimeout(() => refresh("summary"), 2000);
      setTimeout(() => {
        if (state.pending.get(row.id) === action) {
          state.pending.delete(row.id);
          note("error", "The file says " + row.id + " = \"" + action + "\" but the policy in force does not: see winsink's log for why the reload failed.");
          renderAreas();
        }
      }, 8000);
    } catch (e) {
      state.pending.delete(row.id);
      note("error", "Could not set " + rowLabel(row) + " to " + action + ": " + e.message);
      renderAreas();
    }
  }

  // --- live log -----------------------------------------------------------------

  function fillAreaFilter(rows) {
    const select = $("#f-area");
    const have = new Set([...select.options].map((o) => o.value));
    const sorted = rows.slice().sort((a, b) => rowLabel(a).localeCompare(rowLabel(b)));
    for (const r of sorted) {
      if (!have.has(r.id)) select.append(el("option", { value: r.id, text: rowLabel(r) }));
    }
  }

  function logQuery() {
    const p = new URLSearchParams({ limit: String(LOG_LINES) });
    const area = $("#f-area").value, decision = $("#f-decision").value, client = $("#f-client").value.trim();
    if (area) p.set("area", area);
    if (decision) p.set("decision", decision);
    if (client) p.set("client", client);
    return "api/v1/queries?" + p;
  }

  async function loadLog() {
    if (state.paused) return;
    const client = $("#f-client").value.trim();
    if (client && !/^[0-9a-fA-F:.]+$/.test(client)) {
      $("#log-state").textContent = "Client must be an IP address.";
      return;
    }
    const r = await api(logQuery());
    const text = $("#f-text").value.trim().toLowerCase();
    const lines = r.queries.filter((q) => !text || q.qname.includes(text));
    const body = $("#log tbody");
    const fresh = document.createDocumentFragment();
    for (const q of lines) {
      fresh.append(el("tr", { "data-decision": q.decision, title: (q.impact || []).join(" · ") || null },
        el("td", { class: "mono", text: clock(q.ts), title: q.ts }),
        el("td", { class: "mono", text: q.client }),
        el("td", { class: "qname mono", text: q.qname + (q.cname ? " → " + q.cname : "") }),
        el("td", { text: q.qtype || "" }),
        el("td", {}, badge(q.decision)),
        el("td", { text: (q.areas || []).map(nameOf).join(", ") || (q.decided_by && q.decided_by !== "none" ? q.decided_by : "—") }),
        el("td", {}, el("a", {
          class: "why", href: "#explain-section", text: "why?",
          onclick: (ev) => { ev.preventDefault(); explain(q.cname || q.qname, q.client); },
        }))));
    }
    body.replaceChildren(fresh);
    $("#log-state").textContent = lines.length
      ? lines.length + " newest matching queries" + (r.count >= LOG_LINES ? " (of the last " + LOG_LINES + " the filters kept)" : "")
      : "No queries match.";
  }

  const logWrap = $("#log-wrap");
  logWrap.addEventListener("mouseenter", () => {
    state.paused = true;
    logWrap.classList.add("paused");
    $("#log-state").textContent = "Paused while the pointer is over the log.";
  });
  logWrap.addEventListener("mouseleave", () => {
    state.paused = false;
    logWrap.classList.remove("paused");
    refresh("log");
  });
  for (const id of ["#f-area", "#f-decision"]) $(id).addEventListener("change", () => refresh("log"));
  for (const id of ["#f-client", "#f-text"]) {
    let t = 0;
    $(id).addEventListener("input", () => { clearTimeout(t); t = setTimeout(() => refresh("log"), 300); });
  }
  $("#log-filters").addEventListener("submit", (ev) => { ev.preventDefault(); refresh("log"); });

  // --- explain ------------------------------------------------------------------

  async function explain(name, client) {
    $("#explain-name").value = name;
    $("#explain-client").value = client || "";
    $("#explain-section").scrollIntoView({ block: "nearest", behavior: "smooth" });
    await runExplain();
  }

  // What decided, in words, from the API's decided_by (whatever its exact fields).
  function decidedText(d) {
    if (!d || typeof d !== "object") return null;
    const what = nameOf(d.area) || d.name || d.label || (d.source && (d.source.label || d.source.note)) || d.pattern || d.id;
    let text = (d.kind ? d.kind + " " : "") + (what || "");
    if (d.line) text += ", line " + d.line;
    if (d.group) text += ", for group " + d.group;
    if (d.cname) text += ", via CNAME " + d.cname;
    return text.trim() || null;
  }

  async function runExplain() {
    const name = $("#explain-name").value.trim();
    const client = $("#explain-client").value.trim();
    const out = $("#explain-result");
    if (!name) return;
    const p = new URLSearchParams({ name });
    if (client) p.set("client", client);
    try {
      const r = await api("api/v1/explain?" + p);
      const head = el("p", { class: "verdict" }, badge(r.decision), " ",
        el("span", { class: "mono", text: r.name }), " for ", el("span", { class: "mono", text: r.client }),
        r.group ? " (group " + r.group + ")" : null);
      const by = decidedText(r.decided_by);
      if (by) head.append(el("span", { class: "decided-by", text: "decided by " + by }));
      if (!r.matches.length) {
        out.replaceChildren(head, el("p", { class: "note", text: "No area, rule or list matches this name: it is forwarded." }));
        return;
      }
      const rows = r.matches.map((m) => el("tr", {},
        el("td", {}, badge(m.action)),
        el("td", {}, el("div", { text: nameOf(m.area) || m.source }), el("div", { class: "mono", text: m.pattern }),
          m.impact ? el("div", { class: "impact-text", text: "If blocked: " + m.impact }) : null)));
      out.replaceChildren(head,
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "Action" }), el("th", { text: "Match" }))),
          el("tbody", {}, ...rows)));
    } catch (e) {
      out.replaceChildren(el("p", { class: "note error", text: e.message }));
    }
  }

  $("#explain-form").addEventListener("submit", (ev) => { ev.preventDefault(); runExplain(); });

  // --- not in the catalog -------------------------------------------------------

  async function loadUncatalogued() {
    const r = await api("api/v1/uncatalogued?limit=50");
    const body = $("#uncatalogued tbody");
    if (!r.names.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "empty", text: "None seen yet." })));
      return;
    }
    body.replaceChildren(...r.names.map((n) => el("tr", {},
      el("td", { class: "mono name" }, el("a", {
        href: "#explain-section", text: n.name,
        onclick: (ev) => { ev.preventDefault(); explain(n.name, ""); },
      })),
      num(n.count), when(n.first_seen), when(n.last_seen))));
  }

  // --- over time ----------------------------------------------------------------

  const PALETTE_LIGHT = ["#3182ce", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#e53e3e", "#718096"];
  const PALETTE_DARK = ["#63b3ed", "#f6ad55", "#68d391", "#b794f4", "#f687b3", "#4fd1c5", "#f6e05e", "#fc8181", "#a0aec0"];
  const dark = window.matchMedia("(prefers-color-scheme: dark)");

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function areaName(key) {
    const s = state.summary;
    const row = s && s.areas.concat(s.others || []).find((a) => a.id === key);
    return row ? rowLabel(row) : key === "none" ? "No match" : key;
  }

  // Sums the series of the window into stacked layers: [{label, values}], largest first.
  function layers(win, mode) {
    const n = win.times.length;
    const add = (map, key, counts) => {
      const v = map.get(key) || new Array(n).fill(0);
      counts.forEach((c, i) => { v[i] += c; });
      map.set(key, v);
    };
    const map = new Map();
    for (const s of win.series) {
      if (mode === "split") {
        if (s.decision === "block") add(map, "Blocked", s.counts);
        else if (FORWARDED.includes(s.decision)) add(map, "Forwarded", s.counts);
        else add(map, "Refused or invalid", s.counts);
      } else if (mode === "all" || (mode === "blocked" && s.decision === "block")
        || (mode === "forwarded" && FORWARDED.includes(s.decision))) {
        add(map, s.area, s.counts);
      }
    }
    let list = [...map.entries()].map(([key, values]) => ({
      label: mode === "split" ? key : areaName(key), values,
      total: values.reduce((a, b) => a + b, 0),
    })).filter((l) => l.total > 0);
    list.sort((a, b) => b.total - a.total);
    if (mode !== "split" && list.length > TOP_AREAS) {
      const rest = list.slice(TOP_AREAS - 1);
      const other = new Array(n).fill(0);
      for (const l of rest) l.values.forEach((c, i) => { other[i] += c; });
      list = list.slice(0, TOP_AREAS - 1).concat([{ label: "Other areas", values: other, total: 1 }]);
    }
    return list;
  }

  function drawChart() {
    const win = state.series;
    const host = $("#chart");
    if (!win || typeof uPlot === "undefined") return;
    const mode = $("#chart-mode").value;
    const list = layers(win, mode);
    $("#chart-empty").hidden = list.length > 0;
    if (state.chart) {
      state.chart.destroy();
      state.chart = null;
    }
    if (!list.length) {
      host.replaceChildren();
      return;
    }
    const palette = dark.matches ? PALETTE_DARK : PALETTE_LIGHT;
    const colors = mode === "split" ? [css("--block"), css("--allow"), css("--pass")] : palette;
    // Painter's stacking: each layer is drawn as the running sum, largest sum first,
    // opaque, so the next one covers its lower part. The legend shows the layer's own
    // count, not the sum.
    const n = win.times.length;
    const sums = [];
    let run = new Array(n).fill(0);
    for (const l of list) {
      run = run.map((v, i) => v + l.values[i]);
      sums.push(run);
    }
    const order = list.map((_, i) => i).reverse();
    const data = [win.times].concat(order.map((i) => sums[i]));
    const series = [{ label: "Time" }].concat(order.map((i) => ({
      label: list[i].label,
      stroke: colors[i % colors.length],
      fill: colors[i % colors.length],
      width: 1,
      points: { show: false },
      value: (u, v, si, idx) => (idx === null || idx === undefined) ? "—" : fmt.format(list[i].values[idx]),
    })));
    const axis = {
      stroke: css("--muted"),
      grid: { stroke: css("--line"), width: 1 },
      ticks: { stroke: css("--line"), width: 1 },
    };
    const width = Math.max(280, host.clientWidth || 600);
    state.chart = new uPlot({
      width,
      height: width < 500 ? 220 : 260,
      series,
      axes: [axis, Object.assign({}, axis, { size: 50, values: (u, vals) => vals.map((v) => fmt.format(v)) })],
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, max)] } },
      cursor: { points: { show: false } },
      legend: { live: true },
    }, data, host);
  }

  async function loadChart() {
    const step = state.range > 3600 ? 300 : 60;
    state.series = await api("api/v1/timeseries?span=" + state.range + "&step=" + step);
    drawChart();
  }

  document.querySelectorAll("[data-range]").forEach((b) => {
    b.addEventListener("click", () => {
      state.range = Number(b.dataset.range);
      document.querySelectorAll("[data-range]").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
      refresh("chart");
    });
  });
  $("#chart-mode").addEventListener("change", drawChart);
  dark.addEventListener("change", drawChart);
  let resizeTimer = 0;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (state.chart) state.chart.setSize({ width: Math.max(280, $("#chart").clientWidth), height: state.chart.height });
    }, 150);
  }).observe($("#chart-section"));

  // --- polling ------------------------------------------------------------------

  const loaders = { summary: loadSummary, log: loadLog, chart: loadChart, uncatalogued: loadUncatalogued };
  const busy = {};
  const failures = {};

  async function refresh(what) {
    if (busy[what]) return;
    busy[what] = true;
    try {
      await loaders[what]();
      failures[what] = null;
    } catch (e) {
      failures[what] = e.message;
    } finally {
      busy[what] = false;
    }
    const failed = Object.entries(failures).filter(([, m]) => m);
    if (failed.length) setStatus("Cannot load " + failed.map(([k, m]) => k + " (" + m + ")").join(", "), true);
    else setStatus("Updated " + new Date().toLocaleTimeString([], { hour12: false }));
  }

  function refreshAll() {
    loadChanges();
    for (const k of Object.keys(loaders)) refresh(k);
  }

  for (const [what, every] of Object.entries(POLL)) {
    setInterval(() => { if (!document.hidden) refresh(what); }, every);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshAll(); });
  refreshAll();
})();
