// The console's core: the session (token kept in memory only), the GraphQL client over HTTP and
// graphql-transport-ws, the hash router, element building and formatting. Pages import this and
// register their routes; nothing here knows a rule of the API — what the API refuses is shown.

export const session = { token: null, viewer: null, lang: 'zh' };

// ---- language ------------------------------------------------------------------------------
/** The text in the chosen language: `t('窗口', 'Window')`. */
export function t(zh, en) {
  return session.lang === 'en' && en ? en : zh;
}

// ---- elements ------------------------------------------------------------------------------
/** Builds an element: `h('button', {onclick, class: 'primary'}, '保存')`. Text is never parsed as HTML. */
export function h(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_TAGS.has(tag) ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}
const SVG_TAGS = new Set(['svg', 'g', 'rect', 'circle', 'ellipse', 'path', 'line', 'polyline', 'text', 'tspan', 'defs', 'marker', 'title']);

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let nextId = 0;
/** A labelled form field: the label's `for` names the control (generated when absent). */
export function field(label, control, hint) {
  if (!control.id) control.id = `f${++nextId}`;
  const hintEl = hint ? h('small', { id: `${control.id}-hint`, class: 'hint' }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** A `<select>` from `[value, text]` pairs. */
export function select(name, options, value) {
  return h('select', { name }, options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

/** A table from column headers and rows of cells; `empty` is said when there are no rows. */
export function table(caption, headers, rows, empty = t('无', 'None')) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

/** A link to a route of the console. */
export function link(hash, text) {
  return h('a', { href: `#${hash}` }, text);
}

/** Prints the commitment letter alone (the print stylesheet hides the rest while this runs). */
export function printLetter() {
  document.body.classList.add('print-letter');
  window.print();
  document.body.classList.remove('print-letter');
}

// ---- messages ------------------------------------------------------------------------------
/** Says something in the page's live region (read out by screen readers). */
export function notify(message, kind = 'info') {
  const box = document.getElementById('notice');
  if (!box) return;
  fill(box, h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message));
}

/** An error of the API as people read it: its message, its code and reason. */
export function describe(error) {
  if (error instanceof ApiError) {
    const bits = [error.code, error.reason].filter(Boolean).join(' · ');
    return bits ? `${error.message}（${bits}）` : error.message;
  }
  return String(error && error.message ? error.message : error);
}

export class ApiError extends Error {
  constructor(errors) {
    const first = errors[0] || {};
    super(first.message || 'error');
    this.errors = errors;
    this.code = first.extensions && first.extensions.code;
    this.reason = first.extensions && first.extensions.reason;
  }
}

// ---- GraphQL -------------------------------------------------------------------------------
/** Runs a query or mutation with the session's token; throws `ApiError` on any error. */
export async function gql(query, variables = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError([{ message: `HTTP ${response.status}` }]);
  }
  if (body.errors && body.errors.length) {
    const err = new ApiError(body.errors);
    if (err.code === 'UNAUTHENTICATED' && session.token) signOut(t('登录已失效，请重新登录', 'Signed out: the session ended'));
    throw err;
  }
  return body.data;
}

/** Subscribes over graphql-transport-ws; `onNext(data)` for each result. Returns a stop function. */
export function subscribe(query, variables, onNext, onError = () => {}) {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`;
  const ws = new WebSocket(url, 'graphql-transport-ws');
  let stopped = false;
  ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: session.token ? { Authorization: `Bearer ${session.token}` } : {} }));
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === 'connection_ack') ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
    else if (msg.type === 'next' && msg.payload.data) onNext(msg.payload.data);
    else if (msg.type === 'next' && msg.payload.errors) onError(new ApiError(msg.payload.errors));
    else if (msg.type === 'error') onError(new ApiError(msg.payload));
    else if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
  };
  ws.onclose = (e) => { if (!stopped && e.code !== 1000) onError(new Error(`websocket closed ${e.code}`)); };
  return () => { stopped = true; if (ws.readyState <= 1) ws.close(1000); };
}
// Every open subscription is stopped when the page changes.
const live = [];
/** Like `subscribe`, stopped when the route changes. */
export function subscribeWhileShown(query, variables, onNext) {
  live.push(subscribe(query, variables, onNext, (e) => notify(describe(e), 'error')));
}

// ---- who is signed in -----------------------------------------------------------------------
export const VIEWER = `query Viewer { viewer { subject name roles region department division uscc } }`;

export async function signIn(token) {
  session.token = token;
  try {
    session.viewer = (await gql(VIEWER)).viewer;
  } catch (e) {
    session.token = null;
    throw e;
  }
  if (!session.viewer) {
    session.token = null;
    throw new Error(t('无法识别登录身份', 'The sign-in was not recognised'));
  }
  // A changed hash renders through the router's hashchange; an unchanged one needs a render.
  const target = `#${startPage()}`;
  if (location.hash !== target) location.hash = target;
  else await show();
}

export function signOut(message) {
  session.token = null;
  session.viewer = null;
  location.hash = '/login';
  show().then(() => message && notify(message, 'error'));
}

export function hasRole(...roles) {
  return !!session.viewer && session.viewer.roles.some((r) => roles.includes(r));
}

/** Each role's start page, in the order a person with several roles lands on them. */
export const START_PAGES = [
  ['window', '/window'],
  ['approver', '/approver'],
  ['department_head', '/approver'],
  ['division_admin', '/division'],
  ['inspector', '/division'],
  ['supervisor', '/supervisor'],
  ['regional_admin', '/admin'],
  ['applicant', '/mine'],
];

export function startPage() {
  const v = session.viewer;
  if (!v) return '/login';
  const hit = START_PAGES.find(([role]) => v.roles.includes(role));
  return hit ? hit[1] : '/login';
}

// ---- routing -------------------------------------------------------------------------------
const routes = [];
/** Registers a page: `route('/case/:id', async (main, {id}) => …, {title, roles, nav})`. */
export function route(pattern, render, options = {}) {
  const names = [];
  const regex = new RegExp('^' + pattern.replace(/:([a-zA-Z]+)/g, (_, n) => { names.push(n); return '([^/]+)'; }) + '$');
  routes.push({ pattern, regex, names, render, ...options });
}

/** Renders the page the hash names. */
export async function show() {
  while (live.length) live.pop()();
  const path = (location.hash || '#/').slice(1) || '/';
  const main = document.getElementById('main');
  renderHeader();
  if (!session.viewer && path !== '/login') {
    location.replace('#/login');
    return show();
  }
  if (path === '/' || path === '') {
    location.replace(`#${startPage()}`);
    return show();
  }
  const hit = routes.map((r) => [r, path.match(r.regex)]).find(([, m]) => m);
  fill(main, h('div', { id: 'notice', 'aria-live': 'polite' }));
  if (!hit) {
    main.append(h('h1', {}, t('页面不存在', 'Page not found')));
    main.dataset.ready = path;
    return;
  }
  const [r, m] = hit;
  const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
  const title = typeof r.title === 'function' ? r.title(params) : r.title;
  document.title = `${title || ''} · ${t('告知承诺审批监管', 'pledgeflow')}`;
  const body = h('div', { class: 'page' });
  main.append(body);
  try {
    await r.render(body, params);
  } catch (e) {
    body.append(h('p', { class: 'notice error', role: 'alert' }, describe(e)));
  }
  main.dataset.ready = path;
}

function renderHeader() {
  const top = document.getElementById('top');
  const v = session.viewer;
  const nav = v ? routes.filter((r) => r.nav && (!r.roles || r.roles.some((x) => v.roles.includes(x)))) : [];
  fill(top,
    h('div', { class: 'brand' }, t('告知承诺制 · 审批与监管', 'Commitment approval & supervision')),
    h('nav', { 'aria-label': t('主导航', 'Main') }, h('ul', {}, nav.map((r) => h('li', {}, link(r.pattern, typeof r.nav === 'function' ? r.nav() : r.nav))),
      // Opened with the opener kept, so GraphiQL can take this tab's token (same origin only).
      v ? h('li', {}, h('a', { href: '/graphiql', target: '_blank', rel: 'opener' }, 'GraphiQL')) : null)),
    h('div', { class: 'who' },
      v ? h('span', {}, `${v.name || v.subject}（${v.roles.map(roleName).join('、')}）`) : null,
      h('button', { type: 'button', class: 'link', onclick: () => { session.lang = session.lang === 'zh' ? 'en' : 'zh'; document.documentElement.lang = session.lang === 'zh' ? 'zh-CN' : 'en'; show(); } }, session.lang === 'zh' ? 'English' : '中文'),
      v ? h('button', { type: 'button', class: 'link', onclick: () => signOut() }, t('退出', 'Sign out')) : null));
}

// ---- words ---------------------------------------------------------------------------------
const ROLE_NAMES = {
  window: ['窗口', 'Window'],
  approver: ['审批', 'Approver'],
  department_head: ['部门负责人', 'Head of department'],
  division_admin: ['监管科室', 'Division admin'],
  inspector: ['检查员', 'Inspector'],
  supervisor: ['督查', 'Supervisor'],
  regional_admin: ['区级管理员', 'Regional admin'],
  applicant: ['申请人', 'Applicant'],
};
export function roleName(role) {
  const n = ROLE_NAMES[role];
  return n ? t(n[0], n[1]) : role;
}

// The commitment modes: the API's enum (`DEFERRAL`) and a case row's (`deferral`) name the same.
export const MODES = {
  DEFERRAL: ['容缺后补', 'Materials later'],
  VERIFICATION: ['事后核查', 'Verified later'],
  AFTER_THE_FACT: ['事后监管', 'Checked after the fact'],
  ORDINARY: ['一般程序', 'Ordinary procedure'],
};
export function modeName(mode) {
  const n = MODES[String(mode || '').toUpperCase()];
  return n ? t(n[0], n[1]) : mode;
}

// ---- time ----------------------------------------------------------------------------------
const ZONE = 'Asia/Shanghai';
/** An instant as the office reads it (Beijing time). */
export function dateTime(iso) {
  if (!iso) return '—';
  return new Intl.DateTimeFormat('zh-CN', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(iso));
}
/** The office's calendar date of an instant, as `YYYY-MM-DD` (what a date input holds). */
export function officeDate(instant) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(instant));
}
/** The time the server acts on: a training server runs on its own clock, far from the browser's. */
export async function serverNow() {
  const { serverClock } = await gql(`query Clock { serverClock { now manual } }`);
  return { now: serverClock.now, manual: serverClock.manual, exact: true };
}
export function date(iso) {
  if (!iso) return '—';
  return new Intl.DateTimeFormat('zh-CN', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(iso));
}

// GraphiQL, opened from the console in a new tab of this origin, reads the token from here.
window.pledgeflowToken = () => session.token;

/** A key's words from a `{key: [zh, en]}` table, the key itself when it has none. */
export function word(dict, key) {
  return dict[key] ? t(dict[key][0], dict[key][1]) : key;
}

// ---- limits --------------------------------------------------------------------------------
// The names the definitions give their timers and deadlines, as the office says them.
const LIMIT_NAMES = {
  materials_due: ['容缺材料补齐期限', 'Deferred materials due'],
  expiry: ['承诺期限届满', 'Commitment expires'],
  reminder: ['到期提醒', 'Reminder'],
  decision_limit: ['审批决定时限', 'Decision limit'],
  decision_due: ['撤销决定期限', 'Decision due'],
  acceptance_limit: ['受理决定时限', 'Acceptance limit'],
  legal_limit: ['法定办理时限', 'Legal time limit'],
  legal_due: ['法定办理期限', 'Legal limit due'],
  legal_limit_reminder: ['法定时限提醒', 'Legal limit reminder'],
  correction_limit: ['补正期限', 'Correction limit'],
  correction_due: ['补正期限', 'Corrections due'],
  correction_reminder: ['补正提醒', 'Correction reminder'],
  response_limit: ['陈述申辩期限', 'Statement period'],
  response_due: ['陈述申辩期限', 'Statement due'],
  grace_limit: ['宽限期', 'Grace period'],
  grace_due: ['宽限期届满', 'Grace period ends'],
  look_at_limit: ['查看分派时限（3个工作日）', 'Look-at limit (3 working days)'],
  look_at_reminder: ['查看分派提醒', 'Look-at reminder'],
  feedback_limit: ['核查反馈时限（5个工作日）', 'Feedback limit (5 working days)'],
  feedback_reminder: ['核查反馈提醒', 'Feedback reminder'],
  rectification_limit: ['整改期限', 'Rectification limit'],
  rectification_due: ['整改期限', 'Rectification due'],
  rectification_reminder: ['整改提醒', 'Rectification reminder'],
  bundle_due: ['一照通行办结期限', 'Bundle due'],
  limit_near: ['临近时限', 'Limit near'],
  notice: ['告知', 'Notice'],
};
// The supervision limits an SLA breach names.
export const BREACH_LIMITS = {
  look_at: ['3个工作日内查看', 'Look at in 3 working days'],
  feedback: ['5个工作日内反馈', 'Feed back in 5 working days'],
  legal_limit: ['法定办理时限', 'Legal time limit'],
  revocation_decision: ['撤销决定时限', 'Revocation decision limit'],
};
export function limitName(name) {
  const n = LIMIT_NAMES[name];
  return n ? t(n[0], n[1]) : name;
}

/** "3 个工作日后" / "今天到期" / "已逾期 2 个工作日", with its class; provisional said in words. */
export function daysLeft(n, provisional) {
  const text = n == null ? '—'
    : n > 0 ? t(`剩 ${n} 个工作日`, `${n} working days left`)
      : n === 0 ? t('今日到期', 'due today')
        : t(`已逾期 ${-n} 个工作日`, `${-n} working days overdue`);
  const cls = n == null ? '' : n < 0 ? 'overdue' : n <= 1 ? 'soon' : '';
  return h('span', { class: cls }, text, provisional ? h('span', { class: 'provisional' }, t('（暂定：节假日安排未公布）', ' (provisional: holidays not yet published)')) : null);
}

// Titles of the states, by definition name, from the newest definitions (loaded once).
let stateTitles = null;
export async function stateTitle(definition, state) {
  if (!stateTitles) {
    const { workflowDefinitions } = await gql(`{ workflowDefinitions(first: 100) { nodes { name title states { name title } } } }`);
    stateTitles = new Map(workflowDefinitions.nodes.map((d) => [d.name, { title: d.title, states: new Map(d.states.map((s) => [s.name, s.title])) }]));
  }
  const d = stateTitles.get(definition);
  return (d && d.states.get(state)) || state;
}
