// Object definitions as the API serves them (GET api/v1/objects/{id}),
// read the same way whatever the spelling of a field.

export function resourcesOf(def) {
  return (def?.resources || []).slice().sort((a, b) => a.id - b.id);
}

// opsOf is the set of operations of a resource definition: {read, write, execute}.
export function opsOf(r) {
  const o = r.operations ?? r.ops ?? '';
  const s = Array.isArray(o) ? o.join(',').toLowerCase() : String(o).toLowerCase();
  if (Array.isArray(o) || s.includes('read') || s.includes('write') || s.includes('exec')) {
    return { read: s.includes('read'), write: s.includes('write'), execute: s.includes('exec') };
  }
  // The DDF spelling: "R", "W", "RW", "E".
  return { read: s.includes('r'), write: s.includes('w'), execute: s.includes('e') };
}

export function opsText(o) {
  return (o.read ? 'R' : '') + (o.write ? 'W' : '') + (o.execute ? 'E' : '') || '—';
}

// typeOf is the JSON type name of a resource definition ("string",
// "unsigned", ...), as the node format spells it.
export function typeOf(r) {
  const t = String(r.type || '').toLowerCase();
  if (t === 'unsigned integer') return 'unsigned';
  if (t === 'objectlink' || t === 'objlnk') return 'objlnk';
  if (t === 'corelink' || t === 'corelnk') return 'corelnk';
  return t;
}
