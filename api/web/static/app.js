// The object browser's entry point: the hash router (#/ is the device
// list, #/clients/{endpoint} a device page), the API token dialog, the
// event stream indicator and the error toasts every page uses.

import { getToken, setToken, APIError } from './api.js';
import { h, replace } from './dom.js';
import { listPage } from './list.js';
import { devicePage } from './device.js';

const view = document.getElementById('view');
const crumbs = document.getElementById('crumbs');
const live = document.getElementById('live');
const toasts = document.getElementById('toasts');

// The context pages get: how to report errors and stream state, and how
// to set the breadcrumb.
const ctx = {
  error: showError,
  info: showInfo,
  streamState(state, detail) {
    live.dataset.state = state;
    live.textContent = { live: 'live', connecting: 'connecting', error: 'reconnecting', unauthorized: 'no access' }[state] || state;
    live.title = detail ? `Event stream: ${detail}` : 'Event stream';
  },
  crumbs(...items) {
    replace(crumbs, items.flatMap((c, i) => [i ? h('span', { class: 'sep' }, '/') : null, c]));
  },
};

let page = null;

function route() {
  page?.destroy();
  page = null;
  view.replaceChildren();
  toasts.replaceChildren(); // they were about the page being left
  const m = /^#\/clients\/(.+)$/.exec(location.hash);
  if (m) {
    let ep;
    try {
      ep = decodeURIComponent(m[1]);
    } catch {
      ep = m[1];
    }
    page = devicePage(view, ep, ctx);
  } else {
    page = listPage(view, ctx);
  }
}

function toast(kind, title, detail, hint) {
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const el = h(
    'div',
    { class: `toast ${kind}` },
    h('div', { class: 'toast-body' }, h('strong', {}, title), detail ? h('div', {}, detail) : null, hint ? h('div', { class: 'hint' }, hint) : null),
    close,
  );
  const remove = () => el.remove();
  close.addEventListener('click', remove);
  toasts.append(el);
  setTimeout(remove, kind === 'error' ? 12000 : 4000);
  while (toasts.children.length > 5) toasts.firstChild.remove();
}

// showError shows an API problem (title, detail, status) or any error.
function showError(err, what) {
  if (err?.name === 'AbortError') return;
  if (err instanceof APIError) {
    const p = err.problem;
    const title = `${what ? what + ': ' : ''}${p.title || 'Request failed'}${err.status ? ` (${err.status})` : ''}`;
    // The device's own answer and the field at fault, when the problem
    // names them (the API's extension members).
    const extra = [p.coapCode && `device answered ${p.coapCode}`, p.state && `device ${p.state}`].filter(Boolean).join(', ');
    toast('error', title, `${p.detail || ''}${extra ? ` (${extra})` : ''}`, err.hint);
  } else {
    toast('error', what || 'Error', err?.message || String(err));
  }
  // Shown to the operator above; the console gets it as a warning.
  console.warn(what, err);
}

function showInfo(title, detail) {
  toast('info', title, detail);
}

function tokenDialog() {
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const button = document.getElementById('token-button');
  const mark = () => button.classList.toggle('set', !!getToken());
  mark();
  button.addEventListener('click', () => {
    input.value = getToken();
    dialog.showModal();
    input.focus();
  });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'save') setToken(input.value.trim());
    else if (dialog.returnValue === 'clear') setToken('');
    else return;
    input.value = '';
    mark();
    route(); // reload the page's data and stream with the new token
  });
}

tokenDialog();
window.addEventListener('hashchange', route);
route();
