// What every browser test needs: the real binary serving a fresh demo database, Debian's
// Chromium driven by playwright-core, sign-in by the demo picker, a record of every request a
// page makes (none may leave the allowed origins) and of every error it logs, screenshots under
// target/console-screenshots, and GraphQL as a test client to check the pages' figures.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.PLEDGEFLOW_BIN || path.join(REPO, 'target/debug/pledgeflow');
export const SHOTS = path.join(REPO, 'target/console-screenshots');

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

/** `pledgeflow serve --demo` on a fresh SQLite file with a training clock; `env` adds settings. */
export async function startServer({ env = {}, demo = true, port } = {}) {
  port = port || await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pf-console-'));
  const args = ['serve', ...(demo ? ['--demo'] : [])];
  const child = spawn(BIN, args, {
    env: {
      ...process.env,
      PLEDGEFLOW_DATABASE_URL: `sqlite://${dir}/console.db`,
      PLEDGEFLOW_DATA_DIR: path.join(dir, 'data'),
      PLEDGEFLOW_LISTEN: `127.0.0.1:${port}`,
      PLEDGEFLOW_WORKFLOWS_DIR: path.join(REPO, 'workflows'),
      PLEDGEFLOW_TEMPLATES_DIR: path.join(REPO, 'templates'),
      PLEDGEFLOW_CLOCK: 'manual',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (child.exitCode !== null) throw new Error(`server exited: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      assert.ok(!/panicked/.test(log), `the server panicked: ${log}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A token for a demo identity, as the login page gets one. */
export async function demoToken(base, pick) {
  const r = await fetch(`${base}/console/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(pick) });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).token;
}

/** GraphQL as a test client; throws on errors. */
export async function gqlAs(base, token, query, variables = {}) {
  const r = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  const body = await r.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/**
 * A fresh browser context on `base`: every request is recorded and must go to `allowed` origins;
 * page errors and console errors (CSP violations among them) are collected for `check()`.
 */
export async function openPage(browser, base, { allowed = [] } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  const page = await context.newPage();
  const origins = new Set([new URL(base).origin, ...allowed]);
  const requests = [];
  const errors = [];
  // Requests made while the page shows one of ours; the identity provider's own pages load what
  // they load, which is the provider's business.
  page.on('request', (r) => {
    let from = '';
    try { from = new URL(r.frame().url()).origin; } catch { /* a frame without a URL yet */ }
    if (!from || from === new URL(base).origin || from === 'null') requests.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return {
    page,
    context,
    requests,
    errors,
    /** No request left the allowed origins; no script error; nothing the CSP refused. */
    check() {
      const outside = requests.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:') && !origins.has(new URL(u).origin));
      assert.deepEqual(outside, [], 'every request stays on the allowed origins');
      // A refused request (a 4xx the page expects, like NOT_FOUND for another's case) logs a
      // console error in Chromium; those are answers, not faults of the page.
      const faults = errors.filter((e) => !/Failed to load resource: (the server responded with a status of 4\d\d|net::ERR_NAME_NOT_RESOLVED)/.test(e));
      assert.deepEqual(faults, [], 'no script error, no CSP violation');
    },
    async close() { await context.close(); },
  };
}

/** Picks a demo identity on the login page and waits for the start page. */
export async function signIn(page, base, pick) {
  await page.goto(`${base}/#/login`);
  await page.waitForSelector('select[name=identity]');
  await page.selectOption('select[name=identity]', pick);
  await page.click('#demo-login button[type=submit]');
  await page.waitForFunction(() => {
    const ready = document.getElementById('main')?.dataset.ready;
    return ready && ready !== '/login';
  });
  await noErrorShown(page);
}

/** The page shows no error of the API or of its own (a refusal the test expects is no `.error`). */
export async function noErrorShown(page) {
  const shown = await page.locator('main .notice.error').allInnerTexts();
  assert.deepEqual(shown, [], `errors on ${await page.evaluate(() => location.hash)}`);
}

/** Goes to a route of the console and waits until it has rendered. */
export async function visit(page, base, hash) {
  await page.evaluate(() => { delete document.getElementById('main').dataset.ready; });
  await page.goto(`${base}/#${hash}`);
  await page.waitForFunction((h) => document.getElementById('main')?.dataset.ready === h, hash);
  await noErrorShown(page);
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/**
 * WCAG 2 A and AA checks by axe-core on the page as shown (contrast, labels, names, keyboard
 * reachability of controls); evaluated through the driver, so the page's CSP stays on.
 */
export async function accessible(page, name) {
  const { readFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const source = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(`${source}\n;true`);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } }));
  const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(found, [], `${name}: WCAG A/AA violations`);
}
