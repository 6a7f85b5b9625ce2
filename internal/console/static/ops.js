// plumb operations console. Reads the service through PlumbOps (opsapi.js)
// only. Every text from the server goes into the page with textContent,
// never innerHTML; charts are SVG built element by element.
"use strict";
(function () {
  const api = window.PlumbOps;
  const $ = (id) => document.getElementById(id);
  const MAX_ROWS = 500; // rows kept in the lead list, whatever the polling
  const SVG = "http://www.w3.org/2000/svg";
  const state = { tab: "leads", rows: [], next: "", timer: 0, selected: "", filters: {} };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }
  function status(id, text, cls) { const s = $(id); s.textContent = text; s.className = "status" + (cls ? " " + cls : ""); }
  function row(cells, onclick) {
    const tr = el("tr");
    for (const c of cells) {
      const td = el("td", c.cls || "", c.text);
      tr.appendChild(td);
    }
    if (onclick) tr.addEventListener("click", onclick);
    return tr;
  }
  function when(t) { if (!t) return ""; const d = new Date(t); return isNaN(d) ? String(t) : d.toLocaleString(); }
  function ms(v) { return v === undefined || v === null ? "" : String(Math.round(v * 10) / 10); }
  function pretty(body) {
    if (body === undefined || body === null) return "";
    if (typeof body !== "string") return JSON.stringify(body, null, 2);
    try { return JSON.stringify(JSON.parse(body), null, 2); } catch (e) { return body; }
  }

  // ---- polling: one timer, bounded interval, paused while hidden ----
  function interval() {
    let n = parseInt($("interval").value, 10);
    if (!(n >= 2)) n = 2;
    if (n > 60) n = 60;
    $("interval").value = n;
    return n * 1000;
  }
  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, interval());
  }
  async function tick() {
    if (!document.hidden) {
      try {
        if (state.tab === "leads" && $("live").checked) await refreshLeads(false);
        else if (state.tab === "health") await loadHealth();
        else if (state.tab === "hooks") await loadHooks();
      } catch (e) { /* shown by the loaders */ }
    }
    schedule();
  }

  // ---- tabs ----
  function showTab(name) {
    state.tab = name;
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === name);
    for (const p of document.querySelectorAll("main > .panel")) p.hidden = p.id !== "panel-" + name;
    if (name === "health") loadHealth();
    if (name === "dead") loadDead();
    if (name === "hooks") loadHooks();
    if (name === "leads") refreshLeads(true);
  }

  // ---- leads ----
  function readFilters() {
    const f = {};
    for (const k of ["integration", "outcome", "class", "batch", "q"]) f[k] = $("f-" + k).value.trim();
    for (const k of ["since", "until"]) {
      const v = $("f-" + k).value;
      f[k] = v ? new Date(v).toISOString() : "";
    }
    return f;
  }
  // bounded keeps the newest MAX_ROWS leads: every path that adds rows
  // goes through it
  function bounded(rows) { return rows.length > MAX_ROWS ? rows.slice(0, MAX_ROWS) : rows; }
  async function refreshLeads(reset) {
    if (reset) { state.filters = readFilters(); $("export").href = api.exportURL(state.filters); }
    let page;
    try { page = await api.leads(state.filters, ""); }
    catch (e) { status("leads-status", "Lead list: " + e.message, "bad"); return; }
    if (reset) { state.rows = bounded(page.rows); state.next = page.next; }
    else {
      // merge the newest page in front of what is shown, by id
      const seen = new Set(page.rows.map((r) => r.id));
      state.rows = bounded(page.rows.concat(state.rows.filter((r) => !seen.has(r.id))));
      if (!state.next) state.next = page.next;
    }
    drawLeads();
    showBatch();
  }
  // showBatch sums up the batch the list is filtered by.
  async function showBatch() {
    const id = state.filters.batch, p = $("batch");
    if (!id) { p.hidden = true; return; }
    let b;
    try { b = await api.batch(id); }
    catch (e) { p.textContent = "Batch " + id + ": " + e.message; p.hidden = false; return; }
    if (state.filters.batch !== id) return;
    const counts = (m) => Object.keys(m || {}).sort().map((k) => k + " " + m[k]).join(", ");
    p.textContent = "Batch " + b.id + " (" + (b.integration || "") + "): " + b.total + " leads, " + (b.done ? "done" : "not done") +
      "; states: " + counts(b.state) + "; outcomes: " + counts(b.outcomes);
    p.hidden = false;
  }
  async function moreLeads() {
    if (!state.next || state.rows.length >= MAX_ROWS || state.loadingMore) return;
    let page;
    state.loadingMore = true;
    try { page = await api.leads(state.filters, state.next); }
    catch (e) { status("leads-status", "Lead list: " + e.message, "bad"); return; }
    finally { state.loadingMore = false; }
    const seen = new Set(state.rows.map((r) => r.id));
    state.rows = bounded(state.rows.concat(page.rows.filter((r) => !seen.has(r.id))));
    state.next = page.next;
    drawLeads();
  }
  function drawLeads() {
    const tb = $("leads").tBodies[0];
    clear(tb);
    for (const r of state.rows) {
      const tr = row([{ text: when(r.time) }, { text: r.id, cls: "mono" }, { text: r.integration }, { text: r.source },
        { text: r.outcome, cls: "o-" + r.outcome }, { text: r.class }, { text: r.reason }, { text: ms(r.duration_ms) }],
      () => openLead(r.id));
      tr.dataset.id = r.id;
      if (r.id === state.selected) tr.classList.add("sel");
      tb.appendChild(tr);
    }
    $("more").hidden = !state.next || state.rows.length >= MAX_ROWS;
    status("leads-status", state.rows.length + " lead" + (state.rows.length === 1 ? "" : "s") + " shown" +
      (state.rows.length >= MAX_ROWS ? " (the newest " + MAX_ROWS + "; narrow the filters for older ones)" : ""));
  }

  async function openLead(id) {
    state.selected = id;
    for (const tr of $("leads").tBodies[0].rows) tr.classList.toggle("sel", tr.dataset.id === id);
    const pane = $("lead-pane");
    clear(pane);
    pane.appendChild(el("p", "status", "Loading " + id + "…"));
    let lead;
    try { lead = await api.lead(id); }
    catch (e) { clear(pane); pane.appendChild(el("p", "error", e.message)); return; }
    if (state.selected !== id) return;
    clear(pane);
    const h = el("h2", "", "Lead ");
    h.appendChild(el("span", "mono", lead.id));
    pane.appendChild(h);
    const info = el("p", "");
    info.appendChild(el("span", "o-" + lead.outcome, lead.outcome));
    const bits = [lead.integration, lead.source, lead.batch && "batch " + lead.batch, lead.class, lead.duration_ms !== undefined && ms(lead.duration_ms) + " ms", lead.request_id && "request " + lead.request_id];
    info.appendChild(document.createTextNode(" " + bits.filter(Boolean).join(" · ")));
    pane.appendChild(info);
    if (lead.reason) pane.appendChild(el("p", "reason", lead.reason));
    pane.appendChild(el("h3", "", "Timeline"));
    pane.appendChild(timeline(lead.steps));
    if (lead.lead) { pane.appendChild(el("h3", "", "Lead (as run, masked)")); pane.appendChild(el("pre", "code", pretty(lead.lead))); }
  }

  // timeline: one row per step; steps of one parallel group side by side.
  function timeline(steps) {
    const box = el("div", "timeline");
    box.id = "timeline";
    let i = 0;
    while (i < steps.length) {
      const g = steps[i].group;
      const rowEl = el("div", "tl-row");
      do { rowEl.appendChild(stepBox(steps[i])); i++; } while (g && i < steps.length && steps[i].group === g);
      if (rowEl.children.length > 1) rowEl.classList.add("parallel");
      box.appendChild(rowEl);
    }
    if (!steps.length) box.appendChild(el("p", "note", "No steps recorded."));
    return box;
  }
  function stepBox(s) {
    const d = el("div", "tl-step");
    d.dataset.step = s.name;
    const h = el("h4", "", s.name + " ");
    h.appendChild(el("span", "o-" + s.outcome, s.outcome));
    d.appendChild(h);
    d.appendChild(el("div", "note", [s.method, s.url, s.status && "HTTP " + s.status, s.attempts + " tr" + (s.attempts === 1 ? "y" : "ies"), ms(s.duration_ms) + " ms", s.class].filter(Boolean).join(" · ")));
    if (s.reason) d.appendChild(el("div", "reason", s.reason));
    for (const t of s.tries) d.appendChild(tryBox(s, t));
    return d;
  }
  function tryBox(s, t) {
    const d = el("div", "tl-try");
    d.appendChild(el("div", "", "try " + t.attempt + (t.fallback ? " (fallback)" : "") + " · " + (t.status ? "HTTP " + t.status : (t.class || "no answer")) +
      " · " + ms(t.duration_ms) + " ms" + (t.rule ? " · " + t.rule : "") + (t.error ? " · " + t.error : "")));
    if (t.request) {
      const det = el("details");
      det.appendChild(el("summary", "", "request and response"));
      det.appendChild(el("pre", "code", (t.request.method || "") + " " + (t.request.url || "") + "\n" + headers(t.request.header) + "\n" + pretty(t.request.body)));
      if (t.response) det.appendChild(el("pre", "code", "HTTP " + (t.response.status || "") + "\n" + headers(t.response.header) + "\n" + pretty(t.response.body)));
      const btn = el("button", "copy-curl", "Copy as curl");
      btn.type = "button";
      const out = el("pre", "code curl");
      out.hidden = true;
      btn.addEventListener("click", () => {
        out.textContent = curl(t.request);
        out.hidden = false;
        if (navigator.clipboard) navigator.clipboard.writeText(out.textContent).catch(() => {});
      });
      det.appendChild(btn);
      det.appendChild(out);
      d.appendChild(det);
    } else {
      d.appendChild(el("div", "note", "request and response not kept for this try"));
    }
    return d;
  }
  // headers as text; a header named like a credential shows ****
  function headers(h) {
    if (!h) return "";
    return Object.keys(h).map((k) => k + ": " + (SECRET_HEADER.test(k) ? "****" : [].concat(h[k]).join(", "))).join("\n");
  }
  // a header whose value is a credential is shown as ****, whatever the
  // service sent (it masks secrets already; this covers what it could not know)
  const SECRET_HEADER = /authorization|cookie|token|secret|key|signature|password|auth/i;
  function shq(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }
  function curl(req) {
    const parts = ["curl", "-X", req.method || "GET", shq(req.url || "")];
    const h = req.header || {};
    for (const k of Object.keys(h)) {
      const v = SECRET_HEADER.test(k) ? "****" : [].concat(h[k]).join(", ");
      parts.push("-H", shq(k + ": " + v));
    }
    if (req.body) parts.push("--data-raw", shq(typeof req.body === "string" ? req.body : JSON.stringify(req.body)));
    return parts.join(" ");
  }

  // ---- health ----
  async function loadHealth() {
    let d;
    try { d = await api.stats($("h-integration").value, $("h-window").value); }
    catch (e) { status("health-status", "Health: " + e.message, "bad"); return; }
    const box = $("health");
    clear(box);
    const cards = el("div", "cards");
    for (const s of d.integrations) cards.appendChild(healthCard(s, d.step_seconds));
    box.appendChild(cards);
    status("health-status", d.integrations.length ? "Window " + d.window + ", " + d.step_seconds + " s steps." : "No lead has finished in this window.");
  }
  function healthCard(s, step) {
    const c = el("div", "card");
    c.dataset.integration = s.integration;
    c.appendChild(el("h3", "", s.integration));
    const nums = el("div", "nums");
    const t = s.total;
    const num = (label, v) => { const d = el("div", "", label); d.insertBefore(el("b", "", v), d.firstChild); nums.appendChild(d); };
    num("leads", t.leads);
    num("leads/s", (Math.round(s.leads_per_s * 1000) / 1000).toString());
    num("success", s.success_rate === undefined || s.success_rate === null ? "–" : (Math.round(s.success_rate * 1000) / 10) + "%");
    num("p50 ms", t.p50_ms === undefined ? "–" : t.p50_ms);
    num("p95 ms", t.p95_ms === undefined ? "–" : t.p95_ms);
    num("p99 ms", t.p99_ms === undefined ? "–" : t.p99_ms);
    c.appendChild(nums);
    c.appendChild(el("div", "legend", "Leads per " + step + " s step: success, failure, error, skip"));
    c.appendChild(barChart(s.points));
    c.appendChild(el("div", "legend", "Latency p50 / p95 / p99 (ms)"));
    c.appendChild(lineChart(s.points));
    const cls = t.classes || {};
    const keys = Object.keys(cls).sort((a, b) => cls[b] - cls[a]);
    const tbl = el("table", "kv list classes");
    tbl.appendChild(el("caption", "legend", keys.length ? "Failures and errors by class" : "No failures or errors"));
    for (const k of keys) tbl.appendChild(row([{ text: k }, { text: cls[k] }]));
    c.appendChild(tbl);
    return c;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  const W = 600, H = 120;
  function barChart(points) {
    const s = svg("svg", { class: "chart bars", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
    const top = Math.max(1, ...points.map((p) => p.leads));
    const bw = W / Math.max(1, points.length);
    points.forEach((p, i) => {
      let y = H;
      for (const k of ["success", "failure", "error", "skip"]) {
        if (!p[k]) continue;
        const h = (p[k] / top) * (H - 12);
        y -= h;
        s.appendChild(svg("rect", { class: "s-" + k, x: (i * bw).toFixed(2), y: y.toFixed(2), width: Math.max(bw - 0.5, 0.5).toFixed(2), height: h.toFixed(2) }));
      }
    });
    const lbl = svg("text", { x: 4, y: 10 });
    lbl.textContent = "max " + top;
    s.appendChild(lbl);
    return s;
  }
  function lineChart(points) {
    const s = svg("svg", { class: "chart lines", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
    const top = Math.max(1, ...points.map((p) => p.p99_ms || 0));
    const bw = W / Math.max(1, points.length);
    for (const k of ["p50", "p95", "p99"]) {
      let d = "";
      points.forEach((p, i) => {
        const v = p[k + "_ms"];
        if (v === undefined) return;
        const x = (i + 0.5) * bw, y = H - (v / top) * (H - 12);
        d += (d ? " L" : "M") + x.toFixed(2) + " " + y.toFixed(2);
      });
      if (d) s.appendChild(svg("path", { class: "l-" + k, d }));
      if (d && d.indexOf(" L") < 0) { // one point: a dot
        const xy = d.slice(1).split(" ");
        s.appendChild(svg("circle", { class: "l-" + k, cx: xy[0], cy: xy[1], r: 3 }));
      }
    }
    const lbl = svg("text", { x: 4, y: 10 });
    lbl.textContent = "max " + top + " ms";
    s.appendChild(lbl);
    return s;
  }

  // ---- dead letters ----
  async function loadDead() {
    let list;
    try { list = await api.dead(100); }
    catch (e) { status("dead-status", "Dead letters: " + e.message, "bad"); return; }
    const tb = $("dead").tBodies[0];
    clear(tb);
    for (const d of list) {
      const tr = row([{ text: when(d.died) }, { text: d.id, cls: "mono" }, { text: d.integration }, { text: d.deliveries }, { text: d.error }, { text: "" }],
        () => inspectDead(d));
      tr.dataset.id = d.id;
      const btn = el("button", "retry", "Retry");
      btn.type = "button";
      btn.addEventListener("click", (ev) => { ev.stopPropagation(); retry(d.id, btn); });
      tr.lastChild.appendChild(btn);
      tb.appendChild(tr);
    }
    status("dead-status", list.length ? list.length + " dead letter" + (list.length === 1 ? "" : "s") + "." : "No dead letters.");
  }
  function inspectDead(d) {
    const pane = $("dead-pane");
    clear(pane);
    const h = el("h2", "", "Dead letter ");
    h.appendChild(el("span", "mono", d.id));
    pane.appendChild(h);
    pane.appendChild(el("p", "", d.integration + " · " + d.deliveries + " deliveries · enqueued " + when(d.enqueued) + " · died " + when(d.died)));
    pane.appendChild(el("p", "reason", d.error));
    pane.appendChild(el("h3", "", "Lead"));
    pane.appendChild(el("pre", "code", pretty(d.lead)));
  }
  async function retry(id, btn) {
    btn.disabled = true;
    try {
      const a = await api.retry(id);
      await loadDead();
      status("dead-status", "Retried " + id + ": queued again as " + a.id + ".", "good");
    } catch (e) {
      status("dead-status", "Retry " + id + ": " + e.message, "bad");
      btn.disabled = false;
    }
  }

  // ---- webhook deliveries ----
  async function loadHooks() {
    let list;
    try { list = await api.deliveries($("w-integration").value); }
    catch (e) { status("hooks-status", "Deliveries: " + e.message, "bad"); return; }
    const tb = $("hooks").tBodies[0];
    clear(tb);
    for (const d of list) {
      tb.appendChild(row([{ text: when(d.time) }, { text: d.integration }, { text: d.verdict, cls: "o-" + d.verdict }, { text: d.result },
        { text: d.status }, { text: d.id || "", cls: "mono" }, { text: d.bytes }], () => showHook(d)));
    }
    status("hooks-status", list.length ? list.length + " recent deliveries." : "No webhook deliveries since the service started.");
  }
  function showHook(d) {
    const pane = $("hook-pane");
    clear(pane);
    pane.appendChild(el("h2", "", "Delivery to " + d.integration));
    pane.appendChild(el("p", "o-" + d.verdict, d.verdict + " (" + d.result + ", HTTP " + d.status + ")"));
    pane.appendChild(el("h3", "", "Log"));
    const ul = el("ul", "log");
    for (const l of d.log || []) ul.appendChild(el("li", "", l));
    pane.appendChild(ul);
    pane.appendChild(el("h3", "", "Headers kept"));
    pane.appendChild(el("pre", "code", headers(d.header)));
  }

  // ---- start ----
  async function start() {
    for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
    $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); refreshLeads(true); });
    $("more").addEventListener("click", moreLeads);
    $("interval").addEventListener("change", schedule);
    $("h-integration").addEventListener("change", loadHealth);
    $("h-window").addEventListener("change", loadHealth);
    $("w-integration").addEventListener("change", loadHooks);
    try {
      const list = await api.integrations();
      for (const id of ["f-integration", "h-integration", "w-integration"]) {
        for (const i of list) { const o = el("option", "", i.name); o.value = i.name; $(id).appendChild(o); }
      }
    } catch (e) { status("leads-status", "Integrations: " + e.message, "bad"); }
    const tab = (location.hash || "").slice(1);
    showTab(["leads", "health", "dead", "hooks"].includes(tab) ? tab : "leads");
    schedule();
  }
  start();
})();
