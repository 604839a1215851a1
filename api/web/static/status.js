// What the pages show about a registration, whatever the API spells: its
// status (online, sleeping, offline) and when the device was last heard.

import { h, parseTime } from './dom.js';

export function endpointOf(c) {
  return c.endpoint ?? c.ep ?? c.Endpoint ?? '';
}

export function statusOf(c) {
  if (c.gone) return 'offline';
  if (typeof c.status === 'string' && c.status) return c.status;
  if (c.sleeping === true || c.awake === false) return 'sleeping';
  if (c.online === false) return 'offline';
  return 'online';
}

export function lastSeenOf(c) {
  return parseTime(c.lastSeen ?? c.last_seen ?? c.updatedAt ?? c.updated_at ?? c.registeredAt);
}

export function badge(status) {
  return h('span', { class: `badge ${status}`, 'data-status': status }, status);
}

// Event kinds that change a registration, as the API names them.
export const regKinds = new Set(['registered', 'updated', 'deregistered', 'expired', 'sleeping', 'awake']);

// applyEvent updates a registration-like record c from an event; returns
// true when it changed what the list shows.
export function applyEvent(c, kind, e) {
  const t = parseTime(e.time) || new Date();
  switch (kind) {
    case 'registered':
    case 'updated':
      if (e.registration) Object.assign(c, e.registration);
      c.gone = false;
      if (c.status === 'offline') c.status = 'online';
      c.lastSeen = t.toISOString();
      return true;
    case 'deregistered':
    case 'expired':
      c.gone = true;
      c.status = 'offline';
      return true;
    case 'sleeping':
      c.status = 'sleeping';
      return true;
    case 'awake':
      c.status = 'online';
      c.lastSeen = t.toISOString();
      return true;
    case 'notification':
    case 'send':
      c.lastSeen = t.toISOString();
      return true;
  }
  return false;
}
