// The dashboard's live updates: one EventSource on the lifecycle stream; text only, never HTML.
"use strict";

(function () {
  const body = document.body;
  const state = document.getElementById("stream-state");
  const page = body.dataset.page;

  function setState(name, text) {
    state.dataset.state = name;
    state.textContent = text;
  }

  function setStatus(element, status) {
    element.textContent = status;
    element.className = "status status-" + status;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function shortTime(iso) {
    // The server renders "YYYY-MM-DD HH:MM:SS" (UTC); show stream timestamps the same way.
    return String(iso || "").replace("T", " ").slice(0, 19);
  }

  function executionRow(event) {
    const row = document.createElement("tr");
    row.dataset.executionId = event.execution_id;
    const link = document.createElement("a");
    link.href = "/dashboard/executions/" + encodeURIComponent(event.execution_id) + "/";
    link.textContent = event.execution_id;
    const first = document.createElement("td");
    first.appendChild(link);
    const status = document.createElement("span");
    status.dataset.field = "status";
    setStatus(status, event.status);
    const statusCell = document.createElement("td");
    statusCell.appendChild(status);
    const updated = cell(shortTime(event.timestamp));
    updated.dataset.field = "updated";
    row.append(first, cell(event.target), statusCell, cell("0"), cell(event.workflow_id, "mono"), cell(shortTime(event.timestamp)), updated);
    return row;
  }

  function findRow(executionId) {
    for (const row of document.querySelectorAll("#executions tbody tr[data-execution-id]")) {
      if (row.dataset.executionId === executionId) return row;
    }
    return null;
  }

  function onExecutionsEvent(event) {
    const table = document.getElementById("executions");
    const filter = table.dataset.statusFilter;
    let row = findRow(event.execution_id);
    if (!row) {
      if (event.type !== "execution_queued" || (filter && filter !== event.status)) return;
      const empty = table.querySelector("tr.empty");
      if (empty) empty.remove();
      row = executionRow(event);
      table.tBodies[0].prepend(row);
    }
    setStatus(row.querySelector('[data-field="status"]'), event.status);
    const updated = row.querySelector('[data-field="updated"]');
    if (updated) updated.textContent = shortTime(event.timestamp);
    row.classList.remove("flash");
    void row.offsetWidth;
    row.classList.add("flash");
  }

  let refreshTimer = null;
  function refreshSoon() {
    // Re-render the server's HTML for the live region (it escapes everything) at most once a second.
    if (refreshTimer) return;
    refreshTimer = setTimeout(async function () {
      refreshTimer = null;
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const target = document.querySelector("main");
      const source = fresh.querySelector("main");
      if (target && source) target.replaceWith(document.importNode(source, true));
    }, 1000);
  }

  function onEvent(event) {
    if (!event.execution_id) return;
    if (page === "executions") onExecutionsEvent(event);
    else if (page === "queue") refreshSoon();
    else if (page === "execution") {
      const heading = document.querySelector("h1[data-execution-id]");
      if (heading && heading.dataset.executionId === event.execution_id) refreshSoon();
    }
  }

  function connect() {
    // Resume right after the newest event the server had when it rendered this page; on a
    // reconnect the browser sends Last-Event-ID, which takes precedence.
    const params = new URLSearchParams();
    if (body.dataset.streamFrom) params.set("last_event_id", body.dataset.streamFrom);
    if (page === "execution") {
      params.set("execution_id", document.querySelector("h1[data-execution-id]").dataset.executionId);
    }
    const query = params.toString();
    const source = new EventSource(body.dataset.streamUrl + (query ? "?" + query : ""));
    source.onopen = function () { setState("live", "live"); };
    source.onerror = function () { setState("reconnecting", "reconnecting…"); };
    source.onmessage = function (message) {
      let event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      if (event.type === "connected" || event.type === "heartbeat") { setState("live", "live"); return; }
      onEvent(event);
    };
  }

  async function pollNodes() {
    // Liveness is derived from heartbeat age, which changes without any event: re-read it.
    const response = await fetch("/api/v1/nodes?show_all=true", { credentials: "same-origin" });
    if (!response.ok) return;
    const listed = await response.json();
    for (const node of listed.nodes || []) {
      for (const row of document.querySelectorAll("#nodes tr[data-node-id]")) {
        if (row.dataset.nodeId !== node.id) continue;
        setStatus(row.querySelector('[data-field="health"]'), node.health_status);
        row.querySelector('[data-field="lifecycle"]').textContent = node.lifecycle_status;
      }
    }
  }

  if (page === "nodes") {
    setState("live", "polling");
    setInterval(pollNodes, 3000);
  } else {
    connect();
  }
})();
