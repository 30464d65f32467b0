/// The status page itself: one static HTML document with inline CSS and
/// JavaScript (no build step, no external resources). It polls
/// `/ui/api/status` every two seconds and tails `/ui/api/events`.
///
/// Stable hooks for tests and scripts: `body[data-loaded]` once the first
/// snapshot rendered, `#leader[data-leader]`, `#cluster-nodes
/// tr[data-node][data-role][data-reachable]`, `#lease-total[data-count]`,
/// `#leases-by-service tr[data-service][data-count]`, `#leases-by-type
/// tr[data-type][data-count]`, `#dead-letters tr[data-lease-id]`,
/// `#dead-letter-total[data-count]`, `#retry-result` (the last retry's outcome), `#activity tr[data-kind][data-lease-id][data-object-id]`,
/// `#status-error` (shown when this node does not answer).
enum StatusPageHTML {
    static let page = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gc-sidecar status</title>
<style>
  :root { --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; }
  * { box-sizing: border-box; }
  body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #fff; }
  header { display: flex; gap: 1.5em; align-items: baseline; padding: .8em 1.2em; background: #24292f; color: #fff; flex-wrap: wrap; }
  header h1 { font-size: 1.1em; margin: 0; }
  header .meta { color: #d0d7de; font-size: .9em; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; padding: 1em 1.2em; }
  section { border: 1px solid var(--line); border-radius: 6px; padding: .6em .9em; background: #fff; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 1em; margin: .2em 0 .6em; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { background: var(--bg); font-weight: 600; }
  td.num, th.num { text-align: right; }
  td.wrap { white-space: normal; word-break: break-word; }
  .pill { display: inline-block; padding: 0 .5em; border-radius: 1em; font-size: .85em; border: 1px solid currentColor; }
  .ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); } .muted { color: var(--muted); }
  .leader { font-weight: 700; }
  tr.down td { color: var(--bad); background: #fff5f5; }
  #status-error { display: none; margin: 1em 1.2em 0; padding: .6em .9em; border: 1px solid var(--bad); color: var(--bad); border-radius: 6px; background: #fff5f5; }
  .charts { display: flex; gap: 1em; flex-wrap: wrap; }
  .chart { flex: 1 1 180px; }
  .chart svg { width: 100%; height: 70px; background: var(--bg); border-radius: 4px; }
  .chart .label { font-size: .85em; color: var(--muted); display: flex; justify-content: space-between; }
  .kv { display: flex; gap: 1.5em; flex-wrap: wrap; margin-bottom: .5em; }
  .kv b { font-size: 1.3em; display: block; }
  button { font: inherit; padding: .1em .6em; cursor: pointer; }
  #activity-box { max-height: 320px; overflow: auto; }
  .empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body data-loaded="false">
<header>
  <h1>gc-sidecar</h1>
  <span class="meta">served by <b id="served-by">…</b></span>
  <span class="meta">leader <b id="leader" data-leader="">…</b></span>
  <span class="meta" id="cluster-health">…</span>
  <span class="meta" id="security">…</span>
  <span class="meta" id="updated">…</span>
</header>
<div id="status-error"></div>
<main>
  <section class="wide" id="cluster">
    <h2>Cluster</h2>
    <table>
      <thead><tr><th>Node</th><th>Role</th><th>Member</th><th class="num">Term</th><th class="num">Commit</th><th class="num">Applied</th>
        <th class="num">Lag</th><th class="num">Last contact</th><th>Health</th><th>Peer TLS</th><th class="num">Leases</th><th class="num">DB</th></tr></thead>
      <tbody id="cluster-nodes"></tbody>
    </table>
  </section>
  <section id="leases">
    <h2>Leases <span class="muted" id="lease-consistency"></span></h2>
    <div class="kv"><div>active<b id="lease-total" data-count="">…</b></div></div>
    <table><thead><tr><th>Service</th><th class="num">Active</th></tr></thead><tbody id="leases-by-service"></tbody></table>
    <br>
    <table><thead><tr><th>Object type</th><th class="num">Active</th></tr></thead><tbody id="leases-by-type"></tbody></table>
  </section>
  <section id="cleanup">
    <h2>Cleanup</h2>
    <div class="kv">
      <div>pending<b id="cleanup-pending">…</b></div>
      <div>in flight here<b id="cleanup-inflight">…</b></div>
      <div>dead letters<b id="cleanup-dead">…</b></div>
      <div>open breakers<b id="breaker-count">…</b></div>
    </div>
    <div class="charts">
      <div class="chart" id="chart-expired"><div class="label"><span>expired / s</span><span class="now"></span></div><svg viewBox="0 0 200 60" preserveAspectRatio="none"></svg></div>
      <div class="chart" id="chart-cleaned"><div class="label"><span>cleanups succeeded / s</span><span class="now"></span></div><svg viewBox="0 0 200 60" preserveAspectRatio="none"></svg></div>
      <div class="chart" id="chart-failed"><div class="label"><span>cleanups failed / s</span><span class="now"></span></div><svg viewBox="0 0 200 60" preserveAspectRatio="none"></svg></div>
    </div>
    <div class="muted" id="chart-span"></div>
    <table><thead><tr><th>Endpoint (open breaker)</th><th>State</th></tr></thead><tbody id="breakers"></tbody></table>
    <div class="muted" id="breaker-note"></div>
  </section>
  <section class="wide" id="dead-letter-section">
    <h2>Dead letters <span id="dead-letter-total" data-count="">…</span>
      <button id="retry-all" type="button">Retry all</button></h2>
    <div class="muted" id="retry-note"></div>
    <div id="retry-result"></div>
    <table>
      <thead><tr><th>Lease</th><th>Service</th><th>Object</th><th>Endpoint</th><th class="num">Attempts</th><th>Last error</th><th>Dead since</th><th></th></tr></thead>
      <tbody id="dead-letters"></tbody>
    </table>
  </section>
  <section class="wide" id="activity-section">
    <h2>Activity <span class="muted" id="activity-state">connecting…</span></h2>
    <div id="activity-box">
      <table><thead><tr><th>Time</th><th>Event</th><th>Lease</th><th>Service</th><th>Object</th><th class="num">Index</th><th>Detail</th></tr></thead>
        <tbody id="activity"></tbody></table>
    </div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
const time = (ms) => ms ? new Date(ms).toLocaleTimeString() : "";
const bytes = (n) => n >= 1 << 20 ? (n / 1048576).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(0) + " KiB" : n ? n + " B" : "–";
let retryRequires = "none";

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  tr.innerHTML = cells.map((c) => typeof c === "object" ? `<td class="${c.cls || ""}">${c.html ?? esc(c.text)}</td>` : `<td>${esc(c)}</td>`).join("");
  return tr;
}
function fill(tbody, rows, emptyText, columns) {
  const el = $(tbody);
  el.replaceChildren(...rows);
  if (!rows.length) el.innerHTML = `<tr><td class="empty" colspan="${columns}">${esc(emptyText)}</td></tr>`;
}
function chart(id, values) {
  const box = $(id), svg = box.querySelector("svg");
  const max = Math.max(1, ...values);
  const n = values.length;
  const pts = values.map((v, i) => `${n > 1 ? (i * 200 / (n - 1)).toFixed(1) : 0},${(58 - v / max * 54).toFixed(1)}`).join(" ");
  svg.innerHTML = n ? `<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="${pts}"/>` +
    `<text x="2" y="10" font-size="9" fill="#57606a">max ${max.toFixed(1)}</text>` : `<text x="4" y="34" font-size="10" fill="#57606a">collecting…</text>`;
  box.querySelector(".now").textContent = n ? values[n - 1].toFixed(2) : "";
}

function render(s) {
  $("served-by").textContent = s.node;
  const leader = $("leader");
  leader.textContent = s.cluster.leader || "none";
  leader.dataset.leader = s.cluster.leader;
  leader.className = s.cluster.leader ? "" : "bad";
  const health = $("cluster-health");
  health.innerHTML = s.cluster.healthy ? '<span class="pill ok">healthy</span>' : '<span class="pill bad">unhealthy</span>';
  const sec = s.security;
  $("security").textContent = `client port: ${sec.clientPort} · peer TLS: ${sec.peerTLS ? "on" : "off"} · metrics TLS: ${sec.metricsTLS ? "on" : "off"}`;
  $("updated").textContent = "updated " + time(s.generatedAt);

  fill("cluster-nodes", s.cluster.nodes.map((n) => row([
    { html: `<span class="${n.role === "leader" ? "leader" : ""}">${esc(n.id)}</span> <span class="muted">${esc(n.raftAddress)}</span>` },
    { html: n.reachable ? esc(n.role) : '<span class="pill bad">unreachable</span>' },
    n.membership,
    { text: n.reachable ? n.term : "–", cls: "num" },
    { text: n.reachable ? n.commitIndex : "–", cls: "num" },
    { text: n.reachable ? n.appliedIndex : "–", cls: "num" },
    { text: n.role === "leader" ? "–" : n.lag, cls: "num" },
    { text: n.lastContactMillis < 0 ? "–" : n.lastContactMillis + " ms", cls: "num" },
    { html: n.healthy ? '<span class="ok">ok</span>' : `<span class="bad">${esc(n.problem || "unhealthy")}</span>`, cls: "wrap" },
    n.peerTLS == null ? "?" : (n.peerTLS ? "on" : "off"),
    { text: n.reachable ? n.activeLeases : "–", cls: "num" },
    { text: n.reachable ? bytes(n.dbSizeBytes) : "–", cls: "num" },
  ], { "data-node": n.id, "data-role": n.role, "data-reachable": String(n.reachable), class: n.reachable ? "" : "down" })), "no members known", 12);

  const L = s.leases;
  $("lease-total").textContent = L.active;
  $("lease-total").dataset.count = L.active;
  $("lease-consistency").textContent = L.consistency === "linearizable" ? `(as of index ${L.appliedIndex})` : `(${L.consistency})`;
  fill("leases-by-service", L.byService.map((c) => row([c.name, { text: c.count, cls: "num" }], { "data-service": c.name, "data-count": c.count })), "no active leases", 2);
  fill("leases-by-type", L.byType.map((c) => row([c.name, { text: c.count, cls: "num" }], { "data-type": c.name, "data-count": c.count })), "no active leases", 2);

  const C = s.cleanup;
  $("cleanup-pending").textContent = C.pending;
  $("cleanup-inflight").textContent = C.inFlight;
  $("cleanup-dead").textContent = C.deadLettered;
  $("breaker-count").textContent = C.openBreakers.length;
  chart("chart-expired", C.rates.map((r) => r.expired));
  chart("chart-cleaned", C.rates.map((r) => r.cleanupSucceeded));
  chart("chart-failed", C.rates.map((r) => r.cleanupFailed + r.deadLettered));
  $("chart-span").textContent = C.rates.length ? `last ${(C.rates.length * C.intervalSeconds / 60).toFixed(1)} min, sampled every ${C.intervalSeconds} s (cluster-wide totals)` : "";
  fill("breakers", C.openBreakers.map((b) => row([b.endpoint, b.state], { "data-endpoint": b.endpoint })), "no open breakers", 2);
  $("breaker-note").textContent = C.breakersAuthoritative ? "" : `Breakers shown are this node's; the leader (${s.cluster.leader || "none"}) delivers cleanups and holds the ones in force.`;

  const D = s.deadLetters;
  $("dead-letter-total").textContent = `(${D.total})`;
  $("dead-letter-total").dataset.count = D.total;
  retryRequires = sec.retryRequires;
  $("retry-note").textContent = retryRequires === "none"
    ? "No authorization policy is configured: anyone who reaches this port may retry (as on the client port)."
    : `Retrying needs an operator: ${retryRequires}.`;
  $("retry-all").disabled = D.total === 0;
  fill("dead-letters", D.items.map((d) => {
    const tr = row([d.leaseId, d.serviceId, `${d.objectType}/${d.objectId}`, { text: d.endpoint, cls: "wrap" }, { text: d.attempts, cls: "num" },
      { text: d.lastError, cls: "wrap" }, time(d.finishedAt || d.createdAt), { html: '<button type="button">Retry</button>' }],
      { "data-lease-id": d.leaseId, "data-service": d.serviceId });
    tr.querySelector("button").addEventListener("click", () => retry({ leaseIds: [d.leaseId] }));
    return tr;
  }), "no dead letters", 8);
  document.body.dataset.loaded = "true";
}

async function retry(body) {
  const headers = { "Content-Type": "application/json" };
  let token = sessionStorage.getItem("gc-operator-token");
  if (retryRequires !== "none" && retryRequires.includes("token") && !token) {
    token = prompt("Operator bearer token (leave empty to use your client certificate):") || "";
    if (token) sessionStorage.setItem("gc-operator-token", token);
  }
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch("/ui/api/dead-letters/retry", { method: "POST", headers, body: JSON.stringify(body) });
  const answer = await r.json().catch(() => ({}));
  if (r.status === 401 || r.status === 403) sessionStorage.removeItem("gc-operator-token");
  const result = $("retry-result");
  result.className = r.ok ? "ok" : "bad";
  result.textContent = r.ok ? `Retried ${answer.retried.length} cleanup(s) as ${answer.by}.` : `Retry refused (${r.status}): ${answer.error || r.statusText}`;
  refresh(false);
}
$("retry-all").addEventListener("click", () => { if (confirm("Retry every dead-lettered cleanup?")) retry({ all: true }); });

let timer;
async function refresh(schedule = true) {
  clearTimeout(timer);
  try {
    const r = await fetch("/ui/api/status", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    render(await r.json());
    $("status-error").style.display = "none";
  } catch (e) {
    const box = $("status-error");
    box.textContent = `This node is not answering (${e.message}); showing the last state received. Retrying…`;
    box.style.display = "block";
  }
  if (schedule !== false) timer = setTimeout(refresh, 2000);
}

function detail(e) {
  if (e.kind.startsWith("cleanup_")) return (e.attempt ? `attempt ${e.attempt} ` : "") + (e.reason || "");
  return e.reason || "";
}
function tail() {
  if (!window.EventSource) { $("activity-state").textContent = "(this browser has no EventSource)"; return; }
  const source = new EventSource("/ui/api/events");
  source.onopen = () => { $("activity-state").textContent = "live"; };
  source.onerror = () => { $("activity-state").textContent = "reconnecting…"; };
  source.addEventListener("unavailable", (m) => { $("activity-state").textContent = "unavailable: " + m.data; });
  source.onmessage = (m) => {
    const e = JSON.parse(m.data);
    const body = $("activity");
    if (body.querySelector(".empty")) body.replaceChildren();
    body.prepend(row([time(e.at), e.kind, e.leaseId, e.serviceId, `${e.objectType}/${e.objectId}`, { text: e.index, cls: "num" }, { text: detail(e), cls: "wrap" }],
      { "data-kind": e.kind, "data-lease-id": e.leaseId, "data-object-id": e.objectId }));
    while (body.children.length > 200) body.lastChild.remove();
  };
}
fill("activity", [], "no events since this page was opened", 7);
refresh();
if (!new URLSearchParams(location.search).has("nolive")) tail(); else $("activity-state").textContent = "(live tail off)";
</script>
</body>
</html>
"""#
}
