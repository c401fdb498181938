// Signing in to the console through a real OpenID Connect provider (npm oidc-provider, run here
// on loopback): authorization code with PKCE, the ID token as the bearer token, its subject
// mapped to the staff registry; no demo picker on a server whose tokens are the provider's; the
// token never in a URL, a cookie or storage.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Provider from 'oidc-provider';
import { startServer, launch, openPage, freePort, shot } from './harness.mjs';

const CLIENT = 'pledgeflow-console';
let provider, providerServer, server, browser, issuer;

before(async () => {
  const consolePort = await freePort();
  const redirect = `http://127.0.0.1:${consolePort}/`;
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  provider = new Provider(issuer, {
    clients: [{ client_id: CLIENT, token_endpoint_auth_method: 'none', redirect_uris: [redirect], grant_types: ['authorization_code'], response_types: ['code'] }],
    // The province's provider vouches for who the person is: the subject is the login name.
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    pkce: { required: () => true },
    clientBasedCORS: (ctx, origin) => origin === new URL(redirect).origin,
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['a key for this test only'] },
  });
  providerServer = provider.listen(port);
  server = await startServer({
    port: consolePort,
    env: {
      PLEDGEFLOW_JWT_ISSUER: issuer,
      PLEDGEFLOW_JWT_JWKS_URL: `${issuer}/jwks`,
      PLEDGEFLOW_JWT_AUDIENCE: CLIENT,
      PLEDGEFLOW_OIDC_CLIENT_ID: CLIENT,
    },
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  providerServer?.close();
});

test('an approver signs in at the identity provider and lands on the approver page', async () => {
  const config = await (await fetch(`${server.base}/console/config.json`)).json();
  assert.deepEqual(config, { demoLogin: false, oidc: { issuer, clientId: CLIENT, scope: 'openid profile' } });
  assert.equal((await fetch(`${server.base}/console/demo/identities`)).status, 404, 'no demo picker with an outside issuer');

  const p = await openPage(browser, server.base, { allowed: [issuer] });
  const { page } = p;
  await page.goto(`${server.base}/#/login`);
  await page.waitForSelector('#oidc-login');
  assert.equal(await page.locator('select[name=identity]').count(), 0);
  await shot(page, 'oidc-login');
  await page.click('#oidc-login');
  await page.waitForURL((u) => u.origin === issuer);
  await page.fill('input[name=login]', 'approver-01');
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
  await page.waitForSelector('button.login-submit');
  await page.click('button.login-submit');
  await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '/approver', null, { timeout: 30_000 }).catch(async (e) => { await shot(page, 'oidc-failed'); throw new Error(`${e.message}; at ${page.url()}; errors: ${p.errors.join(' / ')}; main: ${await page.locator('main').innerText()}`); });
  assert.equal(new URL(page.url()).search, '', 'the code is gone from the address');
  const who = await page.locator('#top .who').innerText();
  assert.match(who, /审批/, `the registry's role is shown: ${who}`);
  await shot(page, 'oidc-approver');

  // The token is in memory only: nothing in storage or cookies of this origin, nothing in a URL.
  const stored = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }));
  assert.deepEqual(JSON.parse(stored), { local: {}, session: {}, cookie: '' });
  // (Cookies are per host, not port: the provider's own session cookies on 127.0.0.1 show here.)
  const cookies = await p.context.cookies(server.base);
  assert.ok(!cookies.some((c) => c.value.startsWith('eyJ') || !c.httpOnly), `no token in a cookie, none readable by scripts: ${JSON.stringify(cookies)}`);
  assert.ok(!p.requests.some((u) => /id_token=|access_token=/.test(u)), 'no token in any URL');

  // Someone the staff registry does not know is refused, with the registry's reason.
  const q = await openPage(browser, server.base, { allowed: [issuer] });
  await q.page.goto(`${server.base}/#/login`);
  await q.page.click('#oidc-login');
  await q.page.waitForURL((u) => u.origin === issuer);
  await q.page.fill('input[name=login]', 'not-on-staff');
  await q.page.fill('input[name=password]', 'any');
  await q.page.click('button[type=submit]');
  await q.page.waitForSelector('button.login-submit');
  await q.page.click('button.login-submit');
  await q.page.waitForSelector('.notice.error');
  assert.match(await q.page.locator('.notice.error').innerText(), /STAFF_NOT_REGISTERED/);
  p.check();
  await p.close();
  await q.close();
});
