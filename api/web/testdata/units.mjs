// Unit tests of the browser's modules that need no page: the event-stream
// parser, the value checks of the Write editor and the flattening of JSON
// nodes. TestModules (modules_test.go) copies static/*.js beside this file
// and runs it with node; it prints one line per failed case and exits 1.

import { EventStream } from './events.js';
import { literal, resourceJSON, flatten, show, depth } from './values.js';
import { opsOf, typeOf } from './model.js';

let failed = 0;
function check(name, got, want) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) {
    failed++;
    console.log(`FAIL ${name}: got ${g}, want ${w}`);
  }
}

// parse feeds chunks to the parser and returns the events and last ID.
async function parse(chunks) {
  const events = [];
  const s = new EventStream({}, (kind, data, id) => events.push({ kind, data, id }));
  const enc = new TextEncoder();
  const body = new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
  await s.read(body);
  return { events, lastId: s.lastId, retry: s.retry };
}

const sse = [
  ['one event', ['id: 1\nevent: registered\ndata: {"kind":"registered","endpoint":"a"}\n\n'], [{ kind: 'registered', data: { kind: 'registered', endpoint: 'a' }, id: '1' }]],
  ['kind from data wins', ['event: x\ndata: {"kind":"notification"}\n\n'], [{ kind: 'notification', data: { kind: 'notification' }, id: '' }]],
  ['CRLF and CR line ends', ['id: 7\r\nevent: a\r\ndata: {"n":1}\r\n\r\n', 'data: {"n":2}\r\r'], [{ kind: 'a', data: { n: 1 }, id: '7' }, { kind: 'message', data: { n: 2 }, id: '7' }]],
  ['split across chunks, CR then LF', ['data: {"n"', ':1}\r', '\n\r\n'], [{ kind: 'message', data: { n: 1 }, id: '' }]],
  ['comments and keep-alives', [': lwm2md events\n\n: keep-alive\n\ndata: {}\n\n'], [{ kind: 'message', data: {}, id: '' }]],
  ['multi-line data', ['data: {"a":\ndata: 1}\n\n'], [{ kind: 'message', data: { a: 1 }, id: '' }]],
  ['no space after colon', ['data:{"a":2}\n\n'], [{ kind: 'message', data: { a: 2 }, id: '' }]],
  ['not JSON is kept as text', ['data: hello\n\n'], [{ kind: 'message', data: { text: 'hello' }, id: '' }]],
  ['no data, no event', ['event: x\nid: 3\n\n'], []],
  ['unterminated event is not dispatched', ['data: {}\n'], []],
  ['id with NUL is ignored', ['id: 5\ndata: {}\n\nid: 6\u0000\ndata: {}\n\n'], [{ kind: 'message', data: {}, id: '5' }, { kind: 'message', data: {}, id: '5' }]],
];
for (const [name, chunks, want] of sse) {
  const { events } = await parse(chunks);
  check(`sse: ${name}`, events, want);
}
{
  const { retry } = await parse(['retry: 2000\nretry: x1\n\n']);
  check('sse: retry', retry, 2000);
}

const literals = [
  ['integer', '-12', '-12'],
  ['unsigned', ' 18446744073709551615 ', '18446744073709551615'],
  ['float', '21.5', '21.5'],
  ['float', '-1e-3', '-1e-3'],
  ['boolean', 'true', 'true'],
  ['time', '1700000000', '1700000000'],
  ['time', '2026-01-02T03:04:05Z', '1767323045'],
  ['opaque', 'AAEC', '"AAEC"'],
  ['objlnk', '3:0', '"3:0"'],
  ['string', ' +02:00 ', '" +02:00 "'],
  ['string', 'a"b\\', '"a\\"b\\\\"'],
];
for (const [type, text, want] of literals) check(`literal ${type} ${text}`, literal(type, text), want);

const bad = [
  ['integer', '1.5', 'an integer'],
  ['integer', '', 'an integer'],
  ['unsigned', '-1', 'an unsigned'],
  ['float', '1,5', 'a number'],
  ['float', 'NaN', 'a number'],
  ['boolean', '1', 'true or false'],
  ['time', 'yesterday', 'Unix seconds'],
  ['opaque', 'AAE', 'base64'],
  ['opaque', '@@@@', 'base64'],
  ['objlnk', '3', 'object link'],
];
for (const [type, text, want] of bad) {
  let msg = '';
  try {
    literal(type, text);
  } catch (e) {
    msg = e.message;
  }
  check(`literal ${type} ${JSON.stringify(text)} refused`, msg.includes(want), true);
}
check('resourceJSON', resourceJSON('/3/0/14', 'string', '+02:00'), '{"path":"/3/0/14","type":"string","value":"+02:00"}');
check('resourceJSON keeps big unsigned', resourceJSON('/3/0/1', 'unsigned', '18446744073709551615'), '{"path":"/3/0/1","type":"unsigned","value":18446744073709551615}');

function flat(path, node) {
  const leaves = [];
  const multis = [];
  flatten(path, node, (p, t, v) => leaves.push([p, t, v]), (p, t) => multis.push([p, t]));
  return { leaves, multis };
}
check('flatten single', flat('/3/0/0', { path: '/3/0/0', type: 'string', value: 'lwm2md' }), { leaves: [['/3/0/0', 'string', 'lwm2md']], multis: [] });
check(
  'flatten object',
  flat('/3', {
    path: '/3',
    instances: [{ path: '/3/0', resources: [{ path: '/3/0/0', type: 'string', value: 'x' }, { path: '/3/0/7', type: 'integer', instances: [{ path: '/3/0/7/0', value: 3800 }, { path: '/3/0/7/1', type: 'float', value: 1.5 }] }] }],
  }),
  { leaves: [['/3/0/0', 'string', 'x'], ['/3/0/7/0', 'integer', 3800], ['/3/0/7/1', 'float', 1.5]], multis: [['/3/0/7', 'integer']] },
);
check('flatten empty multiple', flat('/3/0/7', { path: '/3/0/7', type: 'integer', instances: [] }), { leaves: [], multis: [['/3/0/7', 'integer']] });
check('flatten resource instance', flat('/3/0/7/1', { path: '/3/0/7/1', type: 'integer', value: 5 }), { leaves: [['/3/0/7/1', 'integer', 5]], multis: [] });
check('depth', [depth('/'), depth('/3'), depth('/3/0'), depth('/3/0/7'), depth('/3/0/7/1')], [0, 1, 2, 3, 4]);

check('show float', show('float', 22.330000000000002), '22.33');
check('show float string', show('float', 'NaN'), 'NaN');
check('show opaque', show('opaque', 'AAECAw=='), '4 bytes');
check('show time', show('time', 0), '0 (1970-01-01T00:00:00Z)');
check('show integer', show('integer', 12), '12');

check('ops RW', opsOf({ operations: 'RW' }), { read: true, write: true, execute: false });
check('ops E', opsOf({ operations: 'E' }), { read: false, write: false, execute: true });
check('ops none', opsOf({ operations: '' }), { read: false, write: false, execute: false });
check('type unsigned', typeOf({ type: 'unsigned' }), 'unsigned');

if (failed) {
  console.log(`${failed} failed`);
  process.exit(1);
}
console.log('ok');
