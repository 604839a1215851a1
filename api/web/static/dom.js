// DOM and formatting helpers. Every text from the server goes into the page
// through textContent (never innerHTML), so a device's strings cannot
// inject markup.

// h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child).
// Attributes whose value is null, undefined or false are left out; true
// sets an empty attribute. Children may be strings, nodes, arrays or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// parseTime reads an RFC 3339 string or Unix seconds; null when absent.
export function parseTime(v) {
  if (v === null || v === undefined || v === '') return null;
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return isNaN(d) || d.getTime() <= 0 ? null : d;
}

// ago is "12 s ago", "3 min ago", ... for a Date.
export function ago(d, now = Date.now()) {
  if (!d) return '—';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// stamp is a local date and time for a Date, for titles and logs.
export function stamp(d) {
  return d ? d.toLocaleString() : '—';
}

// clock is the local time of day, for the event log.
export function clock(d) {
  return d ? d.toLocaleTimeString() : '';
}

// duration formats seconds as "1 d 2 h", "5 min", "30 s"; 0 is "no expiry".
export function duration(sec) {
  if (sec === null || sec === undefined || sec === '') return '—';
  if (typeof sec === 'string') return sec;
  if (sec === 0) return 'no expiry';
  const parts = [];
  for (const [n, u] of [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']]) {
    if (sec >= n) {
      parts.push(`${Math.floor(sec / n)} ${u}`);
      sec %= n;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

// debounce delays fn until calls stop for ms.
export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
