// The state diagram of a workflow, drawn from its definition (states and transitions as the API
// gives them) with an instance's path over it: the states it passed through, the transitions it
// took, the state it is in. States are laid out in columns by their distance from the initial
// state, so the usual course of a case reads left to right.
import { h, t } from './core.js';

const BOX = { w: 150, h: 44, gapX: 60, gapY: 18, pad: 16 };

/** Columns of state names: the initial state first, then breadth-first along the transitions. */
export function layers(definition) {
  const names = definition.states.map((s) => s.name);
  const next = new Map(names.map((n) => [n, new Set()]));
  for (const tr of definition.transitions) {
    if (!tr.to) continue;
    for (const from of tr.from) if (next.has(from) && from !== tr.to) next.get(from).add(tr.to);
  }
  const depth = new Map([[definition.initialState, 0]]);
  const queue = [definition.initialState];
  while (queue.length) {
    const s = queue.shift();
    for (const to of next.get(s) || []) {
      if (!depth.has(to)) { depth.set(to, depth.get(s) + 1); queue.push(to); }
    }
  }
  // A state no transition reaches still gets drawn, after the rest.
  const last = Math.max(0, ...depth.values()) + 1;
  for (const n of names) if (!depth.has(n)) depth.set(n, last);
  const columns = [];
  for (const n of names) (columns[depth.get(n)] ||= []).push(n);
  // Final states below the ones that go on, so the live course stays at the top.
  const finals = new Set(definition.states.filter((s) => s.isFinal).map((s) => s.name));
  return columns.filter(Boolean).map((col) => col.sort((a, b) => Number(finals.has(a)) - Number(finals.has(b))));
}

/** The instance's course from its audit events: states visited and transitions taken. */
export function course(history) {
  const visited = new Set();
  const taken = new Set();
  for (const e of history) {
    if (e.fromState) visited.add(e.fromState);
    visited.add(e.toState);
    if (e.fromState && e.fromState !== e.toState) taken.add(`${e.fromState}→${e.toState}`);
  }
  return { visited, taken };
}

/** The `<svg>` of `definition` with `current` and the course of `history` marked. */
export function diagram(definition, current, history) {
  const columns = layers(definition);
  const { visited, taken } = course(history);
  const titles = new Map(definition.states.map((s) => [s.name, s.title || s.name]));
  const finals = new Set(definition.states.filter((s) => s.isFinal).map((s) => s.name));
  const at = new Map();
  columns.forEach((col, x) => col.forEach((name, y) => at.set(name, {
    x: BOX.pad + x * (BOX.w + BOX.gapX),
    y: BOX.pad + y * (BOX.h + BOX.gapY),
  })));
  const width = BOX.pad * 2 + columns.length * (BOX.w + BOX.gapX) - BOX.gapX;
  const height = BOX.pad * 2 + Math.max(...columns.map((c) => c.length)) * (BOX.h + BOX.gapY) - BOX.gapY;

  const edges = [];
  const seen = new Set();
  for (const tr of definition.transitions) {
    if (!tr.to) continue;
    for (const from of tr.from) {
      const key = `${from}→${tr.to}`;
      if (from === tr.to || seen.has(key) || !at.has(from) || !at.has(tr.to)) continue;
      seen.add(key);
      const events = definition.transitions.filter((x) => x.to === tr.to && x.from.includes(from)).map((x) => x.on);
      edges.push(h('path', { class: `edge${taken.has(key) ? ' taken' : ''}`, d: edgePath(at.get(from), at.get(tr.to)), 'marker-end': `url(#${taken.has(key) ? 'arrow-taken' : 'arrow'})` },
        h('title', {}, `${titles.get(from)} → ${titles.get(tr.to)}（${[...new Set(events)].join('、')}）`)));
    }
  }
  // Taken transitions drawn last, over the others.
  edges.sort((a, b) => Number(a.classList.contains('taken')) - Number(b.classList.contains('taken')));

  const boxes = [...at.entries()].map(([name, p]) => {
    const cls = ['state', name === current ? 'current' : visited.has(name) ? 'visited' : '', finals.has(name) ? 'final' : ''].filter(Boolean).join(' ');
    const lines = wrap(titles.get(name));
    return h('g', { class: cls, 'data-state': name, transform: `translate(${p.x},${p.y})` },
      h('title', {}, `${titles.get(name)}（${name}）${name === current ? t('：当前状态', ': current state') : visited.has(name) ? t('：已经过', ': passed') : ''}`),
      h('rect', { width: BOX.w, height: BOX.h, rx: 6 }),
      lines.map((line, i) => h('text', { x: BOX.w / 2, y: BOX.h / 2 + (i - (lines.length - 1) / 2) * 14 + 4, 'text-anchor': 'middle' }, line)));
  });

  const label = t(`状态图：当前状态为「${titles.get(current) || current}」，已经过 ${visited.size} 个状态`, `State diagram: now in “${titles.get(current) || current}”, ${visited.size} states passed`);
  return h('svg', { xmlns: 'http://www.w3.org/2000/svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label },
    h('defs', {}, marker('arrow', '#8994a1'), marker('arrow-taken', '#0b5cad')),
    edges, boxes);
}

function marker(id, colour) {
  return h('marker', { id, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    h('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: colour }));
}

/** Forward edges leave a box's right side for the next box's left; others arc below. */
function edgePath(a, b) {
  if (b.x > a.x) {
    const [x1, y1, x2, y2] = [a.x + BOX.w, a.y + BOX.h / 2, b.x, b.y + BOX.h / 2];
    const dx = (x2 - x1) / 2;
    return `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
  }
  if (b.x === a.x) {
    const [x1, y1, x2, y2] = [a.x + BOX.w, a.y + BOX.h / 2, b.x + BOX.w, b.y + BOX.h / 2];
    return `M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 + 40} ${y2}, ${x2} ${y2}`;
  }
  const [x1, y1, x2, y2] = [a.x + BOX.w / 2, a.y + BOX.h, b.x + BOX.w / 2, b.y + BOX.h];
  const dip = Math.max(y1, y2) + BOX.gapY;
  return `M ${x1} ${y1} C ${x1} ${dip}, ${x2} ${dip}, ${x2} ${y2}`;
}

/** A title split into lines that fit the box (about 11 characters of Chinese each). */
function wrap(title) {
  const max = 11;
  if (title.length <= max) return [title];
  const cut = title.search(/[，,（(]/);
  if (cut > 0 && cut <= max && title.length - cut <= max + 1) return [title.slice(0, cut + 1), title.slice(cut + 1)];
  return [title.slice(0, max), title.slice(max, max * 2 - 1) + (title.length > max * 2 - 1 ? '…' : '')];
}
