// Signing in. In production: OpenID Connect's authorization-code flow with PKCE against the
// configured identity provider; the ID token it returns is the bearer token, and pledgeflow maps
// its subject to the staff registry. On a demo or training server: a page to pick a demo
// identity, for which the server mints a token. Either way the token lives in memory only.
import { route, h, t, field, fill, notify, describe, signIn, roleName } from './core.js';

let config = null;
async function consoleConfig() {
  if (!config) config = await (await fetch('/console/config.json')).json();
  return config;
}

route('/login', async (page) => {
  const cfg = await consoleConfig();
  page.append(h('h1', {}, t('登录', 'Sign in')));
  if (cfg.oidc) {
    page.append(h('section', { 'aria-labelledby': 'oidc-h' },
      h('h2', { id: 'oidc-h' }, t('统一身份认证', 'Unified identity')),
      h('p', {}, t('使用本省统一身份认证平台账号登录。', 'Sign in with the province\'s unified identity account.')),
      h('button', { type: 'button', class: 'primary', id: 'oidc-login', onclick: () => startOidc(cfg.oidc).catch((e) => notify(describe(e), 'error')) }, t('统一身份认证登录', 'Sign in with unified identity'))));
  }
  if (cfg.demoLogin) page.append(await demoPicker());
  if (!cfg.oidc && !cfg.demoLogin) {
    page.append(h('p', {}, t('本服务器未配置控制台登录。请联系管理员配置统一身份认证（PLEDGEFLOW_OIDC_CLIENT_ID）。', 'No console sign-in is configured on this server: ask the operator to configure the identity provider (PLEDGEFLOW_OIDC_CLIENT_ID).')));
  }
}, { title: () => t('登录', 'Sign in') });

async function demoPicker() {
  const { staff, applicants } = await (await fetch('/console/demo/identities')).json();
  const options = [
    ...staff.map((s) => ({ value: `staff:${s.id}`, text: `${s.name}（${s.id} · ${s.roles.map(roleName).join('、')}${s.department ? ' · ' + s.department : ''}）` })),
    ...applicants.map((a) => ({ value: `applicant:${a.uscc}`, text: `${a.name}（${t('申请人', 'applicant')} · ${a.uscc}）` })),
  ];
  const chooser = h('select', { name: 'identity', required: true }, options.map((o) => h('option', { value: o.value }, o.text)));
  const form = h('form', { id: 'demo-login' },
    field(t('演示身份', 'Demo identity'), chooser, t('仅在演示或培训服务器上提供。', 'Offered on demo and training servers only.')),
    h('button', { type: 'submit', class: 'primary' }, t('以此身份登录', 'Sign in as this identity')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const [kind, id] = chooser.value.split(/:(.*)/s);
    try {
      const response = await fetch('/console/demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(kind === 'staff' ? { staff: id } : { applicant: id }) });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      await signIn(body.token);
    } catch (err) {
      notify(describe(err), 'error');
    }
  });
  return h('section', { 'aria-labelledby': 'demo-h' }, h('h2', { id: 'demo-h' }, t('演示登录', 'Demo sign-in')), form);
}

// ---- OpenID Connect, authorization code with PKCE -------------------------------------------
const PENDING = 'pledgeflow.oidc.pending';

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
function random() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}
async function discovery(issuer) {
  const response = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(t(`无法读取认证平台配置（HTTP ${response.status}）`, `The identity provider's configuration could not be read (HTTP ${response.status})`));
  return response.json();
}
function redirectUri() {
  return `${location.origin}/`;
}

async function startOidc(oidc) {
  const meta = await discovery(oidc.issuer);
  const verifier = random();
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const pending = { verifier, state: random(), nonce: random() };
  // Only the one-time verifier and state cross the redirect (same origin, this tab); never a token.
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: oidc.scope || 'openid profile',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: pending.state,
    nonce: pending.nonce,
  });
  location.assign(`${meta.authorization_endpoint}?${query}`);
}

/** On return from the provider (`/?code=…&state=…`): exchange the code and sign in. */
export async function finishOidc() {
  const params = new URLSearchParams(location.search);
  if (!params.has('state') || !(params.has('code') || params.has('error'))) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', '/#/login');
  if (params.has('error')) throw new Error(`${params.get('error')}: ${params.get('error_description') || ''}`);
  if (!pending || pending.state !== params.get('state')) throw new Error(t('登录状态不符，请重新登录', 'The sign-in did not match the one started here: sign in again'));
  const cfg = await consoleConfig();
  const meta = await discovery(cfg.oidc.issuer);
  const response = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(), client_id: cfg.oidc.clientId, code_verifier: pending.verifier }),
  });
  const body = await response.json();
  if (!response.ok || !body.id_token) throw new Error(`${body.error || response.status}: ${body.error_description || ''}`);
  const claims = JSON.parse(atob(body.id_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  if (claims.nonce !== pending.nonce) throw new Error(t('登录凭证与本次登录不符', 'The token was not issued for this sign-in'));
  await signIn(body.id_token);
  return true;
}

export function showLoginError(e) {
  const main = document.getElementById('main');
  if (main) fill(main, h('p', { class: 'notice error', role: 'alert' }, describe(e)));
}
