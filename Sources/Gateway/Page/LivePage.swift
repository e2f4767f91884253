import Broker
import Foundation

/// The live page served at `/`: create jobs and watch their events arrive.
///
/// One self-contained document (no external scripts, styles or fonts), so it works offline.
/// It connects over the plain WebSocket transport and falls back to Server-Sent Events when
/// the WebSocket cannot be opened. In the memory-backed demo it fetches a token from
/// `/api/v1/demo-token`; otherwise the visitor pastes one (e.g. from `switchboard token`).
/// It creates jobs of the gateway's job types (a choice when there are several) and listens
/// for their events.
enum LivePage {
    /// The page for a gateway serving `jobTypes` (at least one; the first is preselected).
    static func html(jobTypes: [String]) -> String {
        // A JSON array in a script: `<` escaped so that no type can close the script element.
        let types = JSONValue.array(jobTypes.map { .string($0) }).jsonText.replacingOccurrences(of: "<", with: "\\u003c")
        return template.replacingOccurrences(of: "__JOB_TYPES__", with: types)
    }

    private static let template = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard</title>
<style>
  :root { --fg:#1d2330; --muted:#6b7280; --line:#e5e7eb; --ok:#15803d; --err:#b91c1c; --run:#b45309; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
         max-width: 860px; margin: 2rem auto; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  p.sub { color: var(--muted); margin: 0 0 1.5rem; }
  fieldset { border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 0 0 1rem; }
  legend { padding: 0 .4rem; color: var(--muted); }
  label { display: inline-block; margin-right: 1rem; }
  input { font: inherit; padding: .3rem .5rem; border: 1px solid #cbd5e1; border-radius: 6px; }
  input#token { width: 100%; font-family: ui-monospace, monospace; font-size: 12px; }
  button { font: inherit; padding: .35rem 1rem; border-radius: 6px; border: 1px solid #1d4ed8;
           background: #2563eb; color: white; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  #status { font-size: 13px; color: var(--muted); }
  #status b { color: var(--fg); }
  ul#jobs { list-style: none; padding: 0; }
  li.job { border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; margin-bottom: .75rem; }
  li.job header { display: flex; justify-content: space-between; gap: 1rem; }
  li.job code { font-size: 12px; }
  .badge { font-size: 12px; padding: .05rem .5rem; border-radius: 999px; border: 1px solid currentColor; }
  .s-created { color: var(--muted); } .s-processing, .s-retrying { color: var(--run); }
  .s-done { color: var(--ok); } .s-error { color: var(--err); }
  ol.timeline { margin: .5rem 0 0; padding-left: 1.2rem; font-size: 13px; }
  ol.timeline li span.t { color: var(--muted); font-family: ui-monospace, monospace; margin-right: .5rem; }
  pre.result { font-size: 12px; background: #f8fafc; padding: .5rem; border-radius: 6px; margin: .5rem 0 0;
               white-space: pre-wrap; }
  #log { font-size: 12px; color: var(--muted); }
</style>
</head>
<body>
<h1>Switchboard</h1>
<p class="sub">Create a job and watch its lifecycle arrive in real time.</p>

<fieldset>
  <legend>Connection</legend>
  <input id="token" placeholder="JWT (Bearer token)" autocomplete="off" spellcheck="false">
  <p id="status">Transport: <b id="transport">disconnected</b> · user <b id="user">–</b></p>
</fieldset>

<fieldset>
  <legend>New job</legend>
  <form id="create-form">
    <label id="type-label">Type <select id="type"></select></label>
    <label>Amount <input id="amount" type="number" value="1000" step="any"></label>
    <label>Delay (ms, optional) <input id="delay" type="number" min="0" max="60000" placeholder="0"></label>
    <button id="create" type="submit">Create job</button>
  </form>
  <p id="log"></p>
</fieldset>

<ul id="jobs"></ul>

<script>
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const jobs = new Map();          // jobId -> { li, statuses:Set }
  let lastEventId = null;          // for replay when the transport reconnects
  let socket = null, source = null, retry = 0, stopped = false;

  const TYPES = __JOB_TYPES__;      // the gateway's job types
  for (const type of TYPES) $("type").append(new Option(type, type));
  if (TYPES.length < 2) $("type-label").hidden = true;

  const RANKS = { created: 1, processing: 2, retrying: 3, done: 4, error: 4 };
  function rank(status) { return RANKS[status] || 0; }
  function log(text) { $("log").textContent = text; }
  function setTransport(name) { $("transport").textContent = name; document.body.dataset.transport = name; }
  function token() { return $("token").value.trim().replace(/^Bearer\s+/i, ""); }

  function jobItem(jobId) {
    let job = jobs.get(jobId);
    if (job) return job;
    const li = document.createElement("li");
    li.className = "job";
    li.dataset.jobId = jobId;
    li.innerHTML = '<header><code></code><span class="badge"></span></header><ol class="timeline"></ol>';
    li.querySelector("code").textContent = jobId;
    $("jobs").prepend(li);
    job = { li: li, statuses: new Set() };
    jobs.set(jobId, job);
    return job;
  }

  function showEvent(type, payload, eventId) {
    if (eventId) lastEventId = eventId;
    if (!payload || !payload.jobId || typeof type !== "string") return;
    const status = payload.status || type.split(":").pop();
    const job = jobItem(payload.jobId);
    if (job.statuses.has(status)) return;   // a replayed event already shown
    job.statuses.add(status);
    const entry = document.createElement("li");
    entry.className = "s-" + status;
    entry.dataset.status = status;
    const when = payload.timestamp ? new Date(payload.timestamp) : new Date();
    entry.innerHTML = '<span class="t"></span><span class="n"></span>';
    entry.querySelector(".t").textContent = when.toLocaleTimeString();
    entry.querySelector(".n").textContent = status + (payload.error ? " — " + payload.error : "");
    // Keep the timeline in lifecycle order and the badge on the furthest status, whatever
    // order the events arrive in (a replay can interleave with live events).
    entry.dataset.rank = rank(status);
    const list = job.li.querySelector("ol");
    const later = Array.from(list.children).find((e) => Number(e.dataset.rank) > rank(status));
    list.insertBefore(entry, later || null);
    if (rank(status) >= rank(job.li.dataset.status)) {
      const badge = job.li.querySelector(".badge");
      badge.textContent = status;
      badge.className = "badge s-" + status;
      job.li.dataset.status = status;
    }
    if (payload.result) {
      const pre = document.createElement("pre");
      pre.className = "result";
      pre.textContent = JSON.stringify(payload.result, null, 2);
      job.li.append(pre);
    }
  }

  function connectWebSocket() {
    if (!("WebSocket" in window)) return connectSSE();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + location.host + "/ws?token=" + encodeURIComponent(token());
    if (lastEventId) url += "&lastEventId=" + encodeURIComponent(lastEventId);
    let opened = false;
    socket = new WebSocket(url);
    socket.onopen = () => { opened = true; retry = 0; setTransport("websocket"); };
    socket.onmessage = (message) => {
      let frame;
      try { frame = JSON.parse(message.data); } catch (e) { return; }
      if (frame.type === "connected") { $("user").textContent = frame.payload.userId; return; }
      if (frame.type === "pong" || frame.type === "error") return;
      showEvent(frame.type, frame.payload, frame.eventId);
    };
    socket.onclose = () => {
      socket = null;
      if (stopped) return;
      if (!opened) { connectSSE(); return; }     // the WebSocket never opened: fall back to SSE
      setTransport("reconnecting");
      setTimeout(connectWebSocket, Math.min(5000, 250 * 2 ** retry++));
    };
  }

  function connectSSE() {
    if (!("EventSource" in window)) { setTransport("unsupported"); return; }
    let url = "/api/v1/events?token=" + encodeURIComponent(token());
    if (lastEventId) url += "&lastEventId=" + encodeURIComponent(lastEventId);
    source = new EventSource(url);
    source.onopen = () => setTransport("sse");
    source.addEventListener("connected", (e) => {
      try { $("user").textContent = JSON.parse(e.data).userId; } catch (err) {}
    });
    for (const type of TYPES) {
      for (const status of ["created", "processing", "retrying", "done", "error"]) {
        source.addEventListener(type + ":" + status, (e) => {
          try { showEvent(type + ":" + status, JSON.parse(e.data), e.lastEventId); } catch (err) {}
        });
      }
    }
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return;   // the browser reconnects by itself
      setTransport("disconnected");
      explainRefusal();
    };
  }

  // Neither transport stayed open: ask an authenticated route why (EventSource hides the
  // answer's status and body), so a stale or foreign token is named rather than guessed at.
  async function explainRefusal() {
    try {
      const response = await fetch("/api/v1/rebalance/0-probe", { headers: { "Authorization": "Bearer " + token() } });
      if (response.status === 401) log("Token refused: " + ((await response.json()).error || "unauthorized"));
      else log("Could not connect (the server answered " + response.status + ").");
    } catch (err) {
      log("Could not reach the server: " + err);
    }
  }

  function reconnect() {
    stopped = true;
    if (socket) socket.close();
    if (source) source.close();
    socket = null; source = null; stopped = false; retry = 0;
    if (token()) connectWebSocket(); else setTransport("disconnected");
  }

  $("create-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { amount: Number($("amount").value) };
    const delay = $("delay").value;
    if (delay !== "") body.delayMs = Number(delay);
    $("create").disabled = true;
    try {
      const response = await fetch("/api/v1/agent/" + encodeURIComponent($("type").value), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token() },
        body: JSON.stringify(body)
      });
      const answer = await response.json();
      if (!response.ok) { log("Error " + response.status + ": " + (answer.error || "")); return; }
      jobItem(answer.jobId);
      log("Created " + answer.jobId);
    } catch (err) {
      log("Request failed: " + err);
    } finally {
      $("create").disabled = false;
    }
  });
  $("token").addEventListener("change", reconnect);

  async function start() {
    const given = new URLSearchParams(location.search).get("token");
    if (given) $("token").value = given;
    if (!token()) {
      try {
        const response = await fetch("/api/v1/demo-token");
        if (response.ok) $("token").value = (await response.json()).token;
      } catch (err) {}
    }
    const forced = new URLSearchParams(location.search).get("transport");
    if (!token()) log("Paste a token (switchboard token --user KEY, with the server's JWT_SECRET) to start.");
    else if (forced === "sse") connectSSE();
    else connectWebSocket();
  }
  start();
})();
</script>
</body>
</html>
"""#
}
