// TACore flows page: the flows, a flow's recent cycles, its DAG with each node's state in the chosen cycle,
// and the cycle's task logs. Plain DOM and SVG, no library; reads the sidecar's JSON API every 2 seconds.
(function () {
  "use strict";
  const POLL_MS = 2000;
  const COL_W = 236, ROW_H = 74, NODE_W = 196, NODE_H = 46, PAD = 16;
  const STATES = ["completed", "running", "queued", "pending", "failed", "skipped", "cancelled", "preempted"];
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const clock = (t) => (t === null || t === undefined) ? "–" : new Date(t * 1000).toLocaleTimeString();
  const state = { flow: null, cycle: null, pinnedCycle: false };

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get("flow")) state.flow = params.get("flow");
    if (params.get("cycle") !== null && params.get("cycle") !== "") {
      state.cycle = Number(params.get("cycle"));
      state.pinnedCycle = true;
    }
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.flow) params.set("flow", state.flow);
    if (state.pinnedCycle && state.cycle !== null) params.set("cycle", String(state.cycle));
    history.replaceState(null, "", "#" + params.toString());
  }

  async function getJson(path) {
    const reply = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!reply.ok) {
      let detail = reply.statusText;
      try { detail = (await reply.json()).detail || detail; } catch (e) { /* not JSON */ }
      const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      error.status = reply.status;
      throw error;
    }
    return reply.json();
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fillTable(id, rows, render, emptyText) {
    const table = $(id);
    const fresh = document.createElement("tbody");
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, emptyText, "empty");
      td.colSpan = table.tHead.rows[0].cells.length;
      fresh.appendChild(tr);
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      render(tr, row);
      fresh.appendChild(tr);
    }
    table.tBodies[0].replaceWith(fresh);
  }

  function statusCell(tr, status) {
    const td = cell(tr, status, "status st-" + (status || "none"));
    return td;
  }

  function setPill(kind, text) {
    const el = $("flows-state");
    el.className = "pill pill-" + kind;
    el.textContent = text;
  }

  // -- tables --------------------------------------------------------------------------------------------
  function renderFlows(list) {
    $("flows-total").textContent = list.total + " registered";
    fillTable("flows-table", list.flows, (tr, f) => {
      tr.dataset.flowId = f.flow_id;
      if (f.flow_id === state.flow) tr.className = "selected";
      cell(tr, f.flow_id);
      statusCell(tr, f.status);
      cell(tr, f.cycle_interval ? f.trigger + " " + f.cycle_interval : f.cron ? "cron " + f.cron : f.trigger);
      cell(tr, f.next_run_at ? clock(f.next_run_at) : "–");
      cell(tr, f.last_cycle, "num");
      statusCell(tr, f.last_status);
      tr.addEventListener("click", () => {
        state.flow = f.flow_id; state.cycle = null; state.pinnedCycle = false;
        writeHash(); refresh();
      });
    }, "no flows registered (POST /flows/execute)");
  }

  function renderCycles(cycles) {
    fillTable("cycles-table", cycles, (tr, c) => {
      tr.dataset.cycle = c.cycle;
      if (c.cycle === state.cycle) tr.className = "selected";
      cell(tr, c.cycle, "num");
      statusCell(tr, c.status);
      cell(tr, c.trigger);
      cell(tr, clock(c.started_at || c.scheduled_at));
      cell(tr, c.lateness_ms === null || c.lateness_ms === undefined ? "–" : Number(c.lateness_ms).toFixed(1), "num");
      cell(tr, Object.entries(c.counts || {}).map(([k, v]) => v + " " + k).join(", "));
      tr.addEventListener("click", () => { state.cycle = c.cycle; state.pinnedCycle = true; writeHash(); refresh(); });
    }, "no cycles yet");
  }

  function renderLogs(logs) {
    fillTable("logs-table", logs.slice(-200).reverse(), (tr, row) => {
      cell(tr, clock(row.created_at));
      cell(tr, row.cycle, "num");
      cell(tr, row.node_id);
      cell(tr, row.level, row.level === "ERROR" ? "err" : "");
      cell(tr, row.message, "msg");
    }, "no task logs for this cycle");
  }

  // -- the DAG: nodes in columns by longest path from a root ----------------------------------------------
  function layout(nodes, edges) {
    const depth = new Map(nodes.map((n) => [n.id, 0]));
    for (let pass = 0; pass < nodes.length; pass++) {
      let moved = false;
      for (const e of edges) {
        if (depth.has(e.source) && depth.has(e.target) && depth.get(e.target) < depth.get(e.source) + 1) {
          depth.set(e.target, depth.get(e.source) + 1);
          moved = true;
        }
      }
      if (!moved) break;
    }
    const columns = [];
    for (const n of nodes) {
      const d = depth.get(n.id);
      (columns[d] = columns[d] || []).push(n.id);
    }
    const place = new Map();
    columns.forEach((ids, col) => ids.forEach((id, row) => {
      place.set(id, { x: PAD + col * COL_W, y: PAD + row * ROW_H });
    }));
    const rows = Math.max(1, ...columns.map((c) => (c || []).length));
    return { place, width: PAD * 2 + (columns.length - 1) * COL_W + NODE_W, height: PAD * 2 + (rows - 1) * ROW_H + NODE_H };
  }

  function svgEl(name, attrs, parent) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }

  function renderDag(definition, tasks) {
    const host = $("dag");
    const nodes = (definition && definition.nodes) || [];
    const edges = (definition && definition.edges) || [];
    const byNode = new Map((tasks || []).map((t) => [t.node_id, t]));
    const { place, width, height } = layout(nodes, edges);
    const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                              "aria-label": "flow DAG" });
    for (const e of edges) {
      const a = place.get(e.source), b = place.get(e.target);
      if (!a || !b) continue;
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mid = (x1 + x2) / 2;
      const path = svgEl("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
                                   "marker-end": "url(#arrow)" }, svg);
      const title = svgEl("title", {}, path);
      title.textContent = `${e.source}.${e.source_handle || "output"} → ${e.target}.${e.target_handle || "input"}`;
    }
    const defs = svgEl("defs", {}, svg);
    const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7",
                                     markerHeight: "7", orient: "auto-start-reverse" }, defs);
    svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8594a6" }, marker);
    for (const n of nodes) {
      const p = place.get(n.id);
      const task = byNode.get(n.id);
      const status = task ? task.status : "none";
      const g = svgEl("g", { class: "node st-" + status, transform: `translate(${p.x},${p.y})`,
                             "data-node-id": n.id, "data-state": status }, svg);
      svgEl("rect", { width: NODE_W, height: NODE_H, rx: 6 }, g);
      const label = svgEl("text", { x: 10, y: 19 }, g);
      label.textContent = n.id.length > 24 ? n.id.slice(0, 23) + "…" : n.id;
      const sub = svgEl("text", { x: 10, y: 36, class: "sub" }, g);
      sub.textContent = `${n.type} · ${status === "none" ? "no task" : status}`;
      const title = svgEl("title", {}, g);
      title.textContent = `${n.id} (${n.type}): ${status}` + (task && task.error_message ? " — " + task.error_message : "")
        + (task && task.duration_ms ? ` — ${task.duration_ms} ms` : "");
    }
    host.replaceChildren(svg);
  }

  function renderLegend() {
    const legend = $("dag-legend");
    legend.replaceChildren(...STATES.map((s) => {
      const span = document.createElement("span");
      span.className = "st-" + s;
      span.textContent = "■ " + s;
      return span;
    }));
  }

  // -- polling -------------------------------------------------------------------------------------------
  let busy = false, again = false;
  async function refresh() {
    if (busy) { again = true; return; }  // a click while a poll is out: poll again right after it
    busy = true;
    try {
      await poll();
    } catch (e) {
      setPill("down", e.status === 503 ? "scheduler down" : "error " + (e.status || "") + ": " + e.message);
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  async function poll() {
    const [list, stats] = await Promise.all([getJson("/flows?limit=200"), getJson("/stats").catch(() => null)]);
    if (!state.flow && list.flows.length) state.flow = list.flows[0].flow_id;
    renderFlows(list);
    if (stats) $("engine-stats").textContent = `slots ${stats.slots_used ?? "–"}/${stats.slots ?? "–"} · `
      + `queued ${stats.queued ?? "–"} · running ${stats.running ?? "–"}`;
    setPill("up", "scheduler up");
    const flow = state.flow;
    if (!flow) return;
    const id = encodeURIComponent(flow);
    const status = await getJson(`/flows/${id}/status?cycles=15`);
    const recent = status.recent_cycles || [];
    let cycle = state.pinnedCycle ? state.cycle : null;
    if (cycle === null || cycle === undefined) {  // follow the running cycle, else the last one
      const running = (status.running_cycles || [])[0];
      cycle = running !== undefined ? running : (status.last_cycle ?? (recent[0] ? recent[0].cycle : null));
    }
    let tasks = [], logs = [];
    if (cycle !== null && cycle !== undefined) {
      try {
        tasks = (await getJson(`/flows/${id}/cycles/${cycle}`)).tasks || [];
      } catch (e) { if (e.status !== 404) throw e; }
      logs = (await getJson(`/flows/${id}/logs?cycle=${cycle}&limit=1000`)).logs || [];
    }
    if (flow !== state.flow) return;  // the user chose another flow meanwhile: the next poll draws it
    state.cycle = cycle;
    $("cycles-flow").textContent = flow;
    renderCycles(recent);
    renderLogs(logs);
    const label = cycle === null || cycle === undefined ? "no cycle yet" : "cycle " + cycle;
    $("logs-title").textContent = `${flow} · ${label}`;
    $("dag-title").textContent = `${flow} · ${label} · ${status.status}`;
    renderDag(status.definition, tasks);
    $("updated-at").textContent = new Date().toLocaleTimeString();
  }

  readHash();
  renderLegend();
  refresh();
  setInterval(refresh, POLL_MS);
})();
