// Each role's way through the console on one demo server, in the order the work flows: the
// window finds an applicant by a fragment of its name and opens a deferral case, the approver
// issues its licence, the division admin assigns an inspector, the supervisor's charts hold the
// API's figures, the case page draws the diagram at the right state, and an applicant of another
// enterprise sees nothing of the case. Every page: no request off the server, no script error,
// WCAG A/AA by axe-core, a screenshot in target/console-screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, signIn, visit, shot, accessible, demoToken, gqlAs } from './harness.mjs';

const APPLICANT = '91310110666007217T'; // 上海示例餐饮管理有限公司 (the demo's breaches have lowered its tier)
const OTHER_APPLICANT = '91310101MA00000153'; // 上海示例小馆餐饮有限公司
let server, browser;
let caseId;
let assignedTask;

before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** Signs in as `pick` on a fresh page, runs `body`, then checks the page kept to the rules. */
async function as(pick, body) {
  const p = await openPage(browser, server.base);
  try {
    await signIn(p.page, server.base, pick);
    await body(p.page);
    p.check();
  } finally {
    await p.close();
  }
}

test('a window officer finds an applicant by name fragment, opens a deferral case, sees its deadline and receives the material', async () => {
  await as('staff:window-01', async (page) => {
    assert.equal(await page.evaluate(() => document.getElementById('main').dataset.ready), '/window');
    await shot(page, 'window-inbox');
    await accessible(page, 'window inbox');

    await page.fill('#case-search input[name=q]', '餐饮管理');
    await page.press('#case-search input[name=q]', 'Enter');
    await page.waitForSelector('#search-results');
    const found = await page.locator('#search-results').innerText();
    assert.match(found, /上海示例餐饮管理有限公司/);
    assert.ok(!found.includes('上海示例小馆餐饮有限公司'), 'only names with the fragment');
    await shot(page, 'window-search');

    await visit(page, server.base, '/window/open');
    await page.selectOption('select[name=item]', '310101-FOOD-01');
    await page.fill('input[name=uscc]', APPLICANT);
    await page.press('input[name=uscc]', 'Tab');
    await page.waitForSelector('[data-credit-tier]');
    const window01 = await demoToken(server.base, { staff: 'window-01' });
    const { applicant } = await gqlAs(server.base, window01, 'query($u: String!) { applicant(uscc: $u) { creditTier } }', { u: APPLICANT });
    assert.equal((await page.locator('[data-credit-tier]').innerText()).trim().slice(0, 1), applicant.creditTier, 'the tier is on screen before a mode is chosen');
    await page.selectOption('select[name=mode]', 'DEFERRAL');
    await page.fill('input[name=signedBy]', '张伟');
    await page.selectOption('select[name="material-M02"]', 'DEFERRED');
    await page.selectOption('select[name="material-M03"]', 'DEFERRED');
    await shot(page, 'window-open');
    await accessible(page, 'open a case');
    await page.click('#open-case button[type=submit]');
    await page.waitForSelector('.letter');
    await shot(page, 'window-letter');
    const link = await page.locator('a[href^="#/case/"]').first().getAttribute('href');
    caseId = link.replace('#/case/', '');
    await visit(page, server.base, `/case/${caseId}`);
    await page.waitForSelector('[data-deadline]');
    const token = await demoToken(server.base, { staff: 'window-01' });
    const { workflowInstance } = await gqlAs(server.base, token, 'query($id: ID!) { workflowInstance(id: $id) { state deadlines { at } } }', { id: caseId });
    assert.equal(workflowInstance.state, 'awaiting_materials');
    const shown = await page.locator('[data-deadline]').first().innerText();
    const due = new Intl.DateTimeFormat('zh-CN', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(workflowInstance.deadlines[0].at));
    assert.ok(shown.includes(due), `the deadline ${due} is shown: ${shown}`);
    await shot(page, 'case-deferral');
    await accessible(page, 'case awaiting materials');

    // One deferred material comes in at this window, through the page's form …
    await page.fill(`#receive-${caseId}-M02 input[name=fileRef]`, 'DOC-M02');
    await page.click(`#receive-${caseId}-M02 button[type=submit]`);
    await page.waitForSelector(`#receive-${caseId}-M02`, { state: 'detached' });
    assert.equal(await page.locator('[data-case-state]').getAttribute('data-case-state'), 'awaiting_materials');
    // … the other is recorded elsewhere (another client of the API): the open page follows the
    // case live, through the subscription, to the approver's desk.
    await gqlAs(server.base, token, 'mutation($id: ID!) { submitMaterial(input: {caseId: $id, code: "M03", fileRef: "DOC-M03"}) { case { state } } }', { id: caseId });
    await page.waitForSelector('[data-case-state="under_review"]');
  });
});

test('the approver issues the licence and sees its number', async () => {
  assert.ok(caseId, 'the window opened a case');
  await as('staff:approver-01', async (page) => {
    assert.equal(await page.evaluate(() => document.getElementById('main').dataset.ready), '/approver');
    await accessible(page, 'approver');
    await shot(page, 'approver');
    await page.click(`[data-case="${caseId}"] button[data-act=issue]`);
    await page.waitForSelector('[data-licence-number]');
    const number = (await page.locator('[data-licence-number]').innerText()).trim();
    const token = await demoToken(server.base, { staff: 'approver-01' });
    const { case: c } = await gqlAs(server.base, token, 'query($id: ID!) { case(id: $id) { licenceNumber } }', { id: caseId });
    assert.ok(c.licenceNumber && number.includes(c.licenceNumber), `${number} is ${c.licenceNumber}`);
    await shot(page, 'approver-issued');
  });
});

test('the division admin assigns an inspector to a new task', async () => {
  await as('staff:divadmin-sp', async (page) => {
    await accessible(page, 'division');
    await shot(page, 'division');
    const form = page.locator('form[id^="assign-"]').first();
    const taskId = (await form.getAttribute('id')).replace('assign-', '');
    await form.locator('select[name=inspector]').selectOption('inspector-sp-1');
    await form.locator('button[type=submit]').click();
    const token = await demoToken(server.base, { staff: 'divadmin-sp' });
    const assigned = async () => (await gqlAs(server.base, token, 'query($id: ID!) { workflowInstance(id: $id) { state context } }', { id: taskId })).workflowInstance;
    for (let i = 0; i < 50 && (await assigned()).state === 'notified'; i++) await new Promise((r) => setTimeout(r, 100));
    const task = await assigned();
    assert.notEqual(task.state, 'notified', `the task moved on: ${JSON.stringify(task)}`);
    assert.ok(JSON.stringify(task.context).includes('inspector-sp-1'));
    await shot(page, 'division-assigned');
    assignedTask = taskId;
  });
});

test('the assigned inspector records a finding per condition and feeds the result back', async () => {
  assert.ok(assignedTask, 'a task was assigned');
  await as('staff:inspector-sp-1', async (page) => {
    const form = page.locator(`#inspect-${assignedTask}`);
    const conditions = await form.locator('fieldset.finding').count();
    assert.ok(conditions >= 1, 'a finding for every condition of the licence');
    for (const radio of await form.locator('input[type=radio][value=kept]').all()) await radio.check();
    await form.locator('textarea[name=evidence]').fill('现场照片 IMG-0101');
    await accessible(page, 'inspection record');
    await shot(page, 'inspector-record');
    await form.locator('button[type=submit]').click();
    await page.waitForSelector(`#feedback-${assignedTask}`);
    await page.click(`#feedback-${assignedTask} button[type=submit]`);
    const token = await demoToken(server.base, { staff: 'inspector-sp-1' });
    const state = async () => (await gqlAs(server.base, token, 'query($id: ID!) { workflowInstance(id: $id) { state context } }', { id: assignedTask })).workflowInstance;
    for (let i = 0; i < 50 && (await state()).state !== 'closed_kept'; i++) await new Promise((r) => setTimeout(r, 100));
    const task = await state();
    assert.equal(task.state, 'closed_kept');
    assert.equal(task.context.inspection.findings.length, conditions);
    // The case hears of it through its own event, a moment later: the commitment is kept.
    const parent = async () => (await gqlAs(server.base, token, 'query($id: ID!) { workflowInstance(id: $id) { parentId } }', { id: assignedTask })).workflowInstance.parentId;
    const caseOf = await parent();
    const window01 = await demoToken(server.base, { staff: 'window-01' });
    const caseState = async () => (await gqlAs(server.base, window01, 'query($id: ID!) { workflowInstance(id: $id) { state } }', { id: caseOf })).workflowInstance.state;
    for (let i = 0; i < 100 && (await caseState()) !== 'closed'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await caseState(), 'closed', 'the case is closed as kept');
  });
});

test("the supervisor's dashboard draws the API's figures", async () => {
  await as('staff:supervisor-01', async (page) => {
    await page.waitForSelector('[data-figures] [data-value]');
    await page.waitForFunction(() => document.querySelectorAll('figure[data-chart] canvas').length >= 5);
    await shot(page, 'supervisor');
    await accessible(page, 'supervisor');
    const from = await page.inputValue('input[name=from]');
    const to = await page.inputValue('input[name=to]');
    const cells = await page.$$eval('[data-value]', (els) => els.map((e) => [e.dataset.value, e.textContent.trim()]));
    assert.ok(cells.length >= 10, `figures shown: ${cells.length}`);
    const token = await demoToken(server.base, { staff: 'supervisor-01' });
    const paths = [...new Set(cells.map(([p]) => p).filter((p) => !p.includes('[')))];
    const selection = selectionOf(paths);
    const day = (d) => new Date(`${d}T00:00:00+08:00`).toISOString();
    const { statistics } = await gqlAs(server.base, token, `query($f: StatisticsFilter!) { statistics(filter: $f) { ${selection} } }`, { f: { from: day(from), to: day(to) } });
    for (const [p, text] of cells.filter(([p]) => !p.includes('['))) {
      const value = p.split('.').reduce((o, k) => (o == null ? o : o[k]), statistics);
      assert.equal(String(value ?? ''), text.replace(/[,%\s]/g, '') === '' && value == null ? '' : text.replace(/[,\s]/g, ''), `${p}`);
    }
    // The charts are drawn (a canvas with pixels), not only the tables.
    const drawn = await page.$$eval('figure[data-chart] canvas', (cs) => cs.filter((c) => c.width > 0 && c.toDataURL().length > 3000).length);
    assert.ok(drawn >= 5, `charts drawn: ${drawn}`);
  });
});

/** `fulfilment.fulfilled`, `returns.rate` → `fulfilment { fulfilled } returns { rate }`. */
function selectionOf(paths) {
  const tree = {};
  for (const p of paths) p.split('.').reduce((node, k) => (node[k] ||= {}), tree);
  const render = (node) => Object.entries(node).map(([k, v]) => (Object.keys(v).length ? `${k} { ${render(v)} }` : k)).join(' ');
  return render(tree);
}

test('the case page draws the definition with the current state', async () => {
  await as('staff:window-01', async (page) => {
    await visit(page, server.base, `/case/${caseId}`);
    await page.waitForSelector('svg g.state.current');
    const token = await demoToken(server.base, { staff: 'window-01' });
    const { workflowInstance } = await gqlAs(server.base, token, 'query($id: ID!) { workflowInstance(id: $id) { state } }', { id: caseId });
    assert.equal(await page.locator('svg g.state.current').getAttribute('data-state'), workflowInstance.state);
    assert.equal(await page.locator('[data-case-state]').first().getAttribute('data-case-state'), workflowInstance.state);
    assert.ok(await page.locator('svg g.state.visited').count() >= 1, 'the path taken is marked');
    await accessible(page, 'case page');
    await shot(page, 'case-licensed');
  });
});

test('an applicant of another enterprise sees nothing of the case', async () => {
  await as(`applicant:${OTHER_APPLICANT}`, async (page) => {
    await shot(page, 'applicant-own');
    await visit(page, server.base, `/case/${caseId}`);
    await page.waitForSelector('[data-not-found]');
    const text = await page.locator('main').innerText();
    assert.ok(!text.includes('上海示例餐饮管理有限公司') && !text.includes(APPLICANT) && !text.includes('310101-FOOD-01'), text);
    assert.equal(await page.locator('svg g.state').count(), 0);
    await shot(page, 'applicant-other-case');
    await visit(page, server.base, `/enterprise/${APPLICANT}`);
    await page.waitForSelector('[data-not-found]');
    assert.ok(!(await page.locator('main').innerText()).includes('上海示例餐饮管理有限公司'));
  });
  // The enterprise itself sees its case.
  await as(`applicant:${APPLICANT}`, async (page) => {
    await visit(page, server.base, `/case/${caseId}`);
    await page.waitForSelector('[data-case-state]');
    await visit(page, server.base, `/enterprise/${APPLICANT}`);
    await page.waitForSelector(`a[href="#/case/${caseId}"]`);
    await accessible(page, 'enterprise page');
    await shot(page, 'enterprise-own');
  });
});
