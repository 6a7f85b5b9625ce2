// plumb test console. Every text from the server or a partner goes into
// the page with textContent: never innerHTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { id: "", info: null, yamlSaved: "", runID: "", validateTimer: 0 };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  async function api(method, path, body) {
    const opts = { method, headers: { "X-Plumb-Console": "1" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch("/console/api/" + path, opts);
    let data;
    try { data = await resp.json(); } catch (e) { data = { error: "unreadable answer (HTTP " + resp.status + ")" }; }
    if (!resp.ok) throw new Error(data.error || ("HTTP " + resp.status));
    return data;
  }

  function setStatus(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = "status" + (cls ? " " + cls : "");
  }

  // ---- picking an integration ----
  async function load(id) {
    const seq = (state.loads = (state.loads || 0) + 1);
    state.id = id;
    state.runID = "";
    $("summary").hidden = true;
    $("tries-title").hidden = true;
    clear($("tries"));
    clear($("run-errors"));
    setStatus("Loading…");
    let info;
    try { info = await api("GET", "integration?id=" + encodeURIComponent(id)); }
    catch (e) { if (seq === state.loads) setStatus(e.message, "bad"); return; }
    if (seq !== state.loads) return; // another integration was picked meanwhile
    state.info = info;
    $("lead").value = info.lead || "{}";
    fillSettings(info.settings || []);
    fillSteps(info.steps || []);
    $("test-file").textContent = info.test_file;
    $("yaml-file").textContent = info.id;
    state.yamlSaved = info.yaml || "";
    $("yaml").value = state.yamlSaved;
    $("yaml").readOnly = !!info.yaml_hidden;
    $("yaml-hidden").hidden = !info.yaml_hidden;
    $("yaml-hidden").textContent = info.yaml_hidden || "";
    showYAMLErrors(info.errors || []);
    yamlChanged(false);
    setStatus(info.errors && info.errors.length ? "This integration does not load: see the YAML tab." : "Ready. Edit the lead, then Run flow.", info.errors && info.errors.length ? "bad" : "");
    const url = new URL(location.href);
    url.searchParams.set("integration", id);
    history.replaceState(null, "", url);
  }

  function fillSettings(list) {
    const body = $("settings").tBodies[0];
    clear(body);
    for (const s of list) {
      const tr = el("tr");
      const name = el("th", "", s.name);
      if (s.required) name.appendChild(el("span", "req", " *"));
      tr.appendChild(name);
      const td = el("td");
      const input = el("input");
      input.dataset.name = s.name;
      input.dataset.secret = s.secret ? "1" : "";
      input.dataset.original = s.secret ? "" : (s.value || "");
      if (s.secret) {
        input.type = "password";
        input.autocomplete = "off";
        input.placeholder = s.set ? "•••••• (set, hidden)" : "not set";
      } else {
        input.type = "text";
        input.value = s.value || "";
        input.placeholder = s.set ? "" : "not set";
      }
      input.setAttribute("aria-label", "setting " + s.name);
      td.appendChild(input);
      const meta = [s.type];
      if (s.secret) meta.push("secret");
      if (s.source) meta.push("from " + s.source);
      td.appendChild(el("div", "meta", meta.join(" · ")));
      tr.appendChild(td);
      body.appendChild(tr);
    }
    if (!list.length) {
      const tr = el("tr");
      tr.appendChild(el("td", "note", "This integration declares no settings."));
      body.appendChild(tr);
    }
  }

  function fillSteps(steps) {
    const sel = $("step");
    clear(sel);
    for (const s of steps) {
      const o = el("option", "", s);
      o.value = s;
      sel.appendChild(o);
    }
    $("run-step").disabled = !steps.length;
  }

  function overrides() {
    const out = {};
    for (const input of $("settings").querySelectorAll("input[data-name]")) {
      if (input.dataset.secret) {
        if (input.value !== "") out[input.dataset.name] = input.value;
      } else if (input.value !== input.dataset.original) {
        out[input.dataset.name] = input.value;
      }
    }
    return out;
  }

  // ---- running ----
  async function run(step) {
    let lead;
    $("lead-error").hidden = true;
    try {
      lead = JSON.parse($("lead").value || "{}");
      if (lead === null || typeof lead !== "object" || Array.isArray(lead)) throw new Error("the lead must be a JSON object");
    } catch (e) {
      $("lead-error").textContent = "Lead: " + e.message;
      $("lead-error").hidden = false;
      return;
    }
    const req = { id: state.id, lead, settings: overrides() };
    if (step) {
      req.step = step;
      const prior = $("prior").value.trim();
      if (prior) {
        try { req.prior = JSON.parse(prior); } catch (e) { $("lead-error").textContent = "Captures: " + e.message; $("lead-error").hidden = false; return; }
      }
    }
    if ($("yaml").value !== state.yamlSaved && !$("yaml").readOnly) req.yaml = $("yaml").value;
    setStatus(step ? "Running step " + step + "…" : "Running the flow…", "busy");
    $("run-flow").disabled = $("run-step").disabled = true;
    try {
      const out = await api("POST", "run", req);
      show(out);
      remember(out, step);
    } catch (e) {
      setStatus(e.message, "bad");
    } finally {
      $("run-flow").disabled = $("run-step").disabled = false;
    }
  }

  // ---- the session's runs: the last MAX_RUNS, in the page only ----
  const MAX_RUNS = 50;
  const runs = [];
  let runSeq = 0;
  function remember(out, step) {
    const res = out.result || {};
    const text = (out.tries || []).map((t) => "# " + t.step + " try " + t.attempt + (t.status ? " HTTP " + t.status : "") +
      (t.error ? " " + t.error : "") + "\n" + (t.response_pretty || t.response_body || "")).join("\n");
    runs.push({ n: ++runSeq, at: new Date(), id: state.id, step: step || "", outcome: res.outcome || "(did not load)", text });
    while (runs.length > MAX_RUNS) runs.shift();
    drawRuns();
  }
  function drawRuns() {
    const ul = $("history");
    clear(ul);
    for (let i = runs.length - 1; i >= 0; i--) {
      const r = runs[i];
      const li = el("li");
      li.dataset.n = r.n;
      const cb = el("input");
      cb.type = "checkbox";
      cb.value = r.n;
      li.appendChild(cb);
      li.appendChild(el("span", "", "#" + r.n + " " + r.at.toLocaleTimeString() + " " + r.id + (r.step ? " step " + r.step : "") + " → "));
      li.appendChild(el("span", "outcome " + r.outcome, r.outcome));
      ul.appendChild(li);
    }
    $("history-count").textContent = String(runs.length);
  }
  // diffRuns shows a line diff of two runs' responses: the two checked,
  // else the last two.
  function diffRuns() {
    const picked = Array.from(document.querySelectorAll("#history input:checked")).map((c) => Number(c.value));
    let pair = runs.filter((r) => picked.includes(r.n));
    if (pair.length !== 2) pair = runs.slice(-2);
    const box = $("diff");
    clear(box);
    box.hidden = false;
    if (pair.length !== 2) { box.appendChild(el("span", "", "Run twice (or check two runs) to compare their responses.")); return; }
    box.appendChild(el("div", "note", "--- run #" + pair[0].n + "   +++ run #" + pair[1].n));
    for (const d of lineDiff(pair[0].text.split("\n"), pair[1].text.split("\n"))) {
      box.appendChild(el("div", d[0] === "+" ? "add" : d[0] === "-" ? "del" : "", d));
    }
  }
  // lineDiff: a longest-common-subsequence line diff, bounded (at most
  // 400 lines a side are compared; the rest is summarised).
  function lineDiff(a, b) {
    const MAX = 400;
    const cut = a.length > MAX || b.length > MAX;
    a = a.slice(0, MAX); b = b.slice(0, MAX);
    const m = a.length, n = b.length;
    const L = Array.from({ length: m + 1 }, () => new Uint16Array(n + 1));
    for (let i = m - 1; i >= 0; i--) for (let j = n - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < m || j < n) {
      if (i < m && j < n && a[i] === b[j]) { out.push("  " + a[i]); i++; j++; }
      else if (j < n && (i === m || L[i][j + 1] >= L[i + 1][j])) { out.push("+ " + b[j]); j++; }
      else { out.push("- " + a[i]); i++; }
    }
    if (cut) out.push("  … (only the first " + MAX + " lines of each are compared)");
    return out;
  }

  function fmtMS(v) { return (Math.round((v || 0) * 10) / 10) + " ms"; }

  function show(out) {
    clear($("tries"));
    clear($("run-errors"));
    // a run that reached origins the saved file does not name ran without
    // the service's stored secrets: say why
    $("run-note").textContent = out.note || "";
    $("run-note").hidden = !out.note;
    $("save-status").textContent = "";
    $("saved-yaml").hidden = true;
    if (out.errors && out.errors.length) {
      $("summary").hidden = true;
      setStatus("The integration did not load" + (out.draft ? " (unsaved YAML)" : "") + ":", "bad");
      const ul = el("ul", "errors");
      for (const e of out.errors) ul.appendChild(el("li", "", (e.line ? "line " + e.line + ": " : "") + e.message + (e.hint ? " (" + e.hint + ")" : "")));
      $("run-errors").appendChild(ul);
      showYAMLErrors(out.errors);
      return;
    }
    const r = out.result;
    state.runID = out.run_id;
    setStatus((out.step ? "Step " + out.step : "Flow") + " ran" + (out.draft ? " with the unsaved YAML" : "") + " in " + fmtMS(r.duration_ms) + ".", "");
    $("summary").hidden = false;
    const oc = $("outcome");
    oc.textContent = r.outcome;
    oc.className = "outcome " + r.outcome;
    $("reason").textContent = r.reason ? "Reason: " + r.reason + (r.class ? " [" + r.class + "]" : "") : "";
    const tb = $("steps-table").tBodies[0];
    clear(tb);
    const captured = {}, appended = {}, notes = $("capture-notes");
    clear(notes);
    for (const s of r.steps || []) {
      for (const n of s.notes || []) notes.appendChild(el("li", "", s.name + ": " + n));
      const tr = el("tr");
      tr.appendChild(el("td", "", s.name));
      tr.appendChild(el("td", "st " + s.outcome, s.outcome));
      tr.appendChild(el("td", "", s.status || ""));
      tr.appendChild(el("td", "", s.attempts));
      tr.appendChild(el("td", "", fmtMS(s.duration_ms)));
      tr.appendChild(el("td", "", s.reason || ""));
      tb.appendChild(tr);
      if (s.captured) captured[s.name] = s.captured;
      if (s.appended) Object.assign(appended, s.appended);
    }
    $("captured").textContent = Object.keys(captured).length ? JSON.stringify(captured, null, 2) : "(nothing)";
    notes.hidden = !notes.childElementCount;
    $("appended").textContent = Object.keys(appended).length ? JSON.stringify(appended, null, 2) : "(nothing)";
    $("save-case").disabled = !out.savable;
    $("case-name").disabled = !out.savable;
    if (!out.savable) $("save-status").textContent = out.unsavable || "";
    $("tries-title").hidden = !(out.tries && out.tries.length);
    (out.tries || []).forEach((t, i) => $("tries").appendChild(tryCard(t, i)));
  }

  function headersText(h) {
    if (!h) return "";
    return Object.keys(h).sort().map((k) => k + ": " + h[k].join(", ")).join("\n");
  }

  function tryCard(t, i) {
    const card = el("article", "try");
    card.dataset.index = i;
    const head = el("h3");
    head.appendChild(el("span", "step", t.step));
    head.appendChild(el("span", "attempt", "try " + t.attempt + (t.fallback ? " (fallback)" : "")));
    head.appendChild(el("span", "http " + (t.status >= 200 && t.status < 300 ? "ok" : "bad"), t.status ? "HTTP " + t.status : "no answer"));
    head.appendChild(el("span", "total", fmtMS(t.timing.total_ms)));
    card.appendChild(head);
    if (t.error) card.appendChild(el("p", "error", t.error));
    if (t.action) card.appendChild(el("p", "action", "then: " + t.action));
    card.appendChild(timings(t.timing));
    const req = el("details", "request");
    req.open = true;
    req.appendChild(el("summary", "", "Request"));
    req.appendChild(el("pre", "code line", t.method + " " + t.url));
    const rh = headersText(t.request_header);
    if (rh) req.appendChild(el("pre", "code headers", rh));
    if (t.request_body) req.appendChild(el("pre", "code body", t.request_pretty || t.request_body));
    card.appendChild(req);
    const resp = el("details", "response");
    resp.open = true;
    resp.appendChild(el("summary", "", "Response"));
    const sh = headersText(t.response_header);
    if (t.status) resp.appendChild(el("pre", "code line", "HTTP " + t.status));
    if (sh) resp.appendChild(el("pre", "code headers", sh));
    if (t.response_body) {
      const body = el("pre", "code body response-body", t.response_pretty || t.response_body);
      resp.appendChild(body);
      if (t.response_pretty) {
        const raw = el("details", "raw");
        raw.appendChild(el("summary", "", "raw body"));
        raw.appendChild(el("pre", "code body", t.response_body));
        resp.appendChild(raw);
      }
    } else if (t.status) {
      resp.appendChild(el("p", "note", "(empty body)"));
    }
    card.appendChild(resp);
    return card;
  }

  function timings(tm) {
    const wrap = el("div", "timings");
    const total = Math.max(tm.total_ms || 0, 0.001);
    const bar = el("div", "bar");
    const parts = [["dns", tm.dns_ms, "DNS"], ["connect", tm.connect_ms, "connect"], ["tls", tm.tls_ms, "TLS"], ["wait", Math.max((tm.first_byte_ms || 0) - (tm.dns_ms || 0) - (tm.connect_ms || 0) - (tm.tls_ms || 0), 0), "waiting"]];
    for (const [cls, v] of parts) {
      const seg = el("span", "seg " + cls);
      seg.style.width = Math.min(100, (100 * (v || 0)) / total) + "%";
      bar.appendChild(seg);
    }
    wrap.appendChild(bar);
    const dl = el("dl");
    for (const [label, v] of [["DNS", tm.dns_ms], ["connect", tm.connect_ms], ["TLS", tm.tls_ms], ["first byte", tm.first_byte_ms], ["total", tm.total_ms]]) {
      dl.appendChild(el("dt", "", label));
      dl.appendChild(el("dd", "", fmtMS(v)));
    }
    wrap.appendChild(dl);
    return wrap;
  }

  // ---- saving a test case ----
  async function saveCase() {
    if (!state.runID) return;
    $("save-case").disabled = true;
    $("save-status").textContent = "Saving…";
    try {
      const out = await api("POST", "save-case", { run_id: state.runID, name: $("case-name").value });
      const st = $("save-status");
      st.textContent = "Saved “" + out.name + "” to " + out.file + (out.passed ? " — plumb test passes on it." : " — but it does not pass: " + (out.failures || []).join("; "));
      st.className = "note " + (out.passed ? "good" : "bad");
      $("saved-yaml").textContent = out.yaml;
      $("saved-yaml").hidden = false;
    } catch (e) {
      $("save-status").textContent = e.message;
      $("save-status").className = "note bad";
    } finally {
      $("save-case").disabled = false;
    }
  }

  // ---- the YAML editor ----
  function gutter(errors) {
    const lines = $("yaml").value.split("\n").length;
    const bad = new Set((errors || []).filter((e) => !e.other && e.line).map((e) => e.line));
    const g = $("gutter");
    clear(g);
    for (let i = 1; i <= lines; i++) {
      const n = el("span", bad.has(i) ? "ln bad" : "ln", i);
      g.appendChild(n);
      g.appendChild(document.createTextNode("\n"));
    }
    g.scrollTop = $("yaml").scrollTop;
  }

  function showYAMLErrors(errors) {
    state.errors = errors;
    const ul = $("yaml-errors");
    clear(ul);
    for (const e of errors) {
      const li = el("li", "yaml-error");
      const where = e.other ? (e.file + ":" + e.line) : (e.line ? "line " + e.line + (e.col ? ", col " + e.col : "") : "");
      if (where) {
        const a = el("button", "goto", where);
        a.type = "button";
        if (!e.other && e.line) a.addEventListener("click", () => gotoLine(e.line, e.col));
        li.appendChild(a);
      }
      li.appendChild(el("span", "msg", e.message));
      if (e.hint) li.appendChild(el("span", "hint", " (" + e.hint + ")"));
      ul.appendChild(li);
    }
    gutter(errors);
    $("tab-yaml").classList.toggle("has-errors", errors.length > 0);
  }

  function gotoLine(line, col) {
    const ta = $("yaml");
    const lines = ta.value.split("\n");
    let pos = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    pos += Math.max((col || 1) - 1, 0);
    ta.focus();
    ta.setSelectionRange(pos, pos);
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 18;
    ta.scrollTop = Math.max(0, (line - 5) * lh);
  }

  function yamlChanged(validate) {
    const dirty = $("yaml").value !== state.yamlSaved;
    $("yaml-state").textContent = dirty ? "unsaved changes" : "saved";
    $("yaml-state").className = "note" + (dirty ? " warn" : "");
    $("draft-note").hidden = !dirty;
    gutter(state.errors);
    if (validate) {
      clearTimeout(state.validateTimer);
      state.validateTimer = setTimeout(checkYAML, 400);
    }
  }

  async function checkYAML() {
    try {
      const out = await api("POST", "validate", { id: state.id, yaml: $("yaml").value });
      showYAMLErrors(out.errors || []);
      $("yaml-state").textContent = ($("yaml").value !== state.yamlSaved ? "unsaved changes · " : "") + (out.ok ? "loads" : out.errors.length + " problem" + (out.errors.length === 1 ? "" : "s")) +
        (out.new_origins && out.new_origins.length ? " · new origins for the stored secrets: " + out.new_origins.join(", ") : "");
      if (out.ok) fillSteps(out.steps || []);
      return out;
    } catch (e) {
      $("yaml-state").textContent = e.message;
    }
  }

  // saveYAML saves the file; confirm lists the new origins the user agreed
  // to send the service's stored secrets to, after the server asked.
  async function saveYAML(confirm) {
    $("origins-confirm").hidden = true;
    const req = { id: state.id, yaml: $("yaml").value };
    if (confirm) req.confirm_origins = confirm;
    try {
      const out = await api("POST", "save-yaml", req);
      showYAMLErrors(out.errors || []);
      if (out.saved) {
        state.yamlSaved = req.yaml;
        yamlChanged(false);
        $("yaml-state").textContent = "saved";
      } else if (out.ok && out.new_origins && out.new_origins.length) {
        askOrigins(out, req.yaml);
      } else {
        $("yaml-state").textContent = "not saved: fix the problems first";
        $("yaml-state").className = "note bad";
      }
    } catch (e) {
      $("yaml-state").textContent = e.message;
    }
  }

  // askOrigins shows the origins a save would newly send stored secrets to
  // and saves only when the user confirms them, for the text they saw.
  function askOrigins(out, yaml) {
    $("origins-text").textContent = out.confirm || "Saving sends the service's stored secrets to new origins.";
    const ul = $("origins-list");
    clear(ul);
    for (const o of out.new_origins) ul.appendChild(el("li", "", o));
    $("yaml-state").textContent = "not saved: confirm the new origins";
    $("yaml-state").className = "note warn";
    $("origins-confirm").hidden = false;
    state.pendingOrigins = { yaml, origins: out.new_origins };
  }

  function confirmOrigins() {
    const p = state.pendingOrigins;
    state.pendingOrigins = null;
    if (!p || p.yaml !== $("yaml").value) { $("origins-confirm").hidden = true; return; }
    saveYAML(p.origins);
  }

  function tab(name) {
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === name);
    $("panel-run").hidden = name !== "run";
    $("panel-yaml").hidden = name !== "yaml";
    if (name === "yaml") gutter(state.errors);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const sel = $("integration");
    sel.addEventListener("change", () => load(sel.value));
    $("run-flow").addEventListener("click", () => run(""));
    $("diff-runs").addEventListener("click", diffRuns);
    $("run-step").addEventListener("click", () => run($("step").value));
    $("save-case").addEventListener("click", saveCase);
    $("yaml").addEventListener("input", () => yamlChanged(true));
    $("yaml").addEventListener("scroll", () => { $("gutter").scrollTop = $("yaml").scrollTop; });
    $("yaml-save").addEventListener("click", () => saveYAML());
    $("origins-save").addEventListener("click", confirmOrigins);
    $("origins-cancel").addEventListener("click", () => { state.pendingOrigins = null; $("origins-confirm").hidden = true; });
    $("yaml-revert").addEventListener("click", () => { $("yaml").value = state.yamlSaved; yamlChanged(true); });
    for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => tab(b.dataset.tab));
    state.errors = [];
    if (sel.value) load(sel.value);
  });
})();
