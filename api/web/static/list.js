// The device list: every registration the server holds, filtered by a
// search (endpoint prefix), status and LwM2M version, kept live from the
// event stream (registrations, updates, sleeping and awake, last seen).

import { listClients } from './api.js';
import { EventStream } from './events.js';
import { h, replace, ago, stamp, duration, debounce } from './dom.js';
import { endpointOf, statusOf, lastSeenOf, badge, applyEvent } from './status.js';

const PAGE = 100;

export function listPage(root, ctx) {
  ctx.crumbs(h('span', {}, 'Devices'));
  const rows = new Map(); // endpoint -> registration
  let next = '';
  let loading = null;
  // Events that arrive while a snapshot loads wait for it, then apply on
  // top (applying one the snapshot already reflects changes nothing).
  let pending = null;

  const search = h('input', { type: 'search', id: 'search', placeholder: 'Endpoint starts with…', 'aria-label': 'Search endpoints', autocomplete: 'off', spellcheck: 'false' });
  const status = select('status', 'Status', [['', 'Any status'], ['online', 'Online'], ['sleeping', 'Sleeping'], ['offline', 'Offline']]);
  const version = select('version', 'LwM2M version', [['', 'Any version'], ['1.0', 'LwM2M 1.0'], ['1.1', 'LwM2M 1.1'], ['1.2', 'LwM2M 1.2']]);
  const count = h('span', { class: 'muted count' });
  const more = h('button', { type: 'button', class: 'btn ghost', hidden: true, onclick: () => load(false) }, 'Load more');
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'devices', id: 'devices' },
    h('thead', {}, h('tr', {}, ['Endpoint', 'Status', 'LwM2M', 'Binding', 'Address', 'Lifetime', 'Last seen', 'Registered'].map((t) => h('th', { scope: 'col' }, t)))),
    body,
  );
  const empty = h('p', { class: 'empty', hidden: true });

  root.append(
    h('section', { class: 'page-head' }, h('h1', {}, 'Devices'), count),
    h('section', { class: 'toolbar' }, search, status, version),
    h('div', { class: 'card table-wrap' }, table, empty),
    h('div', { class: 'more' }, more),
  );

  function filters() {
    return { prefix: search.value.trim(), status: status.value, version: version.value };
  }

  // matches applies the filters to rows that arrive on the stream.
  function matches(c) {
    const f = filters();
    return endpointOf(c).startsWith(f.prefix) && (!f.status || statusOf(c) === f.status) && (!f.version || c.version === f.version);
  }

  async function load(reset) {
    loading?.abort();
    const ac = (loading = new AbortController());
    const f = filters();
    // The API lists registrations in force (online, sleeping); offline rows
    // are the ones this page saw end, filtered here only.
    const query = { prefix: f.prefix, status: f.status === 'offline' ? '' : f.status, version: f.version, limit: PAGE, sort: 'endpoint' };
    if (!reset && next) query.cursor = next;
    pending = pending || [];
    try {
      const res = await listClients(query, ac.signal);
      if (reset) rows.clear();
      for (const c of res.clients) rows.set(endpointOf(c), c);
      next = res.next;
      if (loading === ac) {
        for (const [kind, e] of pending) apply(kind, e);
        pending = null;
      }
      render();
    } catch (e) {
      if (loading === ac) pending = null;
      if (e.name === 'AbortError') return;
      ctx.error(e, 'Device list');
      if (reset) {
        empty.hidden = false;
        empty.textContent = 'The device list could not be loaded.';
      }
    }
  }

  function render() {
    const list = [...rows.values()].filter(matches).sort((a, b) => endpointOf(a).localeCompare(endpointOf(b)));
    replace(body, list.map(row));
    const n = list.length;
    count.textContent = `${n} device${n === 1 ? '' : 's'}${next ? ' (more to load)' : ''}`;
    empty.hidden = n > 0;
    empty.textContent = rows.size ? 'No device matches the filters.' : 'No device is registered.';
    more.hidden = !next;
  }
  const renderSoon = debounce(render, 100);

  function row(c) {
    const ep = endpointOf(c);
    const seen = lastSeenOf(c);
    return h(
      'tr',
      { dataset: { endpoint: ep }, class: statusOf(c) },
      h('td', {}, h('a', { class: 'ep', href: `#/clients/${encodeURIComponent(ep)}` }, ep)),
      h('td', {}, badge(statusOf(c))),
      h('td', {}, c.version || '—'),
      h('td', {}, c.binding || '—'),
      h('td', { class: 'mono' }, c.address || '—'),
      h('td', {}, duration(c.lifetime)),
      h('td', { class: 'seen', title: stamp(seen), dataset: { t: seen ? seen.getTime() : '' } }, ago(seen)),
      h('td', { title: stamp(new Date(c.registeredAt)) }, c.registeredAt ? new Date(c.registeredAt).toLocaleString() : '—'),
    );
  }

  // Last-seen cells count up without re-rendering the rows.
  const tick = setInterval(() => {
    for (const td of body.querySelectorAll('td.seen')) {
      if (td.dataset.t) td.textContent = ago(new Date(Number(td.dataset.t)));
    }
  }, 5000);

  function apply(kind, e) {
    const ep = e.endpoint;
    if (!ep) return;
    let c = rows.get(ep);
    if (!c) {
      if (kind !== 'registered' && kind !== 'updated') return;
      c = { endpoint: ep };
      rows.set(ep, c);
    }
    if (applyEvent(c, kind, e)) renderSoon();
  }

  const stream = new EventStream(
    { kind: 'registered,updated,deregistered,expired,sleeping,awake,notification,send' },
    (kind, e) => (pending ? pending.push([kind, e]) : apply(kind, e)),
    ctx.streamState,
  ).start();

  const reload = debounce(() => load(true), 250);
  search.addEventListener('input', reload);
  status.addEventListener('change', () => load(true));
  version.addEventListener('change', () => load(true));
  // The stream first, then the snapshot: nothing falls between the two.
  stream.ready.then(() => load(true));

  return {
    destroy() {
      stream.stop();
      loading?.abort();
      clearInterval(tick);
    },
  };
}

function select(id, label, options) {
  return h('select', { id, 'aria-label': label }, options.map(([v, t]) => h('option', { value: v }, t)));
}
