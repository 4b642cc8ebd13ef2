// The Covet dashboard's page: polls the JSON API once a second and draws with plain DOM and SVG (no library, no CDN).
// Every value from the server is set as text (textContent), never parsed as markup.
(function () {
  'use strict';
  const meta = name => document.querySelector('meta[name="' + name + '"]').getAttribute('content');
  const base = meta('covet-base');
  const token = meta('covet-token');
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = id => document.getElementById(id);

  let selected = null;          // id of the pool shown in detail
  let history = null;           // its samples: { t: [], inUse: [], ... }
  let intervalMs = 1000, capacity = 600;
  const openTraces = new Set([0]);   // holder rows whose stack trace is unfolded (the longest one by default)
  let resizeFilledFor = null;

  function el(tag, props, children) {
    const e = document.createElement(tag);
    if (props) for (const k of Object.keys(props)) {
      if (k === 'text') e.textContent = props[k];
      else if (k === 'cls') e.className = props[k];
      else e.setAttribute(k, props[k]);
    }
    if (children) for (const c of children) if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k of Object.keys(attrs)) {
      if (k === 'text') e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    }
    return e;
  }

  function ms(v) {
    if (v == null) return '–';
    if (v < 1) return v.toFixed(2) + ' ms';
    if (v < 1000) return v.toFixed(v < 10 ? 1 : 0) + ' ms';
    const s = v / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    const m = Math.floor(s / 60);
    return m + ' min ' + Math.floor(s - m * 60) + ' s';
  }
  function badge(node, text) {
    node.textContent = text;
    node.className = 'badge ' + text.toLowerCase().replace(/[^a-z]/g, '');
  }
  function message(text, isError) {
    const m = $('message');
    m.hidden = !text;
    m.textContent = text || '';
    m.className = 'message' + (isError ? ' error' : '');
  }

  async function getJson(url) {
    const r = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new Error(url + ': HTTP ' + r.status + ' ' + (await errorText(r)));
    return r.json();
  }
  async function errorText(r) {
    try { const j = await r.json(); return j.error || JSON.stringify(j); } catch { return r.statusText; }
  }

  // ---- the pool table ----
  function renderPools(list) {
    const body = $('pools').tBodies[0];
    body.replaceChildren();
    $('no-pools').hidden = list.pools.length > 0;
    for (const p of list.pools) {
      const util = p.maxPoolSize ? Math.min(100, 100 * p.inUse / p.maxPoolSize) : 0;
      const fill = el('span');
      fill.style.width = util.toFixed(1) + '%';   // CSSOM, allowed by the page's CSP (no inline style attributes)
      const state = el('span'), breaker = el('span');
      badge(state, p.state); badge(breaker, p.breakerState);
      const row = el('tr', { 'data-pool-id': String(p.id), cls: p.id === selected ? 'selected' : '' }, [
        el('td', { cls: 'name', text: p.name }),
        el('td', null, [state]),
        el('td', null, [breaker]),
        el('td', { cls: 'num', text: String(p.inUse) }),
        el('td', { cls: 'num', text: String(p.idle) }),
        el('td', { cls: 'num', text: String(p.waiting) }),
        el('td', { cls: 'num', text: String(p.maxPoolSize) }),
        el('td', { cls: 'nowrap' }, [el('span', { cls: 'bar' + (p.waiting > 0 ? ' hot' : '') }, [fill]), el('span', { cls: 'pct', text: util.toFixed(0) + '%' })]),
        el('td', { cls: 'num', text: ms(p.acquireP50Ms) + ' / ' + ms(p.acquireP95Ms) + ' / ' + ms(p.acquireP99Ms) }),
        el('td', { cls: 'num', text: ms(p.useP50Ms) + ' / ' + ms(p.useP99Ms) }),
        el('td', { cls: 'num', text: String(p.connectionsCreated) }),
        el('td', { cls: 'num', text: String(p.connectionFailures) }),
        el('td', { cls: 'num' + (p.suspectedLeaks > 0 ? ' leak' : ''), text: String(p.suspectedLeaks) }),
      ]);
      row.addEventListener('click', () => select(p.id));
      body.appendChild(row);
    }
  }

  function select(id) {
    if (id === selected) return;
    selected = id;
    history = null;
    openTraces.clear(); openTraces.add(0);
    resizeFilledFor = null;
    refresh(false);
  }

  // ---- the selected pool ----
  function renderDetail(p) {
    $('detail').hidden = false;
    $('detail-name').textContent = p.name;
    badge($('detail-state'), p.state);
    badge($('detail-breaker'), 'breaker ' + p.breakerState);
    $('detail-shared').textContent = p.poolsSharingName > 1 ? p.poolsSharingName + ' pools share this name: actions apply to all of them' : '';
    const stats = [
      ['total', p.total], ['in use', p.inUse], ['idle', p.idle], ['waiting', p.waiting],
      ['min / max', p.minPoolSize + ' / ' + p.maxPoolSize], ['warm target', p.warmTarget],
      ['checkouts', p.checkouts], ['acquire max', ms(p.acquireMaxMs)], ['use p95', ms(p.useP95Ms)],
      ['created', p.connectionsCreated], ['destroyed', p.connectionsDestroyed], ['open failures', p.connectionFailures],
      ['pre-ping failures', p.prePingFailures], ['health-check failures', p.healthCheckFailures], ['reset failures', p.resetFailures],
      ['acquire timeouts', p.acquireTimeouts], ['suspected leaks', p.suspectedLeaks], ['leaks detected', p.leaksDetected],
      ['leaks reclaimed', p.leaksReclaimed], ['forgotten connections', p.forgottenConnections], ['circuit rejections', p.circuitRejections],
    ];
    $('detail-stats').replaceChildren(...stats.map(([k, v]) => el('div', null, [el('dt', { text: k }), el('dd', { text: String(v) })])));
    if (resizeFilledFor !== p.id) {
      $('resize-min').value = p.minPoolSize;
      $('resize-max').value = p.maxPoolSize;
      resizeFilledFor = p.id;
    }
    renderHolders(p.holders || []);
  }

  function renderHolders(holders) {
    const body = $('holders').tBodies[0];
    body.replaceChildren();
    $('no-holders').hidden = holders.length > 0;
    holders.forEach((h, i) => {
      const trace = h.stackTrace || '(no stack trace captured for this checkout: see LeakStackTraces)';
      const first = trace.split('\n').find(l => l.trim().length > 0) || trace;
      const details = el('details', null, [el('summary', { text: first.trim() }), el('pre', { cls: 'trace', text: trace })]);
      details.open = openTraces.has(i);
      details.addEventListener('toggle', () => { if (details.open) openTraces.add(i); else openTraces.delete(i); });
      body.appendChild(el('tr', { cls: 'holder' }, [
        el('td', { cls: 'num', text: String(i + 1) }),
        el('td', { cls: 'num', text: ms(h.heldMs) }),
        el('td', { text: h.threadId + (h.threadName ? ' (' + h.threadName + ')' : '') }),
        el('td', null, [details]),
      ]));
    });
  }

  // ---- history and charts ----
  const KEYS = ['t', 'inUse', 'idle', 'waiting', 'total', 'max', 'acquireP50Ms', 'acquireP99Ms'];
  function mergeHistory(h) {
    intervalMs = h.sampleIntervalMs; capacity = h.capacity;
    if (!history) { history = {}; for (const k of KEYS) history[k] = []; }
    for (let i = 0; i < h.t.length; i++) for (const k of KEYS) history[k].push(h[k][i]);
    const extra = history.t.length - capacity;
    if (extra > 0) for (const k of KEYS) history[k].splice(0, extra);
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function drawChart(node, series, yMax, format) {
    const W = 640, H = 200, L = 44, R = 8, T = 10, B = 22;
    node.replaceChildren();
    const t = history ? history.t : [];
    node.setAttribute('data-samples', String(t.length));
    const now = t.length ? t[t.length - 1] : Date.now();
    // The window grows with the history, from one minute up to the whole of it (ten minutes by default).
    const span = Math.min(capacity * intervalMs, Math.max(60000, t.length ? now - t[0] : 0));
    const x = ts => L + (W - L - R) * (1 - (now - ts) / span);
    const y = v => T + (H - T - B) * (1 - Math.min(v, yMax) / yMax);
    for (const f of [0, 0.5, 1]) {
      node.appendChild(svg('line', { x1: L, x2: W - R, y1: y(yMax * f), y2: y(yMax * f), class: 'gridline' }));
      node.appendChild(svg('text', { x: L - 6, y: y(yMax * f) + 4, 'text-anchor': 'end', class: 'label', text: format(yMax * f) }));
    }
    const minutes = span / 60000;
    for (const f of [0, 0.5, 1]) {
      const ago = minutes * (1 - f);
      const label = f === 1 ? 'now' : ago < 2 ? '−' + Math.round(ago * 60) + ' s' : '−' + ago.toFixed(0) + ' min';
      node.appendChild(svg('text', { x: L + (W - L - R) * f, y: H - 6, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle', class: 'label', text: label }));
    }
    if (!t.length) return;
    for (const s of series) {
      const pts = [];
      for (let i = 0; i < t.length; i++) pts.push(x(t[i]).toFixed(1) + ',' + y(s.values[i]).toFixed(1));
      if (pts.length === 1) pts.push((x(t[0]) + 2).toFixed(1) + ',' + y(s.values[0]).toFixed(1));
      node.appendChild(svg('polyline', { points: pts.join(' '), class: 's-' + s.cls }));
    }
  }

  function renderCharts() {
    const h = history || { inUse: [], idle: [], waiting: [], max: [], acquireP50Ms: [], acquireP99Ms: [] };
    const connMax = niceMax(Math.max(1, ...h.max, ...h.inUse.map((v, i) => v + (h.idle[i] || 0)), ...h.waiting));
    drawChart($('chart-connections'), [
      { cls: 'max', values: h.max }, { cls: 'idle', values: h.idle }, { cls: 'inuse', values: h.inUse }, { cls: 'waiting', values: h.waiting },
    ], connMax, v => String(Math.round(v)));
    const waitMax = niceMax(Math.max(0.1, ...h.acquireP99Ms));
    drawChart($('chart-wait'), [{ cls: 'p50', values: h.acquireP50Ms }, { cls: 'p99', values: h.acquireP99Ms }], waitMax,
      v => v >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(v >= 1 ? 1 : 2));
  }

  // ---- actions ----
  async function act(action) {
    if (selected == null) return;
    if ((action === 'clear' || action === 'drain') &&
        !window.confirm(action === 'clear' ? 'Close every idle connection of this pool now?' : 'Pause this pool and close all its connections?')) return;
    let url = base + '/api/pools/' + selected + '/' + action;
    let body;
    if (action === 'drain') url += '?timeoutSeconds=30';
    if (action === 'resize') body = JSON.stringify({ minPoolSize: Number($('resize-min').value), maxPoolSize: Number($('resize-max').value) });
    try {
      const r = await fetch(url, {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json', 'X-Covet-Dashboard-Token': token }, body: body,
      });
      if (r.ok) { const j = await r.json(); message(j.message, false); }
      else message(action + ': ' + (await errorText(r)) + ' (HTTP ' + r.status + ')', true);
    } catch (e) {
      message(action + ': ' + e.message, true);
    }
    resizeFilledFor = null;
    refresh(false);
  }

  // ---- the loop ----
  let timer = null;
  async function refresh(schedule) {
    try {
      const list = await getJson(base + '/api/pools');
      const mode = $('mode');
      mode.textContent = list.actionsEnabled ? 'actions enabled' : 'read-only';
      mode.className = 'badge ' + (list.actionsEnabled ? 'actions' : 'readonly');
      $('actions').hidden = !list.actionsEnabled;
      if (!list.pools.some(p => p.id === selected)) { selected = list.pools.length ? list.pools[0].id : null; history = null; }
      renderPools(list);
      if (selected == null) { $('detail').hidden = true; }
      else {
        const since = history && history.t.length ? history.t[history.t.length - 1] : 0;
        const [pool, h] = await Promise.all([
          getJson(base + '/api/pools/' + selected),
          getJson(base + '/api/pools/' + selected + '/history?since=' + since),
        ]);
        if (pool.id === selected) { mergeHistory(h); renderDetail(pool); renderCharts(); }
      }
      $('updated').textContent = 'updated ' + new Date(list.generatedAtUnixMs).toLocaleTimeString();
    } catch (e) {
      $('updated').textContent = 'update failed: ' + e.message;
    } finally {
      if (schedule !== false) { clearTimeout(timer); timer = setTimeout(refresh, 1000); }
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    document.querySelectorAll('#actions button[data-action]').forEach(b => b.addEventListener('click', () => act(b.getAttribute('data-action'))));
    refresh();
  });
})();
