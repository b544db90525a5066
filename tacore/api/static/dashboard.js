// TACore dashboard: polls /dashboard/data every second and redraws; no framework, one vendored chart lib.
(function () {
  "use strict";
  const POLL_MS = 1000;
  let windowS = 900;
  const series = { ts: [], rps: [], errors_ps: [], p50_ms: [], p95_ms: [], p99_ms: [] };
  let lastTs = null;
  // TACore's own calls (sidecar polling, scheduler) stay out of the figures unless asked for.
  let showInternal = false;
  let charts = null;

  const $ = (id) => document.getElementById(id);
  const fmt = (v, digits = 0) => (v === null || v === undefined) ? "–" : Number(v).toLocaleString(undefined, {
    minimumFractionDigits: digits, maximumFractionDigits: digits });
  const pct = (v) => (v === null || v === undefined) ? "–" : (v * 100).toFixed(2) + "%";
  const ms = (v) => (v === null || v === undefined) ? "–" : (v < 10 ? v.toFixed(2) : v.toFixed(1));
  const price = (v) => (v === null || v === undefined) ? "–" : Number(v).toLocaleString(undefined, {
    maximumFractionDigits: Math.abs(v) >= 100 ? 2 : Math.abs(v) >= 1 ? 4 : 6 });
  const signedPct = (v) => (v === null || v === undefined) ? "–" : (v > 0 ? "+" : "") + v.toFixed(2) + "%";
  const clock = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "–";
  const ago = (t, now) => (t === null || t === undefined) ? "–" : Math.max(0, now - t).toFixed(1) + " s ago";
  const duration = (s) => {
    if (s === null || s === undefined) return "–";
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
  };

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fillTable(id, rows, render, emptyText) {
    const body = $(id).tBodies[0];
    const fresh = document.createElement("tbody");
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, emptyText, "empty");
      td.colSpan = $(id).tHead.rows[0].cells.length;
      fresh.appendChild(tr);
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      render(tr, row);
      fresh.appendChild(tr);
    }
    body.replaceWith(fresh);
  }

  function setPill(el, state, text) {
    el.className = "pill pill-" + state;
    el.textContent = text;
  }

  // -- charts ------------------------------------------------------------------------------------
  function makeChart(el, lines, yLabel, spanGaps) {
    const opts = {
      width: el.clientWidth || 600, height: 200,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: "#8594a6", grid: { stroke: "#263140" }, ticks: { stroke: "#263140" }, space: 70,
          incrs: [1, 5, 10, 15, 30, 60, 120, 300, 600, 900] },
        { stroke: "#8594a6", grid: { stroke: "#263140" }, ticks: { stroke: "#263140" }, label: yLabel, size: 60 },
      ],
      series: [{}].concat(lines.map(([label, color]) => ({ label, stroke: color, width: 1.5, spanGaps,
        value: (u, v) => v === null || v === undefined ? "–" : v.toFixed(2) }))),
    };
    return new uPlot(opts, [[]].concat(lines.map(() => [])), el);
  }

  function initCharts() {
    if (typeof uPlot === "undefined") return null;
    return {
      // a gap in the rate chart is a second the broker did not answer; in the latency chart an idle second
      rps: makeChart($("chart-rps"), [["requests/s", "#58a6ff"], ["errors/s", "#f85149"]], "req/s", false),
      latency: makeChart($("chart-latency"), [["p50", "#3fb950"], ["p95", "#d29922"], ["p99", "#f85149"]], "ms", true),
    };
  }

  function appendSeries(s) {
    for (let i = 0; i < s.ts.length; i++) {
      for (const k of Object.keys(series)) series[k].push(k in s ? s[k][i] : null);
    }
    if (s.ts.length) lastTs = s.ts[s.ts.length - 1];
    const cutoff = (lastTs || 0) - windowS;
    let drop = 0;
    while (drop < series.ts.length && series.ts[drop] < cutoff) drop++;
    if (drop) for (const k of Object.keys(series)) series[k].splice(0, drop);
  }

  function drawCharts() {
    if (!charts) return;
    charts.rps.setData([series.ts, series.rps, series.errors_ps]);
    charts.latency.setData([series.ts, series.p50_ms, series.p95_ms, series.p99_ms]);
  }

  function resizeCharts() {
    if (candle.chart) candle.chart.setSize({ width: $("chart-candles").clientWidth, height: 280 });
    if (!charts) return;
    charts.rps.setSize({ width: $("chart-rps").clientWidth, height: 200 });
    charts.latency.setSize({ width: $("chart-latency").clientWidth, height: 200 });
  }

  // -- candles: /klines of the chosen symbol, drawn by a uPlot plugin -------------------------------
  const UP = "#3fb950", DOWN = "#f85149";
  const CANDLE_LIMIT = 120, CANDLE_REFRESH_MS = 5000;
  const INTERVAL_S = { "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400 };
  const candle = { symbol: null, interval: "1h", chart: null, loadedAt: 0, busy: false };

  function drawCandles(u) {  // wick high-low, body open-close; green up, red down
    const [ts, o, h, l, c] = u.data;
    if (!ts || !ts.length) return;
    const ctx = u.ctx;
    const dpr = window.devicePixelRatio || 1;
    const slot = u.bbox.width / (ts.length + 1);
    const body = Math.max(dpr, Math.floor(slot * 0.65));
    ctx.save();
    for (let i = 0; i < ts.length; i++) {
      if (o[i] === null || c[i] === null) continue;
      const x = Math.round(u.valToPos(ts[i], "x", true));
      const yo = u.valToPos(o[i], "y", true), yc = u.valToPos(c[i], "y", true);
      const yh = u.valToPos(h[i], "y", true), yl = u.valToPos(l[i], "y", true);
      ctx.fillStyle = c[i] >= o[i] ? UP : DOWN;
      ctx.fillRect(x - Math.floor(dpr / 2), Math.min(yh, yl), Math.max(1, Math.round(dpr)), Math.abs(yl - yh));
      ctx.fillRect(x - Math.floor(body / 2), Math.min(yo, yc), body, Math.max(dpr, Math.abs(yc - yo)));
    }
    ctx.restore();
  }

  function makeCandleChart(el) {
    const hidden = (label) => ({ label, stroke: "#8594a6", paths: () => null, points: { show: false },
      value: (u, v) => v === null || v === undefined ? "–" : price(v) });
    return new uPlot({
      width: el.clientWidth || 900, height: 280,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: (u, min, max) => {  // half a candle of room at each end
        const pad = (INTERVAL_S[candle.interval] || 60) / 2;
        return [min - pad, max + pad];
      } } },
      axes: [
        { stroke: "#8594a6", grid: { stroke: "#263140" }, ticks: { stroke: "#263140" }, space: 80 },
        { stroke: "#8594a6", grid: { stroke: "#263140" }, ticks: { stroke: "#263140" }, size: 80 },
      ],
      series: [{}, hidden("open"), hidden("high"), hidden("low"), hidden("close")],
      plugins: [{ hooks: { draw: [drawCandles] } }],
    }, [[], [], [], [], []], el);
  }

  function pickDefaultSymbol(rows) {
    const priced = rows.filter((r) => r.market_status === "ok");
    if (candle.symbol && priced.some((r) => r.symbol === candle.symbol)) return;
    if (priced.length) selectSymbol(priced[0].symbol);
  }

  function selectSymbol(symbol) {
    if (symbol === candle.symbol) return;
    candle.symbol = symbol;
    candle.loadedAt = 0;
    $("candle-symbol").textContent = symbol;
    for (const tr of $("kline-symbols-table").tBodies[0].rows) {
      tr.classList.toggle("selected", tr.dataset.symbol === symbol);
    }
    loadCandles();
  }

  async function loadCandles() {
    if (!candle.symbol || candle.busy || Date.now() - candle.loadedAt < CANDLE_REFRESH_MS) return;
    if (typeof uPlot === "undefined") return;
    candle.busy = true;
    const symbol = candle.symbol, interval = candle.interval;
    try {
      const query = new URLSearchParams({ symbol, interval, limit: String(CANDLE_LIMIT) });
      const response = await fetch("/klines?" + query.toString(), { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const page = await response.json();
      if (symbol !== candle.symbol || interval !== candle.interval) return;  // the choice changed meanwhile
      const rows = page.candles || [];
      if (!candle.chart) candle.chart = makeCandleChart($("chart-candles"));
      candle.chart.setData([rows.map((r) => r.open_time / 1000), rows.map((r) => r.open),
        rows.map((r) => r.high), rows.map((r) => r.low), rows.map((r) => r.close)]);
      const el = $("chart-candles");
      el.dataset.symbol = symbol;
      el.dataset.interval = interval;
      el.dataset.candles = String(rows.length);
      candle.loadedAt = Date.now();
      const last = rows[rows.length - 1];
      $("candle-state").textContent = last ? `${rows.length} candles · last close ${price(last.close)}` +
        (last.closed ? "" : " (open)") : "no candles stored";
    } catch (err) {
      $("candle-state").textContent = "candles unavailable: " + err.message;
      candle.loadedAt = Date.now();  // retry at the next refresh, not every poll
    } finally {
      candle.busy = false;
    }
  }

  $("candle-interval").addEventListener("change", (event) => {
    candle.interval = event.target.value;
    candle.loadedAt = 0;
    loadCandles();
  });

  // -- panels ------------------------------------------------------------------------------------
  function render(d) {
    const now = d.now;
    $("updated-at").textContent = clock(now);
    if (d.broker.up) setPill($("broker-state"), "up", "broker up");
    else setPill($("broker-state"), "down", "broker down: " + (d.broker.error || "no answer"));
    $("broker-uptime").textContent = duration(d.broker.uptime_s);

    const s = d.summary || {};
    $("rps-now").textContent = fmt(s.rps_now, 1);
    $("rps-1m").textContent = fmt(s.rps_1m, 1);
    $("requests-total").textContent = fmt(s.requests_total);
    $("success-rate").textContent = pct(s.success_rate);
    $("latency").textContent = `${ms(s.avg_response_ms)} / ${ms(s.p95_response_ms)} / ${ms(s.p99_response_ms)}`;
    $("queue").textContent = d.broker.up ? `${fmt(d.broker.queue_depth)} · ${fmt(d.broker.inflight)}` : "–";
    const dead = d.workers.filter((w) => w.state === "dead").length;
    $("workers-count").textContent = d.broker.up ? `${d.workers.length - dead} / ${dead}` : "–";
    $("cache-hit-rate").textContent = pct(s.cache_hit_rate);
    const targets = s.targets || {};
    const mark = (id, keys) => {  // the seed's key indicators: green goal when met, red tile when missed
      const states = keys.map((k) => (targets[k] || {}).met).filter((m) => m !== null && m !== undefined);
      $(id).classList.toggle("missed", states.includes(false));
      $(id).classList.toggle("met", states.length > 0 && !states.includes(false));
    };
    mark("tile-latency", ["p95_response_ms"]);
    mark("tile-resources", ["cpu_percent", "memory_percent"]);
    mark("tile-cache", ["cache_hit_rate"]);
    const sys = (d.resources || {}).system || {};
    $("resources").textContent = sys.cpu_percent === undefined ? "–"
      : `${sys.cpu_percent.toFixed(0)}% · ${sys.memory_percent.toFixed(0)}%`;

    fillTable("workers-table", d.workers, (tr, w) => {
      if (w.state === "dead") tr.className = "dead";
      cell(tr, w.worker_id);
      cell(tr, w.kind);
      cell(tr, w.state + (w.state === "dead" ? ` ${ago(w.dead_at, now)}` + (w.dead_reason ? ` (${w.dead_reason})` : "") : ""),
        "state-" + w.state);
      cell(tr, w.pid === null ? "–" : String(w.pid));
      cell(tr, fmt(w.served), "num");
      cell(tr, fmt(w.failed), "num");
      cell(tr, w.cpu_percent === null ? "–" : w.cpu_percent.toFixed(0), "num");
      cell(tr, w.rss_bytes === null ? "–" : (w.rss_bytes / 1048576).toFixed(0), "num");
      cell(tr, ago(w.last_heartbeat, now), "num");
      cell(tr, (w.current || []).map((c) => c.method).join(", ") || "–");
    }, d.broker.up ? "no workers registered" : "broker down");

    fillTable("methods-table", d.methods, (tr, m) => {
      cell(tr, m.method);
      cell(tr, fmt(m.count), "num");
      cell(tr, fmt(m.rps_1m, 1), "num");
      cell(tr, pct(m.success_rate), "num");
      cell(tr, ms(m.p50_ms), "num");
      cell(tr, ms(m.p95_ms), "num");
      cell(tr, ms(m.p99_ms), "num");
      const errs = Object.entries(m.errors || {}).map(([k, v]) => `${k} ${v}`).join(", ");
      cell(tr, errs || "–", errs ? "err" : "");
    }, d.broker.up ? "no requests yet" : "broker down");

    fillTable("errors-table", d.errors, (tr, e) => {
      cell(tr, clock(e.received_at));
      cell(tr, e.method);
      cell(tr, e.error_code || "–", "err");
      cell(tr, e.worker_id || "–");
      cell(tr, ms(e.total_ms), "num");
      cell(tr, e.request_id || "–");
    }, d.database_error ? "request log unreadable: " + d.database_error : "no errors");

    const k = d.kline;
    if (k.up) setPill($("kline-state"), "up", "data agent up");
    else if (k.configured === false) setPill($("kline-state"), "unknown", "no data agent");
    else setPill($("kline-state"), "down", "data agent down");
    const symbols = k.symbols || [];
    const st = k.status || {};
    $("kline-summary").textContent = k.up ? `${symbols.length} symbols · ${fmt(st.stream_count ?? null)} streams · ` +
      `${fmt(st.klines_ingested ?? null)} klines · polled ${ago(k.updated_at, now)}` : "";
    const idle = k.up ? "none subscribed" : (k.error || (k.configured === false ? "no data agent" : "data agent down"));
    pickDefaultSymbol(symbols);
    fillTable("kline-symbols-table", symbols, (tr, row) => {
      if (row.market_status === "ok") {
        tr.className = "pick" + (row.symbol === candle.symbol ? " selected" : "");
        tr.addEventListener("click", () => selectSymbol(row.symbol));
      }
      tr.dataset.symbol = row.symbol;
      cell(tr, row.symbol);
      cell(tr, price(row.price), "num price");
      const change = row.change_24h_pct;
      cell(tr, signedPct(change), "num change" + (change > 0 ? " up" : change < 0 ? " down" : ""))
        .title = row.change_24h === null || row.change_24h === undefined ? "no 24 h of history yet"
          : `${row.change_24h > 0 ? "+" : ""}${price(row.change_24h)} since 24 h ago`;
      cell(tr, row.intervals.join(" ") || "–");
      cell(tr, row.last_update ? `${clock(row.last_update)} (${ago(row.last_update, now)})` : "–");
    }, idle);
    if (!candle.symbol) {
      $("candle-state").textContent = k.market_error ? "no prices: " + k.market_error : "pick a symbol with a price";
    }
    fillTable("kline-conn-table", k.connections, (tr, c) => {
      cell(tr, String(c.id ?? "–"));
      cell(tr, c.state || "–", c.state === "connected" ? "state-idle" : "state-busy");
      cell(tr, fmt(c.stream_count ?? (c.streams || []).length), "num");
      cell(tr, c.last_message ? `${clock(c.last_message)} (${ago(c.last_message, now)})` : "–");
      cell(tr, fmt(c.messages_received ?? null), "num");
      cell(tr, fmt(c.reconnects ?? null), "num");
    }, k.up ? "no connections" : "–");
  }

  // -- trading -----------------------------------------------------------------------------------
  const isoClock = (t) => t ? new Date(t).toLocaleTimeString() : "–";
  const dec = (v) => (v === null || v === undefined) ? "–" : String(v);  // exact decimals, as the ledger has them
  const signed = (td, v) => {  // P&L cells: green above zero, red below
    if (v !== null && v !== undefined && Number(v) !== 0) td.classList.add(Number(v) > 0 ? "gain" : "err");
  };

  function renderTrading(t, now) {
    if (t.up) setPill($("trading-state"), "up", "orders up");
    else if (t.configured === false || t.configured === null) setPill($("trading-state"), "unknown", "no order process");
    else setPill($("trading-state"), "down", "orders down");
    $("trading-summary").textContent = t.up ? `${t.positions.length} positions · ${t.open_orders.length} open orders` +
      ` · polled ${ago(t.updated_at, now)}` + (t.error ? ` · ${t.error}` : "") : "";
    const idle = t.up ? (t.error || "none") : "order process not running";
    fillTable("positions-table", t.positions, (tr, p) => {
      cell(tr, p.account);
      cell(tr, p.symbol);
      cell(tr, p.side);
      cell(tr, dec(p.qty), "num");
      cell(tr, dec(p.avg_entry_price), "num");
      cell(tr, dec(p.current_price), "num");
      cell(tr, dec(p.market_value), "num");
      signed(cell(tr, dec(p.unrealized_pl), "num"), p.unrealized_pl);
      signed(cell(tr, dec(p.realized_pl), "num"), p.realized_pl);
    }, idle);
    fillTable("open-orders-table", t.open_orders, (tr, o) => {
      cell(tr, isoClock(o.created_at));
      cell(tr, o.account);
      cell(tr, o.symbol);
      cell(tr, o.side);
      cell(tr, o.order_type);
      cell(tr, dec(o.qty), "num");
      cell(tr, dec(o.filled_qty), "num");
      cell(tr, [o.limit_price, o.stop_price].filter((v) => v !== null && v !== undefined).join(" / ") || "–", "num");
      cell(tr, o.status);
      cell(tr, o.id.slice(0, 8)).title = o.id;  // the whole id on hover
    }, idle);
    fillTable("fills-table", t.fills, (tr, f) => {
      cell(tr, isoClock(f.filled_at));
      cell(tr, f.account || "–");
      cell(tr, f.symbol);
      cell(tr, f.side);
      cell(tr, dec(f.qty), "num");
      cell(tr, dec(f.price), "num");
      cell(tr, `${dec(f.fee)} ${f.fee_asset || ""}`.trim(), "num");
      cell(tr, f.liquidity);
      cell(tr, f.order_id.slice(0, 8)).title = f.order_id;
    }, idle);
  }

  // -- polling -----------------------------------------------------------------------------------
  async function poll() {
    try {
      const params = new URLSearchParams();
      if (lastTs !== null) params.set("since", lastTs);
      if (showInternal) params.set("internal", "true");
      const url = "/dashboard/data" + (params.toString() ? "?" + params.toString() : "");
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const d = await response.json();
      windowS = d.window_s || windowS;
      appendSeries(d.series);
      render(d);
      if (d.trading) renderTrading(d.trading, d.now);
      drawCharts();
      loadCandles();
    } catch (err) {
      setPill($("broker-state"), "down", "sidecar unreachable: " + err.message);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  $("show-internal").addEventListener("change", (event) => {
    showInternal = event.target.checked;
    for (const k of Object.keys(series)) series[k].length = 0;  // the other traffic's history, from the start
    lastTs = null;
  });

  charts = initCharts();
  window.addEventListener("resize", resizeCharts);
  poll();
})();
