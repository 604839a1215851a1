// A device page: the registration, the object tree with the model's names,
// units and descriptions, the operations on every node (Read, Write,
// Execute, Observe, Delete), live values from notifications, the requests
// queued while the device sleeps, and the device's event log.

import * as api from './api.js';
import { EventStream } from './events.js';
import { h, replace, ago, stamp, clock, duration, parseTime } from './dom.js';
import { statusOf, lastSeenOf, badge, applyEvent } from './status.js';
import { resourcesOf, opsOf, opsText, typeOf } from './model.js';
import { depth, flatten, show, resourceJSON } from './values.js';

const LOG_MAX = 200;

// Security (0) and OSCORE (21) are not reachable by an LwM2M server
// (Core 1.1 Appendix E.1), so the tree leaves them out.
const hidden = new Set([0, 21]);

export function devicePage(root, ep, ctx) {
  const reg = { endpoint: ep };
  const values = new Map(); // path -> {type, value} for leaves
  const multis = new Map(); // resource path -> type, for multiple resources read
  const observed = new Set(); // paths with an observation
  const rows = new Map(); // resource path -> {tr, value, def, editRow}
  const instances = new Map(); // "/o" -> Map(instance path -> section element)
  const objSections = new Map(); // "/o" -> the object's section
  const defs = new Map(); // object ID -> definition
  const queue = new Map(); // request ID -> queued request
  const pollers = new Set();
  let destroyed = false;
  let builtFrom = ''; // the object list the tree was built from

  ctx.crumbs(h('a', { href: '#/' }, 'Devices'), h('span', { class: 'mono' }, ep));

  const title = h('h1', { class: 'mono', id: 'device-title' }, ep);
  const status = h('span', { id: 'device-status' });
  const details = h('dl', { class: 'details', id: 'registration' });
  const tree = h('div', { class: 'tree', id: 'tree' }, h('p', { class: 'muted' }, 'Loading objects…'));
  const queueList = h('ul', { class: 'queue', id: 'queue' });
  const queueCard = h('section', { class: 'card', id: 'queue-card', hidden: true }, h('h2', {}, 'Queued requests'), queueList);
  const logList = h('ol', { class: 'log', id: 'event-log' }, h('li', { class: 'muted waiting' }, 'Waiting for events…'));

  root.append(
    h('section', { class: 'page-head' }, title, status, h('span', { class: 'spacer' }), h('button', { type: 'button', class: 'btn ghost', onclick: () => loadRegistration(true) }, 'Refresh')),
    h(
      'div',
      { class: 'device-grid' },
      h('section', { class: 'card objects' }, h('h2', {}, 'Objects'), tree),
      h(
        'aside',
        { class: 'side' },
        h('section', { class: 'card' }, h('h2', {}, 'Registration'), details),
        queueCard,
        h('section', { class: 'card' }, h('h2', {}, 'Event log'), logList),
      ),
    ),
  );

  // --- registration --------------------------------------------------------

  async function loadRegistration(rebuild) {
    try {
      const r = await api.getClient(ep);
      if (destroyed) return;
      Object.assign(reg, r, { gone: false });
      renderRegistration();
      if (rebuild || !tree.dataset.built) await buildTree();
    } catch (e) {
      if (destroyed) return;
      if (e.status === 404) {
        reg.gone = true;
        renderRegistration();
        replace(tree, h('p', { class: 'empty' }, `${ep} is not registered.`));
      } else {
        replace(tree, h('p', { class: 'error-box' }, `The registration could not be loaded: ${e.message}`));
      }
      ctx.error(e, ep);
    }
  }

  function renderRegistration() {
    replace(status, badge(statusOf(reg)));
    const seen = lastSeenOf(reg);
    const items = [
      ['Status', badge(statusOf(reg))],
      ['Registration ID', reg.registrationId && h('span', { class: 'mono' }, reg.registrationId)],
      ['LwM2M version', reg.version],
      ['Binding', reg.binding],
      ['Queue mode', reg.queueMode === undefined ? null : reg.queueMode ? 'yes' : 'no'],
      ['Lifetime', duration(reg.lifetime)],
      ['Address', reg.address && h('span', { class: 'mono' }, reg.address)],
      ['SMS number', reg.smsNumber],
      ['Root path', reg.root && reg.root !== '/' ? reg.root : null],
      ['Content formats', Array.isArray(reg.formats) && reg.formats.length ? reg.formats.join(', ') : null],
      ['Registered', reg.registeredAt && stamp(parseTime(reg.registeredAt))],
      ['Last update', reg.updatedAt && stamp(parseTime(reg.updatedAt))],
      ['Expires', reg.expiresAt && stamp(parseTime(reg.expiresAt))],
      ['Tags', reg.tags && Object.keys(reg.tags).length ? Object.entries(reg.tags).map(([k, v]) => `${k}=${v}`).join(', ') : null],
      ['Last seen', seen && h('span', { title: stamp(seen), class: 'seen', dataset: { t: seen.getTime() } }, ago(seen))],
    ];
    replace(details, items.filter(([, v]) => v !== null && v !== undefined && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  // --- object tree ---------------------------------------------------------

  // objectsOf reads the announced objects: [{id, version, instances}].
  function objectsOf(r) {
    const list = (r.objects || []).map((o) => ({
      id: Number(o.id),
      version: o.version || '',
      name: o.name || '',
      instances: (o.instances || []).map((i) => (typeof i === 'object' ? Number(i.id) : Number(i))),
    }));
    return list.filter((o) => !hidden.has(o.id)).sort((a, b) => a.id - b.id);
  }

  function objectsKey(r) {
    return JSON.stringify(objectsOf(r));
  }

  async function buildTree() {
    builtFrom = objectsKey(reg);
    const objs = objectsOf(reg);
    const loaded = await Promise.all(
      objs.map((o) =>
        api.getObject(o.id, o.version).then(
          (def) => ({ o, def }),
          (e) => ({ o, def: null, err: e }),
        ),
      ),
    );
    if (destroyed) return;
    rows.clear();
    instances.clear();
    objSections.clear();
    replace(tree, loaded.map(({ o, def, err }) => objectSection(o, def, err)));
    if (!objs.length) replace(tree, h('p', { class: 'empty' }, 'The device announced no objects.'));
    tree.dataset.built = '1';
    // Instances known from earlier answers but not announced keep their
    // sections, and every known value its row.
    for (const p of [...values.keys(), ...multis.keys()]) {
      const [, o, i] = p.split('/');
      addInstance(Number(o), Number(i));
    }
    for (const p of [...values.keys(), ...multis.keys()]) refreshRow(resourcePathOf(p));
  }

  function objectSection(o, def, err) {
    if (def) defs.set(o.id, def);
    const op = `/${o.id}`;
    const name = def?.name || o.name || `Object ${o.id}`;
    const insts = h('div', { class: 'instances' });
    const editor = h('div', { class: 'editor-slot obj-editor' });
    instances.set(op, new Map());
    const sec = h(
      'details',
      { class: 'object', open: true, dataset: { path: op } },
      h(
        'summary',
        {},
        h('span', { class: 'path mono' }, op),
        h('span', { class: 'obj-name' }, name),
        h('span', { class: 'muted ver' }, `v${o.version || def?.version || '1.0'}`),
        h('span', { class: 'spacer' }),
        nodeActions(op, { read: true, observe: true, create: !!def?.multiple }),
      ),
      def?.description ? h('p', { class: 'desc' }, def.description) : null,
      err ? h('p', { class: 'error-box' }, `No model for object ${o.id}: ${err.message}`) : null,
      editor,
      insts,
    );
    sec.insts = insts;
    sec.editor = editor;
    objSections.set(op, sec);
    for (const i of o.instances) addInstance(o.id, i);
    if (!o.instances.length) insts.append(h('p', { class: 'muted none' }, 'No instances.'));
    return sec;
  }

  // addInstance adds the section of /o/i (announced, or found by a Read).
  function addInstance(oid, iid) {
    const op = `/${oid}`;
    const ip = `${op}/${iid}`;
    const known = instances.get(op);
    if (!known || known.has(ip)) return;
    const def = defs.get(oid);
    const body = h('tbody');
    const editor = h('div', { class: 'editor-slot' });
    const sec = h(
      'section',
      { class: 'instance', dataset: { path: ip } },
      h('div', { class: 'inst-head' }, h('span', { class: 'path mono' }, ip), h('span', { class: 'spacer' }), nodeActions(ip, { read: true, observe: true, write: !!def, remove: true })),
      editor,
      h(
        'table',
        { class: 'resources' },
        h('thead', {}, h('tr', {}, ['ID', 'Resource', 'Value', 'Ops', ''].map((t) => h('th', { scope: 'col' }, t)))),
        body,
      ),
    );
    sec.editor = editor;
    for (const r of resourcesOf(def)) body.append(...resourceRows(ip, r));
    known.set(ip, sec);
    const list = objSections.get(op)?.insts;
    if (list) {
      list.querySelector('.none')?.remove();
      // Keep instances in ID order.
      const after = [...known.keys()].filter((p) => Number(p.split('/')[2]) > iid).sort((a, b) => Number(a.split('/')[2]) - Number(b.split('/')[2])).map((p) => known.get(p))[0];
      list.insertBefore(sec, after || null);
    }
  }

  function resourceRows(ip, r) {
    const rp = `${ip}/${r.id}`;
    const ops = opsOf(r);
    const value = h('td', { class: 'value' });
    const editRow = h('tr', { class: 'editor-row', hidden: true }, h('td', { colspan: 5 }));
    const tr = h(
      'tr',
      { dataset: { path: rp }, class: 'res' },
      h('td', { class: 'rid mono' }, String(r.id)),
      h(
        'td',
        { class: 'rname' },
        h('div', { class: 'name', title: r.description || '' }, r.name || `Resource ${r.id}`),
        r.description ? h('div', { class: 'desc', title: r.description }, r.description) : null,
      ),
      value,
      h(
        'td',
        { class: 'ops mono', title: [typeOf(r), r.multiple ? 'multiple' : 'single', r.mandatory ? 'mandatory' : 'optional', r.range && `range ${r.range}`].filter(Boolean).join(', ') },
        opsText(ops),
        h('div', { class: 'type' }, `${typeOf(r)}${r.multiple ? '[]' : ''}`),
      ),
      h(
        'td',
        { class: 'acts' },
        nodeActions(rp, {
          read: ops.read,
          observe: ops.read,
          write: ops.write,
          execute: ops.execute,
          editRow,
          def: r,
        }),
      ),
    );
    rows.set(rp, { tr, value, def: r, editRow });
    refreshRow(rp);
    return [tr, editRow];
  }

  // lastKnownMark marks a value that comes from the server's last known
  // values rather than from this page's reads and notifications.
  function lastKnownMark(v) {
    if (!v.lastKnown) return null;
    return h('span', { class: 'muted last-known', title: `Last known value, received ${stamp(new Date(v.lastKnown * 1000))}` }, ' · last known');
  }

  // Last known values (kept by the server from notifications, Sends and
  // Reads) fill the rows this page has not read yet: for a sleeping
  // device they are all there is to show.
  async function loadLastKnown() {
    try {
      // Without the persistent registry the server keeps no values (501).
      const { data: st } = await api.call('GET', 'status');
      if (!st?.registry || destroyed) return;
      const { data } = await api.call('GET', `clients/${encodeURIComponent(ep)}/values`);
      for (const v of Array.isArray(data) ? data : []) {
        if (destroyed) return;
        if (!v.path || values.has(v.path)) continue;
        values.set(v.path, { type: v.type, value: v.value, lastKnown: v.serverTime });
        const [, o, i] = v.path.split('/');
        addInstance(Number(o), Number(i));
        refreshRow(resourcePathOf(v.path));
      }
    } catch (e) {
      if (e.status !== 404 && e.status !== 501) ctx.error(e, 'Last known values');
    }
  }

  function resourcePathOf(p) {
    return p.split('/').slice(0, 4).join('/');
  }

  // refreshRow shows the known value(s) of the resource at rp.
  function refreshRow(rp, flash) {
    const row = rows.get(rp);
    if (!row) return;
    const units = row.def.units ? h('span', { class: 'units' }, ` ${row.def.units}`) : null;
    if (row.def.multiple || multis.has(rp)) {
      const ris = [...values.keys()].filter((p) => p.startsWith(`${rp}/`)).sort((a, b) => Number(a.split('/')[4]) - Number(b.split('/')[4]));
      if (!ris.length) {
        replace(row.value, multis.has(rp) ? h('span', { class: 'muted' }, 'no instances') : h('span', { class: 'muted' }, '—'));
      } else {
        replace(
          row.value,
          h(
            'ul',
            { class: 'ri' },
            ris.map((p) => {
              const v = values.get(p);
              return h(
                'li',
                { dataset: { path: p } },
                h('span', { class: 'ri-id mono' }, `[${p.split('/')[4]}]`),
                ' ',
                h('span', { class: 'v', title: String(v.value) }, show(v.type, v.value)),
                units,
                lastKnownMark(v),
                row.def.operations && opsOf(row.def).write ? h('button', { type: 'button', class: 'link danger', title: `Delete ${p}`, onclick: () => run('delete', p) }, '✕') : null,
              );
            }),
          ),
        );
      }
    } else if (values.has(rp)) {
      const v = values.get(rp);
      replace(row.value, h('span', { class: 'v', title: String(v.value) }, show(v.type, v.value)), units, lastKnownMark(v));
    } else {
      replace(row.value, h('span', { class: 'muted' }, '—'));
    }
    row.tr.classList.toggle('observed', observed.has(rp));
    if (flash) {
      row.tr.classList.remove('flash');
      void row.tr.offsetWidth; // restart the animation
      row.tr.classList.add('flash');
    }
  }

  // absorb takes a node read or notified at path into the tree.
  function absorb(path, node, flash) {
    if (!node || typeof node !== 'object') return;
    // What a read of path returns replaces what was known under it.
    for (const p of [...values.keys()]) if (p === path || p.startsWith(`${path}/`)) values.delete(p);
    for (const p of [...multis.keys()]) if (p === path || p.startsWith(`${path}/`)) multis.delete(p);
    const touched = new Set();
    flatten(
      path,
      node,
      (p, type, value) => {
        values.set(p, { type, value });
        touched.add(resourcePathOf(p));
        const [, o, i] = p.split('/');
        addInstance(Number(o), Number(i));
      },
      (p, type) => {
        multis.set(p, type);
        touched.add(p);
      },
    );
    // Rows under path that the answer did not carry: the device does not
    // have them (an optional resource), shown dimmed.
    const carried = new Set(touched);
    for (const [rp, row] of rows) {
      if (rp !== path && !rp.startsWith(`${path}/`)) continue;
      touched.add(rp);
      row.tr.classList.toggle('absent', !carried.has(rp));
      row.tr.title = carried.has(rp) ? '' : `${rp} was not in the device's answer`;
    }
    for (const rp of touched) refreshRow(rp, flash);
  }

  // --- operations ----------------------------------------------------------

  function nodeActions(path, o) {
    const wrap = h('span', { class: 'actions', dataset: { path } });
    const d = depth(path);
    if (o.read) wrap.append(btn('Read', () => run('read', path), `Read ${path}`));
    if (o.write && d === 3 && !o.def?.multiple) wrap.append(btn('Write', () => editValue(path, o), `Write ${path}`));
    else if (o.write) wrap.append(btn('Write', () => editJSON(path, o), `Write ${path}`));
    if (o.execute) wrap.append(btn('Execute', () => editArgs(path, o), `Execute ${path}`));
    if (o.observe) {
      const b = btn(observed.has(path) ? 'Stop' : 'Observe', () => (observed.has(path) ? run('cancel', path) : run('observe', path)), `Observe ${path}`);
      b.classList.add('observe');
      b.classList.toggle('on', observed.has(path));
      b.dataset.observe = path;
      wrap.append(b);
    }
    if (o.create) wrap.append(btn('Create', () => editCreate(path), `Create an instance of ${path}`));
    if (o.remove) wrap.append(btn('Delete', () => confirmDelete(path), `Delete ${path}`, 'danger'));
    return wrap;
  }

  function btn(label, onclick, aria, extra) {
    return h('button', { type: 'button', class: `btn small${extra ? ' ' + extra : ''}`, 'aria-label': aria, onclick }, label);
  }

  function setObserved(path, on) {
    if (on) observed.add(path);
    else observed.delete(path);
    for (const b of root.querySelectorAll('button[data-observe]')) {
      if (b.dataset.observe === path) {
        b.textContent = on ? 'Stop' : 'Observe';
        b.classList.toggle('on', on);
      }
    }
    for (const el of root.querySelectorAll('[data-path]')) {
      if (el.dataset.path === path && (el.classList.contains('res') || el.classList.contains('instance') || el.classList.contains('object'))) el.classList.toggle('observed', on);
    }
  }

  // run performs one operation and shows its outcome. body: for write.
  async function run(op, path, body) {
    const busy = root.querySelectorAll(`.actions[data-path="${CSS.escape(path)}"] button`);
    busy.forEach((b) => (b.disabled = true));
    try {
      let res;
      switch (op) {
        case 'read':
          res = await api.read(ep, path);
          break;
        case 'write':
          res = await api.write(ep, path, body.json, body.replace);
          break;
        case 'execute':
          res = await api.execute(ep, path, body);
          break;
        case 'observe':
          res = await api.observe(ep, path);
          break;
        case 'cancel':
          res = await api.cancelObserve(ep, path);
          break;
        case 'delete':
          res = await api.remove(ep, path);
          break;
        case 'create':
          res = await api.create(ep, path, body);
          break;
      }
      if (res.status === 202) {
        queued(op, path, res);
        return true;
      }
      done(op, path, res.data);
      return true;
    } catch (e) {
      ctx.error(e, `${opName(op)} ${path}`);
      addLog({ kind: 'error', time: new Date().toISOString(), path, error: `${opName(op)}: ${e.message}` });
      return false;
    } finally {
      busy.forEach((b) => (b.disabled = false));
    }
  }

  // done applies a finished operation's result to the tree.
  function done(op, path, data) {
    const node = nodeOf(data);
    switch (op) {
      case 'read':
        if (node) absorb(path, node, false);
        break;
      case 'observe':
        setObserved(path, true);
        if (node) absorb(path, node, false);
        break;
      case 'cancel':
        setObserved(path, false);
        break;
      case 'write':
        ctx.info(`Wrote ${path}`);
        // Show what the device now holds, not what was sent.
        if (depth(path) >= 2 && readable(path)) run('read', path);
        break;
      case 'execute':
        ctx.info(`Executed ${path}`);
        break;
      case 'create': {
        const ip = data?.path || '';
        ctx.info(`Created ${ip || 'an instance of ' + path}`);
        const [, o, i] = ip.split('/');
        if (i !== undefined) {
          addInstance(Number(o), Number(i));
          run('read', ip);
        }
        break;
      }
      case 'delete':
        ctx.info(`Deleted ${path}`);
        if (depth(path) === 2) {
          const op = path.split('/').slice(0, 2).join('/');
          instances.get(op)?.get(path)?.remove();
          instances.get(op)?.delete(path);
        }
        absorb(path, {}, false);
        break;
    }
  }

  function readable(path) {
    const [, o, , r] = path.split('/');
    if (r === undefined) return true;
    const def = resourcesOf(defs.get(Number(o))).find((x) => String(x.id) === r);
    return !def || opsOf(def).read;
  }

  // nodeOf finds the JSON node in an answer: a Read's node itself, or the
  // node member of an Observe answer or a queued request's result.
  function nodeOf(data) {
    if (!data || typeof data !== 'object') return null;
    if (data.node && typeof data.node === 'object') return data.node;
    if ('status' in data || 'observation' in data) return null; // an envelope without a node
    return data.path || data.resources || data.instances || 'value' in data ? data : null;
  }

  function opName(op) {
    return { read: 'Read', write: 'Write', execute: 'Execute', observe: 'Observe', cancel: 'Cancel observation', delete: 'Delete', create: 'Create' }[op] || op;
  }

  // --- editors -------------------------------------------------------------

  function closeEditors() {
    for (const r of rows.values()) {
      r.editRow.hidden = true;
      r.editRow.firstChild.replaceChildren();
    }
    for (const m of instances.values()) for (const s of m.values()) s.editor.replaceChildren();
    for (const s of objSections.values()) s.editor.replaceChildren();
  }

  function editValue(path, o) {
    closeEditors();
    const row = rows.get(path);
    const type = typeOf(o.def);
    const cur = values.get(path);
    const input =
      type === 'boolean'
        ? h('select', { name: 'value' }, h('option', { value: 'true' }, 'true'), h('option', { value: 'false' }, 'false'))
        : h('input', {
            name: 'value',
            type: 'text',
            spellcheck: 'false',
            autocomplete: 'off',
            placeholder: placeholder(type),
            inputmode: ['integer', 'unsigned', 'float'].includes(type) ? 'decimal' : null,
          });
    if (cur) input.value = String(cur.value);
    const msg = h('span', { class: 'field-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'inline-editor', 'aria-label': `Write ${path}` },
      h('label', {}, h('span', {}, `New value (${type}${o.def.units ? ', ' + o.def.units : ''}${o.def.range ? ', ' + o.def.range : ''})`), input),
      h('button', { type: 'submit', class: 'btn small primary' }, 'Write'),
      h('button', { type: 'button', class: 'btn small ghost', onclick: closeEditors }, 'Cancel'),
      msg,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let json;
      try {
        json = resourceJSON(path, type, input.value);
      } catch (e) {
        msg.textContent = e.message;
        return;
      }
      msg.textContent = '';
      if (await run('write', path, { json, replace: true })) closeEditors();
    });
    replace(row.editRow.firstChild, form);
    row.editRow.hidden = false;
    input.focus();
  }

  // editJSON writes an instance or a multiple resource as a JSON node,
  // replacing it (PUT) or updating the resources given (PATCH).
  function editJSON(path, o) {
    closeEditors();
    const slot = depth(path) === 2 ? instances.get(path.split('/').slice(0, 2).join('/'))?.get(path)?.editor : rows.get(path)?.editRow.firstChild;
    if (!slot) return;
    if (depth(path) === 3) rows.get(path).editRow.hidden = false;
    const area = h('textarea', { name: 'node', rows: 8, spellcheck: 'false', class: 'mono' }, JSON.stringify(currentNode(path), null, 2));
    const mode = h('select', { name: 'mode', 'aria-label': 'Write mode' }, h('option', { value: 'patch' }, 'Partial update (PATCH)'), h('option', { value: 'put' }, 'Replace (PUT)'));
    if (depth(path) === 3) mode.value = 'put';
    const msg = h('span', { class: 'field-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'json-editor', 'aria-label': `Write ${path}` },
      h('label', {}, h('span', {}, `JSON node for ${path}`), area),
      h('div', { class: 'row' }, mode, h('button', { type: 'submit', class: 'btn small primary' }, 'Write'), h('button', { type: 'button', class: 'btn small ghost', onclick: closeEditors }, 'Cancel'), msg),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        JSON.parse(area.value);
      } catch (e) {
        msg.textContent = `Not JSON: ${e.message}`;
        return;
      }
      msg.textContent = '';
      if (await run('write', path, { json: area.value, replace: mode.value === 'put' })) closeEditors();
    });
    replace(slot, form);
    area.focus();
  }

  // currentNode is the JSON node of what is known under path, writable
  // resources only: the starting point of the JSON editor.
  function currentNode(path) {
    if (depth(path) === 3) {
      const t = multis.get(path) || typeOf(rows.get(path)?.def || {});
      const inst = [...values.entries()].filter(([p]) => p.startsWith(`${path}/`)).map(([p, v]) => ({ path: p, value: v.value }));
      return { path, type: t, instances: inst };
    }
    const resources = [];
    for (const [rp, row] of rows) {
      if (!rp.startsWith(`${path}/`) || !opsOf(row.def).write) continue;
      if (row.def.multiple || multis.has(rp)) resources.push(currentNode(rp));
      else if (values.has(rp)) resources.push({ path: rp, type: values.get(rp).type || typeOf(row.def), value: values.get(rp).value });
    }
    return { path, resources };
  }

  // editCreate posts a new instance of the object at path, written as a
  // JSON node with its ID (lwm2md names the instance, LwM2M Core 1.1
  // §6.3.6), starting from the model's writable mandatory resources.
  function editCreate(path) {
    closeEditors();
    const slot = objSections.get(path)?.editor;
    if (!slot) return;
    const oid = Number(path.slice(1));
    const used = new Set([...(instances.get(path)?.keys() || [])].map((p) => Number(p.split('/')[2])));
    let id = 0;
    while (used.has(id)) id++;
    const resources = resourcesOf(defs.get(oid))
      .filter((r) => r.mandatory && opsOf(r).write && !r.multiple)
      .map((r) => ({ path: `${path}/${id}/${r.id}`, type: typeOf(r), value: typeOf(r) === 'boolean' ? false : ['string', 'corelnk', 'opaque', 'objlnk'].includes(typeOf(r)) ? '' : 0 }));
    const area = h('textarea', { name: 'node', rows: 8, spellcheck: 'false', class: 'mono' }, JSON.stringify({ path: `${path}/${id}`, resources }, null, 2));
    const msg = h('span', { class: 'field-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'json-editor', 'aria-label': `Create an instance of ${path}` },
      h('label', {}, h('span', {}, `New instance of ${path} (JSON node with its path or id)`), area),
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'btn small primary' }, 'Create'), h('button', { type: 'button', class: 'btn small ghost', onclick: closeEditors }, 'Cancel'), msg),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        JSON.parse(area.value);
      } catch (e) {
        msg.textContent = `Not JSON: ${e.message}`;
        return;
      }
      msg.textContent = '';
      if (await run('create', path, area.value)) closeEditors();
    });
    replace(slot, form);
    area.focus();
  }

  function editArgs(path) {
    closeEditors();
    const row = rows.get(path);
    const input = h('input', { name: 'args', type: 'text', spellcheck: 'false', autocomplete: 'off', placeholder: "optional, e.g. 0='v',1" });
    const form = h(
      'form',
      { class: 'inline-editor', 'aria-label': `Execute ${path}` },
      h('label', {}, h('span', {}, 'Arguments'), input),
      h('button', { type: 'submit', class: 'btn small primary' }, 'Execute'),
      h('button', { type: 'button', class: 'btn small ghost', onclick: closeEditors }, 'Cancel'),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (await run('execute', path, input.value.trim())) closeEditors();
    });
    replace(row.editRow.firstChild, form);
    row.editRow.hidden = false;
    input.focus();
  }

  function confirmDelete(path) {
    if (window.confirm(`Delete ${path} on ${ep}?`)) run('delete', path);
  }

  function placeholder(type) {
    return (
      {
        integer: '-12',
        unsigned: '42',
        float: '21.5',
        time: 'Unix seconds or 2026-01-02T03:04:05Z',
        opaque: 'base64',
        objlnk: '3:0',
      }[type] || ''
    );
  }

  // --- queued requests (sleeping devices) ----------------------------------

  function queued(op, path, res) {
    const d = res.data && typeof res.data === 'object' ? res.data : {};
    const q = track({ ...d, op, path });
    if (!q) return;
    // The stream's "queued" event may have come first, without these.
    q.op = op;
    q.location = res.location || d.location || q.location;
    ctx.info(`${opName(op)} ${path} queued`, `${ep} is sleeping; the request goes when it wakes up.`);
    renderQueue();
    if (q.location) pollQueued(q);
  }

  async function pollQueued(q) {
    const ac = new AbortController();
    pollers.add(ac);
    try {
      for (let wait = 1000; !destroyed && q.state === 'queued'; wait = Math.min(wait * 2, 15000)) {
        await new Promise((r) => setTimeout(r, wait));
        if (destroyed || q.state !== 'queued') break;
        const { status, data } = await api.poll(q.location, ac.signal);
        if (status === 202) continue;
        settle(q, data);
      }
    } catch (e) {
      if (e.name !== 'AbortError') {
        q.state = 'failed';
        q.error = e.message;
        renderQueue();
      }
    } finally {
      pollers.delete(ac);
    }
  }

  // settle records a queued request's outcome (from polling or the
  // stream): {status, node, error, problem}.
  function settle(q, d) {
    if (!q || q.state !== 'queued') return;
    d = d && typeof d === 'object' ? d : {};
    if (d.error || d.problem) {
      q.state = 'failed';
      q.error = d.problem?.detail || d.error;
      ctx.error(new api.APIError(d.problem?.status || 0, d.problem || { title: 'Failed', detail: d.error }), `Queued ${opName(q.op)} ${q.path}`);
    } else {
      q.state = 'done';
      done(q.op, q.path, d);
    }
    renderQueue();
  }

  function renderQueue() {
    const list = [...queue.values()].sort((a, b) => b.since - a.since);
    queueCard.hidden = !list.length && statusOf(reg) !== 'sleeping' && !reg.queueMode;
    replace(
      queueList,
      list.length
        ? list.map((q) =>
            h(
              'li',
              { class: q.state, dataset: { id: q.id } },
              h('span', { class: `badge ${q.state}` }, q.state),
              ' ',
              h('strong', {}, opName(q.op)),
              ' ',
              h('span', { class: 'mono' }, q.path),
              q.state === 'queued' ? h('button', { type: 'button', class: 'btn small ghost withdraw', 'aria-label': `Withdraw ${opName(q.op)} ${q.path}`, onclick: () => withdraw(q) }, 'Withdraw') : null,
              h('div', { class: 'muted small' }, `since ${clock(q.since)}${q.error ? ' — ' + q.error : ''}`),
            ),
          )
        : h('li', { class: 'muted' }, 'Nothing queued.'),
    );
  }

  // withdraw takes a request out of the device's queue before it is sent.
  async function withdraw(q) {
    try {
      await api.call('DELETE', `clients/${encodeURIComponent(ep)}/requests/${encodeURIComponent(q.id)}`);
      q.state = 'withdrawn';
      renderQueue();
    } catch (e) {
      ctx.error(e, `Withdraw ${opName(q.op)} ${q.path}`);
    }
  }

  // track adds a request the server queued (by this page or another
  // client) to the list.
  function track(d) {
    const id = String(d.id ?? d.requestId ?? '');
    if (!id || queue.has(id)) return queue.get(id);
    const q = { id, op: opOf(d.op), path: d.path || '', state: 'queued', since: parseTime(d.createdAt || d.time) || new Date(), location: d.location || '' };
    queue.set(id, q);
    renderQueue();
    return q;
  }

  // opOf maps the server's operation names to the page's.
  function opOf(op) {
    return { 'cancel-observe': 'cancel', 'cancel-observation': 'cancel' }[op] || op || '';
  }

  async function loadQueue() {
    try {
      const { data } = await api.call('GET', `clients/${encodeURIComponent(ep)}/requests`);
      for (const d of Array.isArray(data) ? data : []) track(d);
    } catch (e) {
      if (e.status !== 404) ctx.error(e, 'Queued requests');
    }
    renderQueue();
  }

  // --- event log and stream ------------------------------------------------

  function addLog(e) {
    logList.querySelector('.waiting')?.remove();
    const t = parseTime(e.time) || new Date();
    const summary = [e.path, e.op, e.error || e.err || '', e.node && 'value' in e.node ? show(e.node.type, e.node.value) : ''].filter(Boolean).join(' · ');
    logList.prepend(h('li', { class: `ev ${e.kind}`, dataset: { kind: e.kind } }, h('time', { datetime: t.toISOString(), title: stamp(t) }, clock(t)), h('span', { class: 'kind' }, e.kind), h('span', { class: 'sum mono' }, summary)));
    while (logList.children.length > LOG_MAX) logList.lastChild.remove();
  }

  function onEvent(kind, e) {
    if (e.endpoint && e.endpoint !== ep) return;
    addLog({ ...e, kind });
    if (applyEvent(reg, kind, e)) renderRegistration();
    switch (kind) {
      case 'registered':
        // A new registration drops every observation (Core 1.1 §6.2.1).
        for (const p of [...observed]) setObserved(p, false);
        loadRegistration(true);
        break;
      case 'updated':
        // An Update with a new object list (an instance created or
        // deleted on the device) changes the tree.
        if (e.registration?.objects && objectsKey(reg) !== builtFrom) buildTree();
        break;
      case 'deregistered':
      case 'expired':
        for (const p of [...observed]) setObserved(p, false);
        break;
      case 'notification':
        if (e.path && (e.node || e.value !== undefined)) absorb(e.path, e.node || { path: e.path, type: e.type, value: e.value }, true);
        if (e.error || e.err) setObserved(e.path, false);
        break;
      case 'queued':
        track(e);
        break;
      case 'request-result':
        settle(queue.get(String(e.requestId || '')), e.result || e);
        break;
      case 'sleeping':
      case 'awake':
        renderQueue();
        break;
    }
  }

  const stream = new EventStream({ endpoint: ep }, onEvent, ctx.streamState).start();
  const tick = setInterval(() => {
    for (const el of details.querySelectorAll('.seen')) el.textContent = ago(new Date(Number(el.dataset.t)));
  }, 5000);

  // Observations made earlier (by this page before a reload, or by
  // another client) are shown as such.
  async function loadObservations() {
    try {
      const { data } = await api.call('GET', `clients/${encodeURIComponent(ep)}/observations`);
      for (const o of Array.isArray(data) ? data : []) if (o.path) setObserved(o.path, true);
    } catch (e) {
      if (e.status !== 404) ctx.error(e, 'Observations');
    }
  }

  // The stream first, then the snapshots, so that no change between the
  // two is lost (values notified before the tree exists are kept and
  // shown when it is built).
  stream.ready.then(() => {
    if (destroyed) return;
    loadRegistration(true).then(loadObservations).then(loadLastKnown);
    loadQueue();
  });

  return {
    destroy() {
      destroyed = true;
      stream.stop();
      clearInterval(tick);
      for (const ac of pollers) ac.abort();
    },
  };
}
