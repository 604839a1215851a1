// The live event stream: GET api/v1/events read as Server-Sent Events.
// EventSource cannot send an Authorization header, so the stream is read
// with fetch and parsed here following the HTML Living Standard's
// "Server-sent events" interpretation rules (fields event, data, id,
// retry; comments; CR, LF and CRLF line ends). After a drop it reconnects
// with Last-Event-ID so nothing is missed while the server still has it.

import { apiURL, authHeaders } from './api.js';

export class EventStream {
  // query: the stream's filters (endpoint, kinds); onEvent(kind, data, id);
  // onState('live' | 'connecting' | 'error' | 'unauthorized', detail).
  constructor(query, onEvent, onState) {
    this.query = query;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.lastId = '';
    this.retry = 2000;
    this.failures = 0;
    this.abort = null;
    this.stopped = false;
    this.timer = 0;
    // ready settles once the first connection is open or has failed:
    // from then on, an event the server emits reaches onEvent, so a page
    // that loads its snapshot after ready misses nothing.
    this.ready = new Promise((resolve) => (this.settle = resolve));
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort?.abort();
  }

  async connect() {
    this.abort = new AbortController();
    this.onState('connecting');
    const headers = { Accept: 'text/event-stream', ...authHeaders() };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    try {
      const res = await fetch(apiURL('events', this.query), {
        headers,
        signal: this.abort.signal,
        cache: 'no-store',
      });
      if (res.status === 401 || res.status === 403) {
        this.onState('unauthorized', `HTTP ${res.status}`);
        this.settle();
        this.later(30000);
        return;
      }
      if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
        throw new Error(`HTTP ${res.status}`);
      }
      this.failures = 0;
      this.onState('live');
      this.settle();
      await this.read(res.body);
      this.later(this.retry); // the server ended the stream
    } catch (e) {
      if (this.stopped) return;
      this.failures++;
      this.onState('error', e.message);
      this.settle();
      // Back off to at most 30 s while the server is away.
      this.later(Math.min(30000, this.retry * 2 ** Math.min(this.failures - 1, 4)));
    }
  }

  later(ms) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), ms);
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ev = { type: '', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        // A CR that ends the stream ends its line; anything after the last
        // line end is an incomplete line, discarded with its event.
        if (buf.endsWith('\r')) this.line(buf.slice(0, -1), ev);
        return;
      }
      buf += value;
      // A line ends at CRLF, LF or CR; a trailing CR may be the first half
      // of a CRLF split across chunks, so it waits for the next chunk.
      let m;
      while ((m = /\r\n|\n|\r(?=[^\n])/.exec(buf))) {
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        ev = this.line(line, ev);
      }
    }
  }

  line(line, ev) {
    if (line === '') {
      if (ev.data.length) this.dispatch(ev.type || 'message', ev.data.join('\n'));
      return { type: '', data: [] };
    }
    if (line.startsWith(':')) return ev; // comment (keep-alive)
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        ev.type = value;
        break;
      case 'data':
        ev.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return ev;
  }

  dispatch(type, text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      data = { text };
    }
    const kind = (data && data.kind) || type;
    try {
      this.onEvent(kind, data, this.lastId);
    } catch (e) {
      console.error('event handler', kind, e);
    }
  }
}
