// mcp-scout dashboard (served by the daemon, embedded in the binary; no build step).
//
// Safety rule of this file: every string that came from a server (names, descriptions,
// instructions, titles, URLs, error messages) reaches the page through textContent or
// createTextNode, never as HTML; styles are classes, never style attributes (the page's CSP
// forbids inline script and style). State lives in the URL hash, so a view can be shared.
'use strict';

(function () {
  const PAGE_ROWS = 100;
  const LIVE_REFRESH_MS = 300; // debounce of refreshes caused by live changes
  const FEED_MAX = 200; // entries kept in the live feed
  const TOPO_MAX = 10000; // servers read by the topology view
  const TOPO_EXPAND_LIMIT = 60; // groups with more servers than this start collapsed
  const HEALTHS = ['healthy', 'degraded', 'unhealthy', 'unknown', 'gone'];
  const KINDS = ['mcp', 'mcp-auth-required', 'mcp-likely'];
  const SVGNS = 'http://www.w3.org/2000/svg';

  // ------------------------------------------------------------------ DOM helpers

  // el('td', {class: 'num', title: t}, child, 'text', ...): children are nodes or text.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'onclick') e.addEventListener('click', v);
      else if (k === 'onchange') e.addEventListener('change', v);
      else if (k === 'oninput') e.addEventListener('input', v);
      else e.setAttribute(k, String(v));
    }
  }
  function append(e, kids) {
    for (const k of kids.flat()) {
      if (k === undefined || k === null || k === false) continue;
      e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function svgTitle(text) {
    const t = document.createElementNS(SVGNS, 'title');
    t.textContent = text;
    return t;
  }
  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }
  function text(v) {
    if (v === undefined || v === null || v === '') return '—';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function plural(n, word) {
    return n + ' ' + word + (n === 1 ? '' : 's');
  }
  function pct(v) {
    return typeof v === 'number' ? (v * 100).toFixed(v >= 0.9995 ? 0 : 1) + ' %' : '—';
  }
  function ago(iso) {
    if (!iso) return '—';
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return String(iso);
    const s = Math.round((Date.now() - t) / 1000);
    if (s < 0) return 'in ' + dur(-s);
    return dur(s) + ' ago';
  }
  function dur(s) {
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 129600) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }
  function badge(health, reason) {
    const h = HEALTHS.includes(health) ? health : 'unknown';
    return el('span', { class: 'badge h-' + h, title: reason || h, 'data-health': h }, h);
  }
  function kv(obj) {
    const dl = el('dl', { class: 'kv' });
    for (const [k, v] of Object.entries(obj || {})) {
      dl.appendChild(el('dt', null, k));
      dl.appendChild(el('dd', null, text(v)));
    }
    return dl;
  }
  function card(title, ...kids) {
    return el('div', { class: 'card' }, el('h3', null, title), ...kids);
  }

  async function api(path) {
    const r = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || ('HTTP ' + r.status + ' for ' + path));
    return body;
  }

  // ------------------------------------------------------------------ routing

  function route() {
    const h = location.hash.replace(/^#/, '') || '/servers';
    const [path, query] = h.split('?');
    const parts = path.split('/').filter(Boolean);
    return { view: parts[0] || 'servers', id: parts[1] ? decodeURIComponent(parts.slice(1).join('/')) : null,
      params: new URLSearchParams(query || '') };
  }
  function go(view, params) {
    const q = params && params.toString();
    location.hash = '#/' + view + (q ? '?' + q : '');
  }

  const main = () => document.getElementById('main');
  let current = null; // { view, refresh() }

  function render() {
    const r = route();
    for (const n of ['servers', 'topology', 'ops']) {
      const a = document.getElementById('nav-' + n);
      if (a) a.classList.toggle('current', r.view === n || (n === 'servers' && r.view === 'server'));
    }
    if (current && current.view === r.view && current.view === 'servers') {
      current.update(r); // keep the filter inputs (and their focus); reload the table only
      return;
    }
    clear(main());
    if (r.view === 'server' && r.id) current = serverView(r.id);
    else if (r.view === 'topology') current = topologyView();
    else if (r.view === 'ops') current = opsView();
    else current = serversView(r);
  }

  // ------------------------------------------------------------------ servers table

  const COLUMNS = [
    ['health', 'Health'], ['kind', 'Kind'], ['name', 'Name'], ['version', 'Version'], ['url', 'URL'],
    ['transport', 'Transport'], ['protocol', 'Protocol'], ['tools', 'Tools'], ['auth', 'Auth'],
    ['uptime', 'Uptime 24 h'], ['last_seen', 'Last seen'], ['origin', 'Found by'],
  ];
  let firstRenderMarked = false;

  function serversView(r0) {
    const root = main();
    const form = el('div', { class: 'filters', id: 'filters' });
    const kind = el('select', { id: 'f-kind', name: 'kind' }, el('option', { value: '' }, 'any kind'),
      KINDS.map((k) => el('option', { value: k }, k)));
    const health = el('select', { id: 'f-health', name: 'health' }, el('option', { value: '' }, 'any health'),
      HEALTHS.filter((h) => h !== 'gone').map((h) => el('option', { value: h }, h)));
    const cap = el('input', { id: 'f-capability', name: 'capability', placeholder: 'tool name, * wildcard', size: 18 });
    const q = el('input', { id: 'f-q', name: 'q', placeholder: 'url, name, version, tool', size: 22, type: 'search' });
    const count = el('span', { id: 'count', class: 'muted' });
    form.append(
      el('label', null, 'Kind', kind), el('label', null, 'Health', health),
      el('label', null, 'Capability or tool', cap), el('label', null, 'Text', q),
      el('button', { id: 'f-clear', type: 'button', onclick: () => go('servers') }, 'Clear'), count);
    const status = el('p', { id: 'table-status', class: 'muted' });
    const table = el('table', { id: 'servers', 'data-state': 'loading' });
    const pager = el('div', { class: 'pager' });
    root.append(el('h2', null, 'Servers'), form, status, table, pager);

    let params = r0.params;
    let timer = null;
    let seq = 0;
    function apply() {
      const p = new URLSearchParams();
      for (const [k, v] of [['kind', kind.value], ['health', health.value], ['capability', cap.value.trim()],
        ['q', q.value.trim()], ['sort', params.get('sort')], ['order', params.get('order')]]) {
        if (v) p.set(k, v);
      }
      go('servers', p);
    }
    kind.addEventListener('change', apply);
    health.addEventListener('change', apply);
    for (const i of [cap, q]) {
      i.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(apply, 350); });
      i.addEventListener('keydown', (e) => { if (e.key === 'Enter') { clearTimeout(timer); apply(); } });
    }
    function fill() {
      kind.value = params.get('kind') || '';
      health.value = params.get('health') || '';
      if (document.activeElement !== cap) cap.value = params.get('capability') || '';
      if (document.activeElement !== q) q.value = params.get('q') || '';
    }

    async function load() {
      const mine = ++seq;
      const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
      const a = new URLSearchParams();
      if (params.get('kind')) a.set('kind', params.get('kind'));
      if (params.get('health')) a.set('health_status', params.get('health'));
      if (params.get('capability')) a.set('capability', params.get('capability'));
      if (params.get('q')) a.set('q', params.get('q'));
      if (params.get('sort')) a.set('sort', params.get('sort'));
      if (params.get('order')) a.set('order', params.get('order'));
      a.set('offset', String((page - 1) * PAGE_ROWS));
      a.set('limit', String(PAGE_ROWS));
      let doc;
      try {
        doc = await api('/api/v1/dashboard/servers?' + a.toString());
      } catch (e) {
        if (mine !== seq) return;
        status.className = 'error';
        status.textContent = e.message;
        table.setAttribute('data-state', 'error');
        return;
      }
      if (mine !== seq) return; // a newer load is under way
      status.className = 'muted';
      status.textContent = '';
      drawTable(doc.rows);
      count.textContent = doc.total + (doc.total === 1 ? ' server' : ' servers');
      drawPager(page, doc.total);
      table.setAttribute('data-state', 'ready');
      table.setAttribute('data-total', String(doc.total));
      if (!firstRenderMarked) {
        firstRenderMarked = true;
        window.__scoutFirstRender = performance.now();
        document.documentElement.setAttribute('data-first-render-ms', window.__scoutFirstRender.toFixed(1));
      }
    }

    function sortBy(key) {
      const p = new URLSearchParams(params);
      if (p.get('sort') === key) p.set('order', p.get('order') === 'desc' ? 'asc' : 'desc');
      else { p.set('sort', key); p.set('order', 'asc'); }
      p.delete('page');
      go('servers', p);
    }

    function drawTable(rows) {
      clear(table);
      const sort = params.get('sort');
      const order = params.get('order') === 'desc' ? 'desc' : 'asc';
      const head = el('tr', null, COLUMNS.map(([key, label]) => el('th', {
        class: 'sortable' + (sort === key ? ' sorted-' + order : ''), 'data-sort': key,
        title: 'sort on ' + label.toLowerCase(), onclick: () => sortBy(key),
      }, label)));
      const body = el('tbody');
      const frag = document.createDocumentFragment();
      for (const s of rows) frag.appendChild(serverRow(s));
      body.appendChild(frag);
      table.append(el('thead', null, head), body);
      if (!rows.length) {
        body.appendChild(el('tr', null, el('td', { colspan: COLUMNS.length, class: 'muted' }, 'No server matches.')));
      }
    }

    function drawPager(page, total) {
      clear(pager);
      const pages = Math.max(1, Math.ceil(total / PAGE_ROWS));
      const to = (n) => { const p = new URLSearchParams(params); if (n > 1) p.set('page', String(n)); else p.delete('page'); go('servers', p); };
      pager.append(
        el('button', { type: 'button', id: 'prev', disabled: page <= 1 ? 'disabled' : null, onclick: () => to(page - 1) }, '‹ Previous'),
        el('span', { id: 'page-of' }, 'page ' + page + ' of ' + pages),
        el('button', { type: 'button', id: 'next', disabled: page >= pages ? 'disabled' : null, onclick: () => to(page + 1) }, 'Next ›'));
    }

    fill();
    load();
    return {
      view: 'servers',
      update(r) { params = r.params; fill(); load(); },
      refresh: load,
    };
  }

  function serverRow(s) {
    const href = '#/server/' + encodeURIComponent(s.id);
    const auth = s.auth ? (s.auth.required ? 'required' : 'optional') : 'none';
    const name = s.server_name || s.ip + ':' + s.port;
    return el('tr', { 'data-id': s.id, class: 'row-' + (s.health || 'unknown') },
      el('td', { class: 'health' }, badge(s.health, s.health_reason)),
      el('td', { class: 'kind' }, text(s.kind)),
      el('td', { class: 'name wrap' }, el('a', { href }, name)),
      el('td', { class: 'version' }, text(s.server_version)),
      el('td', { class: 'url' }, text(s.url)),
      el('td', null, text(s.transport)),
      el('td', null, text(s.protocol_version)),
      el('td', { class: 'num tools' }, String(s.tools)),
      el('td', { class: 'auth' }, auth),
      el('td', { class: 'num uptime' }, pct(s.uptime_24h)),
      el('td', { class: 'seen', title: s.last_seen }, ago(s.last_seen)),
      el('td', { class: 'origin' }, (s.origins || []).join(', ') + (s.jobs && s.jobs.length ? ' (' + s.jobs.join(', ') + ')' : '')));
  }

  // ------------------------------------------------------------------ one server

  function serverView(id) {
    const root = main();
    const box = el('div', { id: 'server', 'data-state': 'loading' });
    root.append(el('p', null, el('a', { href: '#/servers' }, '‹ all servers')), box);
    async function load() {
      let s, checks, series;
      try {
        const e = encodeURIComponent(id);
        [s, checks, series] = await Promise.all([
          api('/api/v1/servers/' + e),
          api('/api/v1/servers/' + e + '/checks?limit=50'),
          api('/api/v1/servers/' + e + '/series?window=24h&buckets=96'),
        ]);
      } catch (err) {
        clear(box).append(el('p', { class: 'error' }, err.message));
        return;
      }
      drawServer(box, s, checks.checks || [], series);
      box.setAttribute('data-state', 'ready');
    }
    load();
    return { view: 'server', id, refresh: load };
  }

  function drawServer(box, s, checks, series) {
    clear(box);
    const h = s.health || {};
    box.append(el('h2', { id: 'server-name' }, (s.server_name || s.url || s.id) + (s.server_version ? ' ' + s.server_version : '')),
      el('p', null, badge(h.status || 'unknown', h.reason), ' ', el('span', { class: 'wrap' }, text(s.url)),
        h.reason ? el('span', { class: 'muted' }, ' — ' + h.reason) : null));

    const cards = el('div', { class: 'cards' });
    cards.append(card('Endpoint', kv({
      kind: s.kind, status: s.status, transport: s.transport, protocol: s.protocol_version,
      'protocol versions': (s.protocol_versions || []).join(', '), address: s.ip + ':' + s.port,
      'first seen': s.first_seen, 'last seen': s.last_seen, 'found by': (s.origins || []).join(', '),
      jobs: (s.jobs || []).join(', '), 'announced as': (s.announced_as || []).join(', '),
      confidence: s.confidence, id: s.id,
    })));
    const u = s.uptime || {};
    cards.append(card('Uptime', el('div', { class: 'uptime-box', id: 'uptime' },
      ['1h', '24h', '7d', '30d'].map((w) => el('div', null, el('b', null, pct(u[w])), w)))),
    card('Health', kv({
      status: h.status, since: h.since, reason: h.reason, flapping: h.flapping,
      'last check': h.last_check_at, 'latency ms': typeof h.latency_ms === 'number' ? h.latency_ms.toFixed(1) : null,
      'failures in a row': h.consecutive_failures, 'passes in a row': h.consecutive_successes,
    })));
    const a = s.auth;
    cards.append(card('Auth', a ? kv({
      required: a.required, 'resource metadata': a.resource_metadata, resource: a.resource,
      'authorization servers': (a.authorization_servers || []).join(', '), scopes: (a.scopes || []).join(', '),
    }) : el('p', { class: 'muted' }, 'No authorization asked.')));
    const http = s.http || {};
    cards.append(card('HTTP and TLS', kv({ scheme: http.scheme, status: http.status, server: http.server, title: http.title }),
      http.tls ? el('div', null, el('h3', null, 'Certificate'), kv(http.tls)) : el('p', { class: 'muted' }, 'No TLS certificate.')));
    // The record's `k8s` is {namespace, pod, node, labels}; `node` is the daemon's node.
    if (s.k8s || s.node) {
      const k = s.k8s;
      cards.append(card('Kubernetes', k ? kv({
        namespace: k.namespace, pod: k.pod, node: k.node,
        labels: Object.entries(k.labels || {}).map(([n, v]) => n + '=' + v).join(', '),
      }) : null, kv({ 'found by the daemon on node': s.node })));
    }
    box.appendChild(cards);

    box.append(el('h3', null, 'Last 24 h'), statusStrip(series), latencyChart(series));

    box.append(el('h3', null, 'Checks'));
    const last = el('table', { id: 'checks-last' }, el('tr', null, ['Check', 'Severity', 'Result', 'Latency ms', 'At', 'Message'].map((t) => el('th', null, t))));
    for (const c of h.checks || []) {
      last.appendChild(el('tr', null, el('td', null, text(c.name)), el('td', null, text(c.severity)),
        el('td', null, c.ok ? 'pass' : 'fail'), el('td', { class: 'num' }, text(c.latency_ms)),
        el('td', null, text(c.at)), el('td', { class: 'wrap' }, text(c.message))));
    }
    box.appendChild(last);
    const recent = el('table', { id: 'checks-recent' }, el('tr', null, ['At', 'Check', 'Result', 'Latency ms', 'Message'].map((t) => el('th', null, t))));
    for (const c of checks) {
      recent.appendChild(el('tr', null, el('td', null, text(c.at)), el('td', null, text(c.check)),
        el('td', null, c.ok ? 'pass' : 'fail'), el('td', { class: 'num' }, c.latency_ms == null ? '—' : c.latency_ms.toFixed(1)),
        el('td', { class: 'wrap' }, text(c.message))));
    }
    box.append(el('h3', null, 'Recent results'), recent);

    box.append(el('h3', null, 'Tools (' + (s.tools || []).length + ')'));
    const tools = el('table', { id: 'tools' }, el('tr', null, ['Name', 'Description', 'Schema hash'].map((t) => el('th', null, t))));
    for (const t of s.tools || []) {
      tools.appendChild(el('tr', null, el('td', { class: 'tool-name' }, text(t.name)),
        el('td', { class: 'desc tool-desc' }, t.description || ''), el('td', { class: 'muted' }, text(t.input_schema_hash))));
    }
    box.appendChild(tools);
    if (s.instructions) box.append(el('h3', null, 'Instructions'), el('pre', { id: 'instructions' }, s.instructions));
    box.append(el('h3', null, 'Capabilities'), el('pre', { id: 'capabilities' }, JSON.stringify(s.capabilities || {}, null, 2)));
    if (s.server_card) box.append(el('h3', null, 'Server card'), el('pre', null, JSON.stringify(s.server_card, null, 2)));

    box.append(el('h3', null, 'Change history'));
    const ch = el('table', { id: 'changes' }, el('tr', null, ['Seq', 'At', 'Change', 'Detail'].map((t) => el('th', null, t))));
    for (const c of s.changes || []) {
      ch.appendChild(el('tr', null, el('td', { class: 'num' }, String(c.seq)), el('td', null, text(c.at)),
        el('td', null, text(c.kind)), el('td', { class: 'wrap' }, JSON.stringify(c.detail))));
    }
    box.appendChild(ch);
  }

  // One cell per bucket of the last 24 h: green all passed, amber some, red none, grey no data.
  function statusStrip(series) {
    const W = 960, H = 22;
    const n = Math.max(1, Math.round((Date.parse(series.to) - Date.parse(series.from)) / 1000 / series.bucket_s));
    const by = new Map(series.buckets.map((b) => [Math.round((Date.parse(b.start) - Date.parse(series.from)) / 1000 / series.bucket_s), b]));
    const s = svg('svg', { id: 'status-strip', viewBox: '0 0 ' + W + ' ' + (H + 14), width: W, height: H + 14, role: 'img' });
    s.appendChild(svgTitle('status over the last 24 h'));
    const w = W / n;
    for (let i = 0; i < n; i++) {
      const b = by.get(i);
      let cls = 'nodata';
      if (b && b.total > 0) cls = b.ok === b.total ? 'ok' : (b.ok === 0 ? 'bad' : 'partial');
      const r = svg('rect', { x: (i * w).toFixed(2), y: 0, width: Math.max(1, w - 1).toFixed(2), height: H, class: cls });
      if (b) r.appendChild(svgTitle(b.start + ': ' + b.ok + ' of ' + b.total + ' critical checks passed'));
      s.appendChild(r);
    }
    s.append(svg('text', { x: 0, y: H + 12 }, '24 h ago'), svg('text', { x: W, y: H + 12, 'text-anchor': 'end' }, 'now'));
    return s;
  }

  // Mean handshake (`mcp` check) latency per bucket.
  function latencyChart(series) {
    const W = 960, H = 160, L = 44, B = 18;
    const pts = series.buckets.filter((b) => typeof b.latency_avg_ms === 'number');
    const c = svg('svg', { id: 'latency-chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' });
    c.appendChild(svgTitle('handshake latency over the last 24 h'));
    if (!pts.length) {
      c.appendChild(svg('text', { x: L, y: H / 2 }, 'no latency measured in the last 24 h'));
      return c;
    }
    const max = Math.max(1, ...pts.map((b) => b.latency_max_ms || b.latency_avg_ms));
    const t0 = Date.parse(series.from), t1 = Date.parse(series.to);
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - 4);
    const y = (v) => 4 + (1 - v / max) * (H - B - 8);
    c.append(svg('line', { x1: L, y1: y(0), x2: W, y2: y(0), class: 'axis' }),
      svg('line', { x1: L, y1: 4, x2: L, y2: y(0), class: 'axis' }),
      svg('text', { x: L - 4, y: 12, 'text-anchor': 'end' }, max.toFixed(0) + ' ms'),
      svg('text', { x: L - 4, y: y(0), 'text-anchor': 'end' }, '0'),
      svg('text', { x: L, y: H - 4 }, '24 h ago'), svg('text', { x: W, y: H - 4, 'text-anchor': 'end' }, 'now'));
    const half = series.bucket_s * 500;
    const d = pts.map((b) => x(Date.parse(b.start) + half).toFixed(1) + ',' + y(b.latency_avg_ms).toFixed(1)).join(' ');
    c.appendChild(svg('polyline', { points: d, class: 'line' }));
    for (const b of pts) {
      const dot = svg('circle', { cx: x(Date.parse(b.start) + half).toFixed(1), cy: y(b.latency_avg_ms).toFixed(1), r: 2.5, class: 'ok' });
      dot.appendChild(svgTitle(b.start + ': mean ' + b.latency_avg_ms.toFixed(1) + ' ms, max ' + text(b.latency_max_ms && b.latency_max_ms.toFixed(1)) + ' ms'));
      c.appendChild(dot);
    }
    return c;
  }

  // ------------------------------------------------------------------ topology

  const expanded = new Set();
  const collapsed = new Set();

  function topologyView() {
    const root = main();
    const box = el('div', { id: 'topology', 'data-state': 'loading' });
    root.append(el('h2', null, 'Topology'), el('p', { class: 'muted topo-legend' },
      HEALTHS.map((h) => el('span', null, badge(h))), ' Click a group to open or close it; a dot opens its server.'), box);
    async function load() {
      let doc;
      try {
        doc = await api('/api/v1/dashboard/servers?sort=address&limit=' + TOPO_MAX);
      } catch (e) {
        clear(box).append(el('p', { class: 'error' }, e.message));
        return;
      }
      drawTopology(box, doc.rows, doc.total);
      box.setAttribute('data-state', 'ready');
    }
    load();
    return { view: 'topology', refresh: load };
  }

  function subnetOf(ip) {
    if (ip.includes(':')) return ip.split(':').slice(0, 4).join(':') + '::/64';
    return ip.split('.').slice(0, 3).join('.') + '.0/24';
  }

  // Groups: subnet -> host -> servers, or node -> pod -> servers when a record has `k8s`.
  function groupsOf(rows) {
    const groups = new Map();
    for (const s of rows) {
      let g, h;
      if (s.k8s) {
        const k = s.k8s;
        g = 'node ' + (k.node || s.node || 'unknown');
        h = 'pod ' + k.namespace + '/' + (k.pod || s.ip);
      } else {
        g = subnetOf(s.ip);
        h = s.ip;
      }
      if (!groups.has(g)) groups.set(g, new Map());
      const hosts = groups.get(g);
      if (!hosts.has(h)) hosts.set(h, []);
      hosts.get(h).push(s);
    }
    return groups;
  }

  function healthCounts(list) {
    const c = {};
    for (const s of list) c[s.health || 'unknown'] = (c[s.health || 'unknown'] || 0) + 1;
    return c;
  }

  function drawTopology(box, rows, total) {
    clear(box);
    const W = 1000, ROW = 26, DOT = 10, CELL = 122, PER_CELL = 8;
    const groups = groupsOf(rows);
    const s = svg('svg', { id: 'topology-svg', width: W, role: 'img' });
    s.appendChild(svgTitle('servers grouped by ' + (rows.some((r) => r.k8s) ? 'node and pod' : 'subnet and host')));
    let y = 4;
    for (const [g, hosts] of groups) {
      const all = [...hosts.values()].flat();
      const open = expanded.has(g) || (!collapsed.has(g) && all.length <= TOPO_EXPAND_LIMIT);
      const grp = svg('g', { class: 'group', 'data-group': g });
      grp.appendChild(svg('rect', { x: 0, y, width: W, height: ROW - 4, rx: 4, class: 'group-bg' }));
      grp.appendChild(svg('text', { x: 8, y: y + 16, class: 'label' }, (open ? '▾ ' : '▸ ') + g + ' — ' + plural(hosts.size, 'host') + ', ' + plural(all.length, 'server')));
      // health bar of the group
      const counts = healthCounts(all);
      let bx = W - 310;
      for (const h of HEALTHS) {
        const n = counts[h] || 0;
        if (!n) continue;
        const w = (300 * n) / all.length;
        const r = svg('rect', { x: bx.toFixed(1), y: y + 5, width: Math.max(1, w).toFixed(1), height: ROW - 14, class: h });
        r.appendChild(svgTitle(n + ' ' + h));
        grp.appendChild(r);
        bx += w;
      }
      grp.addEventListener('click', () => {
        if (open) { expanded.delete(g); collapsed.add(g); } else { collapsed.delete(g); expanded.add(g); }
        drawTopology(box, rows, total);
      });
      s.appendChild(grp);
      y += ROW;
      if (!open) continue;
      // Hosts as a grid of cells (address and one dot per server), so a subnet of 250
      // one-server hosts takes a few dozen lines, not 250.
      const cols = Math.max(1, Math.floor((W - 24) / CELL));
      const cells = [...hosts];
      for (let i = 0; i < cells.length; i += cols) {
        const line = cells.slice(i, i + cols);
        const height = Math.max(...line.map(([, list]) => 20 + Math.ceil(list.length / PER_CELL) * (DOT + 3)));
        line.forEach(([h, list], j) => {
          const x = 24 + j * CELL;
          s.appendChild(svg('rect', { x, y, width: CELL - 4, height: height - 4, rx: 3, class: 'host-bg' }));
          s.appendChild(svg('text', { x: x + 4, y: y + 12, class: 'label host-label' }, h.length > 22 ? h.slice(0, 21) + '…' : h, svgTitle(h)));
          list.forEach((srv, k) => {
            const cx = x + 4 + DOT / 2 + (k % PER_CELL) * (DOT + 3);
            const cy = y + 18 + DOT / 2 + Math.floor(k / PER_CELL) * (DOT + 3);
            const dot = svg('circle', { cx, cy, r: DOT / 2, class: 'dot ' + (HEALTHS.includes(srv.health) ? srv.health : 'unknown'), 'data-id': srv.id });
            dot.appendChild(svgTitle((srv.server_name || '?') + ' ' + srv.url + ' — ' + (srv.health || 'unknown') + (srv.health_reason ? ': ' + srv.health_reason : '')));
            dot.addEventListener('click', (e) => { e.stopPropagation(); location.hash = '#/server/' + encodeURIComponent(srv.id); });
            s.appendChild(dot);
          });
        });
        y += height;
      }
      y += 4;
    }
    s.setAttribute('height', Math.max(40, y + 4));
    s.setAttribute('viewBox', '0 0 ' + W + ' ' + Math.max(40, y + 4));
    if (total > rows.length) box.appendChild(el('p', { class: 'muted' }, 'Showing the first ' + rows.length + ' of ' + total + ' servers.'));
    if (!rows.length) box.appendChild(el('p', { class: 'muted' }, 'No servers yet.'));
    box.appendChild(s);
  }

  // ------------------------------------------------------------------ jobs, sinks, config

  function opsView() {
    const root = main();
    const box = el('div', { id: 'ops', 'data-state': 'loading' });
    root.appendChild(box);
    async function load() {
      let jobs, runs, sinks, cfg;
      try {
        [jobs, runs, sinks, cfg] = await Promise.all([api('/api/v1/jobs'), api('/api/v1/runs?limit=200'),
          api('/api/v1/sinks'), api('/api/v1/config')]);
      } catch (e) {
        clear(box).append(el('p', { class: 'error' }, e.message));
        return;
      }
      clear(box);
      box.append(el('h2', null, 'Jobs'));
      const jt = el('table', { id: 'jobs' }, el('tr', null, ['Job', 'Scans', 'State', 'Last run', 'Result', 'Duration',
        'Next run', 'Probes', 'Open', 'MCP', 'Appeared', 'Updated', 'Gone'].map((t) => el('th', null, t))));
      for (const j of jobs.jobs || []) {
        const last = (runs.runs || []).find((r) => r.job === j.name && r.ended_at) || {};
        const started = Date.parse(last.started_at);
        const secs = last.ended_at ? (Date.parse(last.ended_at) - started) / 1000 : null;
        const next = j.next_run_at || null;
        jt.appendChild(el('tr', { 'data-job': j.name }, el('td', null, j.name), el('td', { class: 'wrap' }, text(j.description)),
          el('td', null, j.running ? 'running (run ' + j.running + ')' : 'idle'),
          el('td', { title: text(last.ended_at) }, ago(last.ended_at)), el('td', null, text(j.last_result || last.status)),
          el('td', { class: 'num' }, secs == null ? '—' : secs.toFixed(1) + ' s'),
          el('td', { title: text(next) }, next ? ago(next) : '—'),
          ['probes', 'open', 'mcp', 'appeared', 'updated', 'gone'].map((k) => el('td', { class: 'num' }, text(last[k])))));
      }
      box.appendChild(jt);
      box.append(el('h2', null, 'Sinks'));
      if (!(sinks.sinks || []).length) box.appendChild(el('p', { class: 'muted' }, 'No sinks configured.'));
      else {
        const st = el('table', { id: 'sinks' }, el('tr', null, ['Sink', 'Type', 'Target', 'State', 'Queue', 'Last success',
          'Last error', 'Listed', 'Dead letters'].map((t) => el('th', null, t))));
        for (const k of sinks.sinks) {
          st.appendChild(el('tr', { 'data-sink': k.name }, el('td', null, k.name), el('td', null, text(k.type)),
            el('td', { class: 'wrap' }, text(k.target)), el('td', null, text(k.state)), el('td', { class: 'num' }, text(k.queue_depth)),
            el('td', { title: text(k.last_success) }, ago(k.last_success)), el('td', { class: 'wrap' }, text(k.last_error)),
            el('td', { class: 'num' }, text(k.listed)), el('td', { class: 'num' }, text(k.dead_letter_count))));
          for (const d of k.dead_letters || []) {
            st.appendChild(el('tr', { class: 'muted' }, el('td', { colspan: 9, class: 'wrap' }, 'dead letter: ' + JSON.stringify(d))));
          }
        }
        box.appendChild(st);
      }
      box.append(el('h2', null, 'Configuration'), el('p', { class: 'muted' }, 'Resolved from ' + cfg.source + '; secrets redacted.'),
        el('pre', { id: 'config' }, cfg.yaml));
      box.setAttribute('data-state', 'ready');
    }
    load();
    return { view: 'ops', refresh: load };
  }

  // ------------------------------------------------------------------ live changes

  let refreshTimer = null;
  function scheduleRefresh(serverId) {
    if (!current || !current.refresh) return;
    if (current.view === 'server' && current.id !== serverId) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => current && current.refresh && current.refresh(), LIVE_REFRESH_MS);
  }

  function describe(c) {
    const d = c.detail || {};
    if (c.kind === 'health_changed') return (d.from || '?') + ' → ' + (d.to || '?') + (d.reason ? ' (' + d.reason + ')' : '');
    if (c.kind === 'updated' && d && typeof d === 'object') return Object.keys(d).join(', ');
    if (c.kind === 'gone' && d.reason) return d.reason;
    return '';
  }

  function feed(c) {
    const list = document.getElementById('feed-list');
    const li = el('li', { 'data-kind': c.kind },
      el('b', null, c.kind), ' ', el('a', { href: '#/server/' + encodeURIComponent(c.server_id) }, c.server_id.slice(0, 40)),
      el('span', { class: 'muted' }, ' ' + describe(c)), el('span', { class: 'when' }, c.at));
    list.insertBefore(li, list.firstChild);
    while (list.childNodes.length > FEED_MAX) list.removeChild(list.lastChild);
  }

  function live() {
    const dot = document.getElementById('live');
    const es = new EventSource('/api/v1/changes/stream');
    es.addEventListener('open', () => { dot.className = 'live on'; dot.textContent = 'live'; });
    es.addEventListener('error', () => { dot.className = 'live off'; dot.textContent = 'reconnecting'; });
    for (const kind of ['appeared', 'updated', 'gone', 'health_changed']) {
      es.addEventListener(kind, (ev) => {
        let c;
        try { c = JSON.parse(ev.data); } catch (e) { return; }
        feed(c);
        scheduleRefresh(c.server_id);
      });
    }
  }

  window.addEventListener('hashchange', render);
  document.addEventListener('DOMContentLoaded', () => { render(); live(); });
})();
