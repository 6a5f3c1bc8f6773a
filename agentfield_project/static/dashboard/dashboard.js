// The dashboard's live updates: one EventSource on the lifecycle stream; text only, never HTML.
"use strict";

(function () {
  const body = document.body;
  const state = document.getElementById("stream-state");
  const page = body.dataset.page;
  const TERMINAL = ["succeeded", "failed", "cancelled", "timeout"];

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
    const run = cell(event.workflow_id, "mono");
    const duration = cell("—");
    duration.dataset.field = "duration";
    row.append(first, cell(event.target), statusCell, cell("0"), duration, cell(""), run,
               cell(shortTime(event.timestamp)), updated);
    return row;
  }

  function findRow(executionId) {
    for (const row of document.querySelectorAll("#executions tbody tr[data-execution-id]")) {
      if (row.dataset.executionId === executionId) return row;
    }
    return null;
  }

  function matchesFilters(table, event) {
    // New rows appear only on the newest page, and only if the page's filters would list them.
    const data = table.dataset;
    if (data.liveInsert !== "true") return false;
    if (data.statusFilter && data.statusFilter !== event.status) return false;
    if (data.nodeFilter && data.nodeFilter !== event.agent_node_id) return false;
    if (data.targetFilter) {
      const wanted = data.targetFilter.includes(".") ? event.target : String(event.target || "").split(".").pop();
      if (wanted !== data.targetFilter) return false;
    }
    if (data.search) {
      const q = data.search;
      if (!String(event.execution_id).startsWith(q) && !String(event.workflow_id || "").startsWith(q)) return false;
    }
    return true;
  }

  function onExecutionsEvent(event) {
    const table = document.getElementById("executions");
    let row = findRow(event.execution_id);
    if (!row) {
      if (event.type !== "execution_queued" || !matchesFilters(table, event)) return;
      const empty = table.querySelector("tr.empty");
      if (empty) empty.remove();
      row = executionRow(event);
      table.tBodies[0].prepend(row);
    }
    setStatus(row.querySelector('[data-field="status"]'), event.status);
    const duration = row.querySelector('[data-field="duration"]');
    if (duration && TERMINAL.includes(event.status)) delete duration.dataset.started;
    else if (duration && event.type === "execution_started" && !duration.dataset.started) duration.dataset.started = event.timestamp;
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
      if (target && source) {
        const freshMain = document.importNode(source, true);
        target.replaceWith(freshMain);
        bind(freshMain);
      }
    }, 1000);
  }

  function durationText(ms) {
    // The same shapes as the server's overview.duration_text.
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    const seconds = Math.floor(ms / 1000);
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function tickDurations() {
    // An active execution's duration grows from its first start (data-started), between events too.
    for (const element of document.querySelectorAll("[data-started]")) {
      const started = Date.parse(element.dataset.started);
      if (!isNaN(started)) element.textContent = durationText(Math.max(0, Date.now() - started)) + (element.dataset.suffix || "");
    }
  }

  function bind(root) {
    // No inline handlers (the CSP forbids them): a filter select submits its form when it changes,
    // and a button that changes an execution asks first.
    for (const select of root.querySelectorAll("select[data-autosubmit]")) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    }
    for (const button of root.querySelectorAll("button[data-confirm]")) {
      button.form.addEventListener("submit", function (submit) {
        if (!window.confirm(button.dataset.confirm)) submit.preventDefault();
      });
    }
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

  bind(document);
  setInterval(tickDurations, 1000);
  if (page === "nodes") {
    setState("live", "polling");
    setInterval(pollNodes, 3000);
  } else {
    connect();
  }
})();
