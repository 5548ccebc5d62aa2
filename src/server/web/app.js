/*
 * projstore dashboard: one page, no framework, no external resources.
 *
 * Views (by location hash): #/ projects (#/?search=&status=&host=), #/project/ID,
 * #/hosts, #/stores.  Data comes from the /v1 API with the bearer token the user
 * gives once; it is kept in sessionStorage (this tab, until it is closed).
 *
 * The project list's filter and its last results live in `list` (and in
 * sessionStorage, and in the hash): leaving the list for a project and coming
 * back shows the same search text and the same rows at once, then refreshes
 * them with the same filter.  Responses to an older filter are dropped (a
 * sequence number), so a slow answer can never replace a newer one.
 */
'use strict';
(function () {
  const TOKEN_KEY = 'projstore.token';
  const LIST_KEY = 'projstore.list';
  const PAGE = 100;
  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let role = null;
  let view = null;
  let timers = [];
  let hostsCache = [];

  /* ------------------------------------------------------------ helpers */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function bytes(n) {
    if (n === null || n === undefined) return '—';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + u[i];
  }

  function ratio(x) {
    return x === null || x === undefined ? '—' : Number(x).toFixed(2) + '×';
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (isNaN(t)) return '';
    const s = Math.floor((Date.now() - t) / 1000);
    if (s < -5) return 'in the future';
    if (s < 10) return 'just now';
    const steps = [[60, 'second', 1], [3600, 'minute', 60], [86400, 'hour', 3600],
      [86400 * 30, 'day', 86400], [86400 * 365, 'month', 86400 * 30], [Infinity, 'year', 86400 * 365]];
    for (const [lim, unit, div] of steps) {
      if (s < lim) {
        const v = Math.floor(s / div);
        return v + ' ' + unit + (v === 1 ? '' : 's') + ' ago';
      }
    }
    return '';
  }

  /* a <time> showing "5 minutes ago", the exact time on hover */
  function when(iso) {
    if (!iso) return el('span', { class: 'muted', text: 'never' });
    const d = new Date(iso);
    return el('time', { datetime: iso, title: d.toLocaleString() + ' (' + iso + ')', 'data-ago': '1' }, ago(iso));
  }

  function tickTimes() {
    for (const t of document.querySelectorAll('time[data-ago]')) t.textContent = ago(t.getAttribute('datetime'));
  }

  function badge(text) {
    return el('span', { class: 'badge ' + (text || ''), text: text || '—' });
  }

  function bar(frac, over, label) {
    const inner = el('div');
    inner.style.width = Math.max(0, Math.min(1, frac || 0)) * 100 + '%';
    return el('span', { class: 'bar' + (over ? ' over' : ''), title: label || '', role: 'img', 'aria-label': label || '' }, inner);
  }

  function showError(id, msg) {
    const e = $(id);
    if (e) e.textContent = msg || '';
  }

  function later(fn, ms) {
    const t = setTimeout(fn, ms);
    timers.push(t);
    return t;
  }

  function every(fn, ms) {
    const t = setInterval(fn, ms);
    timers.push(t);
    return t;
  }

  function stopTimers() {
    for (const t of timers) { clearTimeout(t); clearInterval(t); }
    timers = [];
  }

  /* ------------------------------------------------------------ API */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, method, body) {
    const headers = { Authorization: 'Bearer ' + token };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, {
        method: method || 'GET', headers, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'the server does not answer (' + e.message + ')');
    }
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (!r.ok) {
      const code = j && j.error ? j.error.code : 'http_' + r.status;
      const msg = j && j.error ? j.error.message : r.status + ' ' + r.statusText;
      if (r.status === 401 || (r.status === 403 && (!method || method === 'GET'))) {
        signOut('The token was refused: ' + msg);
      }
      throw new ApiError(r.status, code, msg);
    }
    return j;
  }

  /* ------------------------------------------------------------ sign in */

  function signOut(msg) {
    token = '';
    role = null;
    sessionStorage.removeItem(TOKEN_KEY);
    route();
    showError('login-error', msg || '');
  }

  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    token = t;
    try {
      const s = await api('/v1/summary');
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      showError('login-error', '');
      setSummary(s);
      route();
    } catch (e) {
      token = '';
      showError('login-error', e.message);
    }
  });

  $('logout').addEventListener('click', () => signOut(''));

  function setSummary(s) {
    role = s.role;
    $('summary').textContent = s.projects + ' projects · ' + s.deployed + ' deployed · ' +
      bytes(s.stored_bytes) + ' stored · hosts ' + s.hosts_up + ' up, ' + s.hosts_down + ' down' +
      (s.operations_pending + s.operations_running ? ' · ' + (s.operations_pending + s.operations_running) + ' operations' : '') +
      (role === 'read' ? ' · read-only' : '');
  }

  async function refreshSummary() {
    try { setSummary(await api('/v1/summary')); } catch (e) { /* shown elsewhere */ }
  }

  /* ------------------------------------------------------------ routing */

  function show(id) {
    for (const s of ['login', 'view-projects', 'view-project', 'view-hosts', 'view-stores']) $(s).hidden = s !== id;
    for (const [nav, v] of [['nav-projects', 'view-projects'], ['nav-hosts', 'view-hosts'], ['nav-stores', 'view-stores']]) {
      $(nav).classList.toggle('active', v === id || (nav === 'nav-projects' && id === 'view-project'));
    }
    $('logout').hidden = id === 'login';
  }

  function route() {
    stopTimers();
    showError('error', '');
    if (!token) {
      view = 'login';
      show('login');
      $('token').focus();
      return;
    }
    every(tickTimes, 15000);
    every(refreshSummary, 10000);
    if (role === null) refreshSummary();
    const h = location.hash || '#/';
    let m;
    if ((m = /^#\/project\/([a-z0-9][a-z0-9._-]{0,63})$/.exec(h))) {
      view = 'project';
      show('view-project');
      openProject(m[1]);
    } else if (h === '#/hosts') {
      view = 'hosts';
      show('view-hosts');
      loadHosts();
      every(loadHosts, 5000);
    } else if (h === '#/stores') {
      view = 'stores';
      show('view-stores');
      loadStores();
      every(loadStores, 15000);
    } else {
      view = 'projects';
      show('view-projects');
      enterList(h);
    }
  }

  window.addEventListener('hashchange', route);

  /* ------------------------------------------------------------ project list */

  const list = { search: '', status: '', host: '', items: [], next: null, total: 0, key: null, seq: 0 };
  try {
    Object.assign(list, JSON.parse(sessionStorage.getItem(LIST_KEY) || '{}'), { seq: 0 });
  } catch (e) { /* a damaged entry: start empty */ }

  function listKey() {
    return JSON.stringify([list.search, list.status, list.host]);
  }

  function listQuery() {
    const q = new URLSearchParams();
    if (list.search) q.set('search', list.search);
    if (list.status) q.set('status', list.status);
    if (list.host) q.set('host', list.host);
    return q.toString();
  }

  function saveList() {
    const { search, status, host, items, next, total, key } = list;
    try {
      sessionStorage.setItem(LIST_KEY, JSON.stringify({ search, status, host, items: items.slice(0, 500), next, total, key }));
    } catch (e) { /* storage full: the in-memory state still works */ }
    const q = listQuery();
    const want = '#/' + (q ? '?' + q : '');
    if (view === 'projects' && location.hash !== want) history.replaceState(null, '', want);
  }

  function enterList(hash) {
    const qi = hash.indexOf('?');
    if (qi >= 0) {
      /* a link with a filter wins over the remembered one */
      const q = new URLSearchParams(hash.slice(qi + 1));
      list.search = (q.get('search') || '').slice(0, 64);
      list.status = q.get('status') || '';
      list.host = q.get('host') || '';
    }
    $('search').value = list.search;
    $('filter-status').value = list.status;
    fillHostFilter();
    if (list.key === listKey()) renderList(); /* what was shown before, at once */
    saveList();
    loadList(false);
    loadHostsQuiet();
    every(() => loadList(false, true), 10000);
  }

  function fillHostFilter() {
    const sel = $('filter-host');
    const names = hostsCache.map((h) => h.name);
    if (list.host && !names.includes(list.host)) names.push(list.host);
    sel.replaceChildren(el('option', { value: '' }, 'any host'), ...names.map((n) => el('option', { value: n }, n)));
    sel.value = list.host;
  }

  async function loadHostsQuiet() {
    try {
      hostsCache = (await api('/v1/hosts')).hosts;
      if (view === 'projects') fillHostFilter();
    } catch (e) { /* the list shows errors */ }
  }

  /* more = append the next page; refresh = same rows, fresh values */
  async function loadList(more, refresh) {
    const seq = ++list.seq;
    const key = listKey();
    const q = new URLSearchParams(listQuery());
    q.set('limit', String(refresh ? Math.min(1000, Math.max(PAGE, list.items.length)) : PAGE));
    if (more && list.next) q.set('cursor', list.next);
    let r;
    try {
      r = await api('/v1/projects?' + q.toString());
    } catch (e) {
      if (seq === list.seq) showError('error', e.message);
      return;
    }
    if (seq !== list.seq || key !== listKey()) return; /* an older filter's answer */
    showError('error', '');
    list.items = more ? list.items.concat(r.projects) : r.projects;
    list.next = r.next_cursor;
    list.total = r.total;
    list.key = key;
    renderList();
    saveList();
  }

  function renderList() {
    const tb = $('projects').tBodies[0];
    tb.replaceChildren(...list.items.map((p) => {
      const q = p.quota_bytes;
      const quota = q ? el('span', {}, bar(p.logical_bytes / q, p.over_quota, bytes(p.logical_bytes) + ' of ' + bytes(q)), ' ',
        el('span', { class: 'muted' }, Math.round((p.logical_bytes / q) * 100) + '%')) : el('span', { class: 'muted' }, 'none');
      return el('tr', { 'data-project': p.id },
        el('td', {}, el('a', { href: '#/project/' + p.id }, p.id)),
        el('td', {}, p.host || el('span', { class: 'muted' }, '—')),
        el('td', {}, badge(p.status), p.maintenance ? ' maintenance' : ''),
        el('td', {}, p.last_snapshot ? when(p.last_snapshot.time) : el('span', { class: 'muted' }, 'none')),
        el('td', { class: 'num' }, bytes(p.logical_bytes)),
        el('td', {}, quota),
        el('td', { class: 'num' }, ratio(p.compressratio)),
        el('td', { class: 'num' }, ratio(p.dedupratio)));
    }));
    $('projects-empty').hidden = list.items.length > 0;
    $('more').hidden = !list.next;
    $('count').textContent = list.total === 1 ? '1 project' : list.total + ' projects';
  }

  let searchTimer = null;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      list.search = $('search').value.trim().slice(0, 64);
      list.next = null;
      saveList();
      loadList(false);
    }, 200);
  });
  $('filter-status').addEventListener('change', () => {
    list.status = $('filter-status').value;
    saveList();
    loadList(false);
  });
  $('filter-host').addEventListener('change', () => {
    list.host = $('filter-host').value;
    saveList();
    loadList(false);
  });
  $('more').addEventListener('click', () => loadList(true));

  /* ------------------------------------------------------------ one project */

  let current = null;     /* id shown */
  let tracking = null;    /* operation id being followed */

  function backHref() {
    const q = listQuery();
    return '#/' + (q ? '?' + q : '');
  }

  async function openProject(id) {
    current = id;
    tracking = null;
    $('back').setAttribute('href', backHref());
    $('p-id').textContent = id;
    $('op').hidden = true;
    showError('p-error', '');
    await loadProject(id);
    every(() => { if (current === id && !tracking) loadProject(id, true); }, 5000);
  }

  async function loadProject(id, quiet) {
    let p, snaps, evs, ops, hosts;
    try {
      [p, snaps, evs, ops, hosts] = await Promise.all([
        api('/v1/projects/' + id),
        api('/v1/projects/' + id + '/snapshots'),
        api('/v1/projects/' + id + '/events?limit=50'),
        api('/v1/projects/' + id + '/operations?limit=10'),
        api('/v1/hosts'),
      ]);
    } catch (e) {
      if (current === id) showError('p-error', e.message);
      return;
    }
    if (current !== id || view !== 'project') return;
    hostsCache = hosts.hosts;
    renderProject(p);
    renderSnapshots(snaps);
    renderOps(ops.operations);
    renderEvents(evs.events);
    const active = ops.operations.find((o) => o.active);
    if (active && !tracking) track(active.id);
    else if (!quiet && !active && !tracking) $('op').hidden = true;
  }

  function renderProject(p) {
    const f = $('p-facts');
    const rows = [
      ['Host', p.host || 'not deployed (open it to deploy)'],
      ['Status', badge(p.status)],
      ['Last snapshot', p.last_snapshot ? el('span', {}, when(p.last_snapshot.time), ' ', el('span', { class: 'muted' }, p.last_snapshot.name)) : 'none'],
      ['Last save', p.last_save ? el('span', {}, when(p.last_save.time), ' — ' + p.last_save.result) : 'never'],
      ['Size', bytes(p.logical_bytes) + ' (stored ' + bytes(p.stored_bytes) + ')'],
      ['Quota', p.quota_bytes ? el('span', {}, bar(p.logical_bytes / p.quota_bytes, p.over_quota), ' ' + bytes(p.logical_bytes) + ' of ' + bytes(p.quota_bytes) + (p.over_quota ? ' — over quota' : '')) : 'none'],
      ['Compression', ratio(p.compressratio)],
      ['Dedup', ratio(p.dedupratio)],
      ['Snapshots', String(p.snapshots)],
    ];
    if (p.maintenance) rows.push(['Maintenance', 'yes (being migrated)']);
    if (p.migrated) rows.push(['Migrated', 'yes']);
    if (p.lease) rows.push(['Lease', p.lease.owner + (p.lease.expired ? ' (expired)' : '')]);
    f.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    const admin = role === 'admin';
    const busy = !!tracking;
    for (const b of document.querySelectorAll('#p-actions button[data-op]')) {
      const op = b.getAttribute('data-op');
      b.disabled = !admin || busy || (op !== 'open' && !p.host) || (op === 'open' && !!p.host);
    }
    const sel = $('move-to');
    const keep = sel.value;
    const targets = hostsCache.filter((h) => h.name !== p.host && h.state !== 'disabled' && h.state !== 'draining');
    sel.replaceChildren(...targets.map((h) => el('option', { value: h.name }, h.name + (h.alive ? '' : ' (down)'))));
    if (targets.some((h) => h.name === keep)) sel.value = keep;
    $('move').disabled = !admin || busy || targets.length === 0;
    sel.disabled = !admin || busy || targets.length === 0;
  }

  function renderSnapshots(s) {
    const tb = $('snapshots').tBodies[0];
    const v = s.snapshots.slice().reverse(); /* newest first */
    tb.replaceChildren(...v.map((x) => el('tr', {},
      el('td', {}, x.name),
      el('td', {}, when(x.time)),
      el('td', { class: 'num' }, x.files === undefined ? '—' : String(x.files)),
      el('td', { class: 'num' }, bytes(x.logical_bytes)),
      el('td', { class: 'num' }, x.new_bytes === undefined ? '—' : bytes(x.new_bytes)))));
    if (!v.length) tb.append(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'no snapshots')));
  }

  function renderOps(ops) {
    const tb = $('operations').tBodies[0];
    tb.replaceChildren(...ops.map((o) => el('tr', {},
      el('td', { class: 'num' }, String(o.id)), el('td', {}, o.kind), el('td', {}, o.target_host || ''),
      el('td', {}, badge(o.state)), el('td', {}, o.phase), el('td', {}, when(o.created)),
      el('td', { class: 'wrap' }, o.result))));
    if (!ops.length) tb.append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'none')));
  }

  function renderEvents(evs) {
    const tb = $('events').tBodies[0];
    tb.replaceChildren(...evs.map((e) => el('tr', { class: e.error ? 'error' : '' },
      el('td', {}, when(e.time)), el('td', {}, e.kind), el('td', {}, e.actor || ''),
      el('td', { class: 'wrap' }, e.detail))));
    if (!evs.length) tb.append(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'none')));
  }

  async function request(kind, body) {
    showError('p-error', '');
    const id = current;
    try {
      const r = await api('/v1/projects/' + id + '/' + kind, 'POST', body || {});
      if (current !== id) return;
      showOp(r.operation);
      if (r.operation.active) track(r.operation.id);
      else loadProject(id);
    } catch (e) {
      showError('p-error', e.message);
    }
  }

  for (const b of document.querySelectorAll('#p-actions button[data-op]')) {
    b.addEventListener('click', () => request(b.getAttribute('data-op')));
  }
  $('move').addEventListener('click', () => {
    const to = $('move-to').value;
    if (to) request('move', { to });
  });

  function showOp(o) {
    $('op').hidden = false;
    $('op').setAttribute('data-state', o.state);
    $('op-title').textContent = o.kind + (o.target_host ? ' to ' + o.target_host : '') + ' (#' + o.id + ')';
    $('op-phase').replaceChildren(badge(o.state), ' ', o.phase);
    let frac = o.progress;
    if (frac === null || frac === undefined) frac = o.state === 'done' ? 1 : 0;
    $('op-bar').style.width = frac * 100 + '%';
    $('op-bar').parentElement.title = o.bytes_total ? bytes(o.bytes_done) + ' of ' + bytes(o.bytes_total) : o.phase;
    $('op-result').textContent = (o.bytes_total ? bytes(o.bytes_done) + ' of ' + bytes(o.bytes_total) + ' ' : '') + (o.result || '');
  }

  /* follows an operation until it ends, then reloads the project */
  function track(opId) {
    tracking = opId;
    const id = current;
    const poll = async () => {
      if (tracking !== opId || current !== id || view !== 'project') return;
      let o;
      try {
        o = await api('/v1/operations/' + opId);
      } catch (e) {
        showError('p-error', e.message);
        later(poll, 2000);
        return;
      }
      if (tracking !== opId || current !== id) return;
      showOp(o);
      if (o.active) {
        later(poll, 400);
      } else {
        tracking = null;
        loadProject(id, true);
      }
    };
    poll();
  }

  /* ------------------------------------------------------------ hosts, stores */

  async function loadHosts() {
    let r;
    try { r = await api('/v1/hosts'); } catch (e) { showError('error', e.message); return; }
    if (view !== 'hosts') return;
    hostsCache = r.hosts;
    $('hosts').tBodies[0].replaceChildren(...r.hosts.map((h) => el('tr', { 'data-host': h.name },
      el('td', {}, h.name),
      el('td', {}, h.datacenter || ''),
      el('td', {}, badge(h.state)),
      el('td', {}, h.capacity ? el('span', {}, bar(h.load, h.load > 0.9, h.deployed + ' of ' + h.capacity), ' ' + Math.round(h.load * 100) + '%') : el('span', { class: 'muted' }, 'no limit')),
      el('td', { class: 'num' }, String(h.deployed) + (h.capacity ? ' / ' + h.capacity : '')),
      el('td', {}, when(h.last_heartbeat)),
      el('td', { class: 'muted' }, h.root))));
    if (!r.hosts.length) $('hosts').tBodies[0].append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'no hosts (projstore host add)')));
  }

  async function loadStores() {
    let r;
    try { r = await api('/v1/stores'); } catch (e) { showError('error', e.message); return; }
    if (view !== 'stores') return;
    $('stores').tBodies[0].replaceChildren(...r.stores.map((s) => {
      const peers = Object.entries(s.last_sync || {});
      return el('tr', {},
        el('td', {}, s.name), el('td', { class: 'muted' }, s.url || ''),
        el('td', { class: 'num' }, String(s.projects)), el('td', { class: 'num' }, bytes(s.logical_bytes)),
        el('td', { class: 'num' }, bytes(s.stored_bytes)), el('td', { class: 'num' }, ratio(s.ratio)),
        el('td', {}, when(s.newest_snapshot)),
        el('td', { class: 'wrap' }, peers.length ? el('span', {}, ...peers.flatMap(([peer, y]) => [peer + ' (' + y.direction + ', ' + (y.result || 'running') + ') ', when(y.finished || y.started), ' '])) : el('span', { class: 'muted' }, 'none')));
    }));
  }

  route();
})();
