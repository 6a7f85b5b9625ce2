// plumb operations console: the page's only reader of the service's API.
// Every route and every answer shape the ops page depends on is here; the
// rest of the page sees the normalised objects this module returns. The
// console passes /console/api/v1/… on to the service's /v1/… under the
// console's own access rules.
"use strict";
window.PlumbOps = (function () {
  const base = "/console/api/v1/";

  async function call(method, path, params) {
    const opts = { method, headers: { "X-Plumb-Console": "1" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["Content-Type"] = "application/json";
      opts.body = "{}";
    }
    const resp = await fetch(base + path + query(params), opts);
    let data;
    try { data = await resp.json(); } catch (e) { data = {}; }
    if (!resp.ok) {
      const err = data.error;
      const msg = (err && (err.message || err)) || ("HTTP " + resp.status);
      const e = new Error(String(msg));
      e.status = resp.status;
      throw e;
    }
    return data;
  }

  function query(params) {
    if (!params) return "";
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }

  // A lead as the list shows it (the history's record).
  function leadRow(r) {
    return {
      id: r.id, integration: r.integration || "", source: r.source || "", batch: r.batch || "",
      outcome: r.outcome || r.state || "", class: r.class || "", reason: r.reason || "",
      time: r.finished || r.started || r.accepted || r.updated || "", duration_ms: r.duration_ms,
    };
  }

  // A try of a step: status, timings and, when kept, the masked exchange.
  function tryOf(t) {
    const req = t.request || (t.method || t.url ? { method: t.method, url: t.url, header: t.request_header, body: t.request_body } : null);
    const resp = t.response || (t.response_header || t.response_body ? { status: t.status, header: t.response_header, body: t.response_body } : null);
    return {
      attempt: t.attempt, fallback: !!t.fallback, status: t.status || 0, class: t.class || "", error: t.error || "",
      rule: t.rule || t.action || "", duration_ms: t.duration_ms !== undefined ? t.duration_ms : (t.timing && t.timing.total_ms),
      request: req, response: resp,
    };
  }

  // A step of a lead's timeline; group names the parallel group it ran in.
  function stepOf(s) {
    return {
      name: s.name, outcome: s.outcome, class: s.class || "", reason: s.reason || "", method: s.method || "",
      url: s.url || "", status: s.status || 0, attempts: s.attempts || 0, duration_ms: s.duration_ms,
      group: s.group || s.parallel || "", tries: (s.tries || []).map(tryOf),
    };
  }

  // A lead's record: the history's record when the answer has one, else
  // the queue's status and the result.
  function leadOf(d) {
    const rec = d.record || d.history || (d.steps ? d : null);
    const res = d.result || {};
    const src = rec || res;
    return {
      id: d.id, integration: d.integration || (rec && rec.integration) || "", state: d.state || "",
      source: (rec && rec.source) || "", batch: (rec && rec.batch) || "", request_id: (rec && rec.request_id) || "",
      outcome: src.outcome || d.state || "", class: src.class || "", reason: src.reason || d.last_error || "",
      duration_ms: src.duration_ms, attempts: d.attempts || 0, updated: d.updated || "",
      steps: (src.steps || []).map(stepOf), lead: res.lead || null,
    };
  }

  return {
    // integrations: [{name, health, hook}]
    async integrations() {
      const d = await call("GET", "integrations");
      return (d.integrations || []).map((i) => ({ name: i.name || i.file, health: i.health, hook: i.hook || "" }));
    },
    // leads(filters, cursor): {rows, next}; filters: integration, batch,
    // outcome, class, since, until (RFC 3339), q, limit.
    async leads(filters, cursor) {
      const d = await call("GET", "leads", Object.assign({}, filters, { cursor }));
      return { rows: (d.leads || d.records || []).map(leadRow), next: d.next || d.next_cursor || "" };
    },
    // exportURL(filters): the NDJSON export of a query, for a link.
    exportURL(filters) { return base + "leads/export" + query(filters); },
    async lead(id) { return leadOf(await call("GET", "leads/" + encodeURIComponent(id))); },
    async batch(id) { return call("GET", "batches/" + encodeURIComponent(id)); },
    // dead(): [{id, integration, error, deliveries, enqueued, died, lead}]
    async dead(limit) { return (await call("GET", "dead", { limit })).dead || []; },
    async retry(id) { return call("POST", "dead/" + encodeURIComponent(id) + "/retry"); },
    // stats(integration, window): {window, step_seconds, integrations: [{integration, total, leads_per_s, success_rate, points}]}
    async stats(integration, window) { return call("GET", "stats", { integration, window }); },
    // deliveries(integration): [{time, integration, verdict, result, status, id, bytes, header, log}]
    async deliveries(integration) { return (await call("GET", "hooks/deliveries", { integration })).deliveries || []; },
  };
})();
