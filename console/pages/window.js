// The window officer's pages: the inbox (my department's limits by what falls due next, the
// overdue first), the search by code, name or licence number, and opening a case at the counter
// — the item, the applicant's credit shown before a mode is chosen, the mode, each material's
// status, the signed commitment letter rendered by the API for print — or returning it at intake.
import { route, printLetter, h, t, fill, field, select, gql, link, table, notify, describe, session, modeName, limitName, daysLeft, dateTime, stateTitle } from '../core.js';
import { returnForm } from '../acts.js';

const ROLES = ['window'];

route('/window', async (page) => {
  page.append(h('h1', {}, t('窗口收件箱', 'Window inbox')),
    h('p', {}, link('/window/open', t('＋ 受理新申请（告知承诺）', '+ Open a case (commitment)'))),
    searchForm());
  const { dueSoon, serverClock, workflowInstances } = await gql(`query Inbox {
    serverClock { now manual }
    dueSoon(workingDays: 60, first: 200) { instanceId definitionName state timer dueAt workingDaysLeft provisional }
    workflowInstances(first: 100) { nodes { id definitionName state createdAt context } }
  }`);
  const byId = new Map(workflowInstances.nodes.map((i) => [i.id, i]));
  const now = new Date(serverClock.now);
  // Overdue first, then by what falls due next; a case shows once, at its nearest limit.
  const seen = new Set();
  const due = dueSoon.filter((d) => !seen.has(d.instanceId) && seen.add(d.instanceId))
    .sort((a, b) => Number(new Date(b.dueAt) < now) - Number(new Date(a.dueAt) < now) || new Date(a.dueAt) - new Date(b.dueAt));
  const rows = [];
  for (const d of due) {
    const ctx = (byId.get(d.instanceId) || {}).context || {};
    rows.push([
      h('span', { class: new Date(d.dueAt) < now ? 'overdue' : '' }, dateTime(d.dueAt)),
      daysLeft(d.workingDaysLeft, d.provisional),
      limitName(d.timer),
      link(`/case/${d.instanceId}`, `${(ctx.applicant && ctx.applicant.name) || d.instanceId}`),
      (ctx.item && ctx.item.name) || d.definitionName,
      modeName(ctx.mode),
      await stateTitle(d.definitionName, d.state),
    ]);
  }
  page.append(h('section', { 'aria-labelledby': 'due-h' },
    h('h2', { id: 'due-h' }, t('待办时限（逾期优先，按到期先后）', 'Limits ahead (overdue first, soonest next)')),
    h('p', { class: 'hint' }, t(`系统时间：${dateTime(serverClock.now)}${serverClock.manual ? '（培训时钟）' : ''}；工作日按官方节假日安排计算。`, `Server time: ${dateTime(serverClock.now)}${serverClock.manual ? ' (training clock)' : ''}; working days follow the official holiday calendar.`)),
    table(null, [t('到期时间', 'Due'), t('剩余工作日', 'Working days left'), t('时限', 'Limit'), t('申请人', 'Applicant'), t('事项', 'Item'), t('方式', 'Mode'), t('状态', 'State')], rows, t('近期没有到期的时限。', 'Nothing falls due soon.'))));
  const recent = [];
  for (const i of workflowInstances.nodes.filter((x) => x.context && x.context.item)) {
    recent.push([dateTime(i.createdAt), link(`/case/${i.id}`, (i.context.applicant && i.context.applicant.name) || i.id), i.context.item.name, modeName(i.context.mode), await stateTitle(i.definitionName, i.state)]);
  }
  page.append(h('section', { 'aria-labelledby': 'recent-h' },
    h('h2', { id: 'recent-h' }, t('本部门最近的案件', 'Recent cases of my department')),
    table(null, [t('受理时间', 'Opened'), t('申请人', 'Applicant'), t('事项', 'Item'), t('方式', 'Mode'), t('状态', 'State')], recent)));
}, { title: () => t('窗口', 'Window'), roles: ROLES, nav: () => t('窗口收件箱', 'Inbox') });

const USCC = /^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/;

/** One box for a credit code, a name fragment or a licence number: each is asked of the API. */
function searchForm() {
  const q = h('input', { type: 'search', name: 'q', required: true, autocomplete: 'off' });
  const results = h('div', { 'aria-live': 'polite' });
  const form = h('form', { id: 'case-search', role: 'search' },
    field(t('查找案件', 'Find cases'), q, t('统一社会信用代码、企业名称片段或许可证编号', 'Credit code, part of the name, or licence number')),
    h('button', { type: 'submit' }, t('查找', 'Search')), results);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = q.value.trim();
    const filters = [{ applicantName: text }, { licenceNumber: text }];
    if (USCC.test(text.toUpperCase())) filters.push({ applicantUscc: text.toUpperCase() });
    try {
      const found = new Map();
      for (const filter of filters) {
        const { workflowInstances } = await gql(`query($f: WorkflowInstanceFilter) { workflowInstances(filter: $f, first: 50) { nodes { id definitionName state createdAt context } } }`, { f: filter });
        for (const i of workflowInstances.nodes) found.set(i.id, i);
      }
      const rows = [];
      for (const i of found.values()) {
        const ctx = i.context || {};
        rows.push([link(`/case/${i.id}`, (ctx.applicant && ctx.applicant.name) || i.id), (ctx.applicant && ctx.applicant.uscc) || '—', (ctx.item && ctx.item.name) || i.definitionName, ctx.licence_number || '—', await stateTitle(i.definitionName, i.state), dateTime(i.createdAt)]);
      }
      fill(results, h('div', { id: 'search-results' }, table(t(`“${text}”的查找结果：${rows.length} 件`, `Results for “${text}”: ${rows.length}`),
        [t('申请人', 'Applicant'), t('信用代码', 'Credit code'), t('事项', 'Item'), t('许可证编号', 'Licence'), t('状态', 'State'), t('受理时间', 'Opened')], rows, t('没有找到。', 'Nothing found.'))));
    } catch (err) {
      notify(describe(err), 'error');
    }
  });
  return form;
}

// ---- opening a case ------------------------------------------------------------------------------
route('/window/open', async (page) => {
  page.append(h('h1', {}, t('受理申请（告知承诺制）', 'Open a case on commitment')));
  const { approvalItems } = await gql(`{ approvalItems(first: 100) { nodes { code version name department excluded } } }`);
  const own = approvalItems.nodes.filter((i) => !i.excluded && i.department === session.viewer.department);
  const items = own.length ? own : approvalItems.nodes.filter((i) => !i.excluded);
  const itemSelect = select('item', [['', t('— 请选择 —', '— choose —')], ...items.map((i) => [i.code, `${i.name}（${i.code}）`])], '');
  itemSelect.required = true;
  const uscc = h('input', { type: 'text', name: 'uscc', required: true, maxlength: 18, autocomplete: 'off', pattern: '[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{18}' });
  const applicantBox = h('div', { class: 'applicant', 'aria-live': 'polite' });
  const mode = h('select', { name: 'mode', required: true, disabled: true }, h('option', { value: '' }, t('— 先选事项并核验申请人信用 —', '— choose the item and check the applicant first —')));
  const deferral = h('input', { type: 'number', name: 'deferralWorkingDays', min: 1 });
  const deferralField = field(t('容缺后补期限（工作日）', 'Deferral period (working days)'), deferral);
  deferralField.hidden = true;
  const materialsBox = h('fieldset', {}, h('legend', {}, t('申请材料', 'Materials')), h('p', { class: 'empty' }, t('选择事项后列出。', 'Listed once the item is chosen.')));
  const signedBy = h('input', { type: 'text', name: 'signedBy', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('签署承诺并受理', 'Sign the commitment and open the case'));
  const result = h('div', { id: 'opened', 'aria-live': 'polite' });
  let item = null;
  let applicant = null;

  const modes = () => {
    const m = item ? item.spec.modes : {};
    const options = [];
    if (m.deferralMaxWorkingDays != null) options.push('DEFERRAL');
    if (m.verification) options.push('VERIFICATION');
    if (m.afterTheFact) options.push('AFTER_THE_FACT');
    options.push('ORDINARY');
    fill(mode, h('option', { value: '' }, t('— 请选择 —', '— choose —')), options.map((x) => h('option', { value: x }, modeName(x))));
    // The credit tier comes first: a mode is chosen once the applicant's standing is on screen.
    mode.disabled = !(item && applicant);
  };
  itemSelect.addEventListener('change', async () => {
    item = null;
    if (itemSelect.value) {
      try {
        item = (await gql(`query($code: String!) { approvalItem(code: $code) { code version name spec { conditions modes { deferralMaxWorkingDays deferralLicenceFirst verification afterTheFact } materials { code name deferrable licenceKind } } } }`, { code: itemSelect.value })).approvalItem;
      } catch (err) { notify(describe(err), 'error'); }
    }
    deferral.value = item && item.spec.modes.deferralMaxWorkingDays ? item.spec.modes.deferralMaxWorkingDays : '';
    fill(materialsBox, h('legend', {}, t('申请材料', 'Materials')), item ? item.spec.materials.map(materialRow) : null);
    modes();
  });
  const checkApplicant = async () => {
    applicant = null;
    const code = uscc.value.trim().toUpperCase();
    if (!code) { fill(applicantBox); modes(); return; }
    try {
      applicant = (await gql(`query($uscc: String!) { applicant(uscc: $uscc) { uscc name legalRepresentative creditTier dishonest } }`, { uscc: code })).applicant;
      fill(applicantBox, applicant
        ? h('p', { class: `credit${applicant.dishonest ? ' overdue' : ''}` }, `${applicant.name} · ${t('法定代表人', 'legal representative')} ${applicant.legalRepresentative} · ${t('信用等级', 'credit tier')} `,
          h('strong', { 'data-credit-tier': applicant.creditTier }, `${applicant.creditTier}${applicant.dishonest ? t('（失信联合惩戒对象）', ' (on the dishonesty list)') : ''}`))
        : h('p', { class: 'notice error' }, t('没有此统一社会信用代码的企业。', 'No enterprise with this credit code is on file.')));
      if (applicant && !signedBy.value) signedBy.value = applicant.legalRepresentative;
    } catch (err) {
      fill(applicantBox, h('p', { class: 'notice error', role: 'alert' }, describe(err)));
    }
    modes();
  };
  uscc.addEventListener('change', checkApplicant);
  mode.addEventListener('change', () => { deferralField.hidden = mode.value !== 'DEFERRAL'; });

  const form = h('form', { id: 'open-case' },
    field(t('审批事项', 'Approval item'), itemSelect),
    field(t('申请人统一社会信用代码', 'Applicant\'s unified social credit code'), uscc, t('输入后按 Tab 键核验信用', 'Press Tab to check the credit standing')),
    applicantBox,
    field(t('承诺方式', 'Commitment mode'), mode, t('由系统按事项和申请人信用校验', 'Checked by the API against the item and the credit standing')),
    deferralField,
    materialsBox,
    field(t('承诺人（签署人）', 'Signed by'), signedBy),
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const materials = item ? item.spec.materials.map((m) => {
      const status = form.elements[`material-${m.code}`].value;
      const ref = form.elements[`file-${m.code}`].value.trim();
      return { code: m.code, status, fileRef: status === 'PROVIDED' ? ref || null : null, licenceNumber: status === 'TO_VERIFY' ? ref || null : null };
    }) : [];
    submit.disabled = true;
    try {
      const input = { applicantUscc: uscc.value.trim().toUpperCase(), itemCode: itemSelect.value, mode: mode.value, materials, signedBy: signedBy.value.trim(),
        deferralWorkingDays: mode.value === 'DEFERRAL' && deferral.value ? Number(deferral.value) : null };
      const { openCase } = await gql(`mutation($input: OpenCaseInput!) { openCase(input: $input) { case { id state commitmentText instance { deadlines { name at provisional workingDaysLeft } } } } }`, { input });
      const c = openCase.case;
      form.hidden = true;
      fill(result,
        h('p', { class: 'notice ok', role: 'status' }, t('已受理。请申请人核对并签署以下承诺书。', 'Opened. The applicant checks and signs the letter below.'), ' ', link(`/case/${c.id}`, t('查看案件', 'Open the case'))),
        c.instance.deadlines.map((d) => h('p', { 'data-deadline': d.name }, limitName(d.name), '：', dateTime(d.at), ' · ', daysLeft(d.workingDaysLeft, d.provisional))),
        h('div', { class: 'letter' }, c.commitmentText || ''),
        h('p', { class: 'no-print' }, h('button', { type: 'button', onclick: printLetter }, t('打印承诺书', 'Print the letter')), ' ', link('/window/open', t('继续受理', 'Open another'))));
      notify(t('已受理', 'Opened'), 'ok');
    } catch (err) {
      notify(describe(err), 'error');
    } finally {
      submit.disabled = false;
    }
  });
  page.append(form, result,
    h('section', { 'aria-labelledby': 'intake-return-h', class: 'no-print' },
      h('h2', { id: 'intake-return-h' }, t('不予受理，退件', 'Return at intake')),
      h('p', { class: 'hint' }, t('按上面所选事项和申请人登记退件及其原因类别。', 'Recorded for the item and applicant chosen above, with its reason category.')),
      returnForm({ itemCode: () => itemSelect.value, applicantUscc: () => uscc.value.trim().toUpperCase() || null, done: () => notify(t('已登记退件', 'Return recorded'), 'ok') })));
}, { title: () => t('受理申请', 'Open a case'), roles: ROLES });

/** A material's status at the counter, with its file reference (or the licence to verify). */
function materialRow(m) {
  const options = [['PROVIDED', t('已提交', 'Provided')]];
  if (m.deferrable) options.push(['DEFERRED', t('容缺后补', 'Deferred')]);
  if (m.licenceKind) options.push(['TO_VERIFY', t('电子证照核验', 'Verify the e-licence')]);
  options.push(['MISSING', t('缺失', 'Missing')]);
  const status = select(`material-${m.code}`, options, 'PROVIDED');
  const ref = h('input', { type: 'text', name: `file-${m.code}`, autocomplete: 'off' });
  return h('div', { class: 'row material' },
    field(`${m.name}（${m.code}）`, status),
    field(m.licenceKind ? t('文件编号或证照号', 'File or licence number') : t('文件编号', 'File reference'), ref));
}
