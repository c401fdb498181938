// GraphiQL from the binary's own files: it renders under the content security policy with no
// request leaving the server, and opened from the console it carries the console's token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, signIn, shot } from './harness.mjs';

let server, browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('GraphiQL renders offline and, opened from the console, runs a query with the token preset', async () => {
  const p = await openPage(browser, server.base);
  await signIn(p.page, server.base, 'staff:window-01');
  const [tab] = await Promise.all([p.context.waitForEvent('page'), p.page.click('#top a[href="/graphiql"]')]);
  const errors = [];
  const outside = [];
  tab.on('pageerror', (e) => errors.push(e.message));
  tab.on('request', (r) => { if (new URL(r.url()).origin !== server.base) outside.push(r.url()); });
  await tab.waitForSelector('.graphiql-container', { timeout: 20_000 });
  await tab.waitForSelector('.graphiql-editor-tool');
  const headers = await tab.evaluate(() => document.querySelector('.graphiql-editor-tool')?.innerText || '');
  assert.match(headers, /Bearer ey/, `the header editor holds the console's token: ${headers}`);
  // Run the default query through GraphiQL's own fetcher (the run button) and read the answer.
  await tab.evaluate(() => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
    cm.setValue('{ viewer { subject roles } }');
  });
  await tab.click('.graphiql-execute-button');
  await tab.waitForFunction(() => (document.querySelector('.result-window')?.innerText || '').includes('window-01'), null, { timeout: 20_000 });
  await shot(tab, 'graphiql');
  assert.deepEqual(errors, []);
  assert.deepEqual(outside, []);
  p.check();
  await p.close();
});
