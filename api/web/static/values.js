// Values of the object tree, in the API's JSON node form
// ({"path":"/3/0/0","type":"string","value":"lwm2md"}, instances and
// resources nested), flattened into a map from path to leaf, and turned
// back into text for the page and into JSON for a Write.

// depth is the number of IDs in an LwM2M path ("/3/0/7" is 3).
export function depth(path) {
  return path === '/' ? 0 : path.split('/').length - 1;
}

// flatten calls leaf(path, type, value) for every value under node, and
// multi(path, type) for every multiple resource. A resource instance
// inherits its resource's type when it does not repeat it.
export function flatten(path, node, leaf, multi) {
  const p = node.path || path;
  const d = depth(p);
  if (d <= 2) {
    const kids = d === 1 ? node.instances : node.resources;
    for (const k of kids || []) flatten(k.path || `${p}/${k.id}`, k, leaf, multi);
    return;
  }
  if (d === 3 && Array.isArray(node.instances)) {
    multi(p, node.type || '');
    for (const ri of node.instances) {
      leaf(ri.path || `${p}/${ri.id}`, ri.type || node.type || '', ri.value);
    }
    return;
  }
  if ('value' in node) leaf(p, node.type || '', node.value);
}

// show is the text of one value: integers as written, times with their
// date, opaque as its size (the base64 in the title).
export function show(type, value) {
  if (value === undefined || value === null) return '';
  switch (type) {
    case 'time': {
      const d = new Date(Number(value) * 1000);
      return isNaN(d) ? String(value) : `${value} (${d.toISOString().replace('.000', '')})`;
    }
    case 'opaque': {
      const s = String(value);
      const n = Math.floor((s.length * 3) / 4) - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);
      return `${n} byte${n === 1 ? '' : 's'}`;
    }
    case 'float': {
      // Floats are shown to 15 significant digits (22.330000000000002 is
      // shown as 22.33); the exact value is in the cell's title.
      const n = Number(value);
      return typeof value === 'number' && isFinite(n) ? String(parseFloat(n.toPrecision(15))) : String(value);
    }
    default:
      return String(value);
  }
}

// literal checks what an operator typed for a value of type and returns
// the JSON text of the value; numbers are passed on as typed, so a large
// unsigned is not rounded through a JavaScript number. Throws an Error
// naming what is wrong.
export function literal(type, text) {
  const s = text.trim();
  switch (type) {
    case 'integer':
      if (!/^-?\d+$/.test(s)) throw new Error('an integer is needed (e.g. -12)');
      return s;
    case 'unsigned':
      if (!/^\d+$/.test(s)) throw new Error('an unsigned integer is needed (e.g. 42)');
      return s;
    case 'float':
      if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error('a number is needed (e.g. 21.5)');
      return s;
    case 'boolean':
      if (s !== 'true' && s !== 'false') throw new Error('true or false is needed');
      return s;
    case 'time': {
      if (/^-?\d+$/.test(s)) return s;
      const ms = Date.parse(s);
      if (isNaN(ms)) throw new Error('Unix seconds or a date (2026-01-02T03:04:05Z) is needed');
      return String(Math.floor(ms / 1000));
    }
    case 'opaque':
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Error('base64 is needed (RFC 4648, with padding)');
      return JSON.stringify(s);
    case 'objlnk':
      if (!/^\d+:\d+$/.test(s)) throw new Error('an object link "object:instance" is needed (e.g. 3:0)');
      return JSON.stringify(s);
    default:
      return JSON.stringify(text);
  }
}

// resourceJSON is the body of a Write of one single-instance resource.
export function resourceJSON(path, type, text) {
  return `{"path":${JSON.stringify(path)},"type":${JSON.stringify(type)},"value":${literal(type, text)}}`;
}
