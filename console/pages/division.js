// The supervising division's page. A division admin: the new supervision tasks with their limits
// (look at within 3 working days, feed back within 5), each with a form to assign an inspector;
// the other tasks by state; the division's breaches of the limits. An inspector: the tasks
// assigned to them, with the act their state calls for (record the inspection, feed the result
// back, record the re-inspection after rectification). The API decides what is allowed.
import { route, h, t, gql, fill, field, select, table, link, notify, describe, session, hasRole, dateTime, subscribeWhileShown, serverNow, officeDate, word, BREACH_LIMITS, limitName } from '../core.js';

const TASKS = `query Tasks {
  workflowInstances(filter: {definition: "supervision-task"}, first: 200) { totalCount nodes {
    id state version parentId context createdAt updatedAt
    deadlines { name at provisional }
    timers { name event state dueAt status provisional } } }
  workflowDefinition(name: "supervision-task") { states { name title isFinal } } }`;
const INSPECTORS = `query Inspectors($division: String) { staff(division: $division, role: "inspector") { id name division active } }`;
const BREACHES = `query Breaches { slaBreaches(first: 100) { id taskId limit division breachedAt } }`;
const CASE_ITEM = `query CaseItem($id: ID!) { case(id: $id) { id itemCode itemVersion } }`;
const ITEM = `query Item($code: String!, $version: Int) { approvalItem(code: $code, version: $version) { code version name spec { conditions } } }`;
const ASSIGN = `mutation Assign($input: AssignInspectorsInput!) { assignInspectors(input: $input) { task { id state } } }`;
const RECORD = `mutation Record($input: RecordInspectionInput!) { recordInspection(input: $input) { task { id state } } }`;
const FEEDBACK = `mutation Feedback($input: FeedBackInspectionInput!) { feedBackInspection(input: $input) { task { id state } } }`;
const REINSPECT = `mutation Reinspect($input: RecordInspectionInput!) { recordReinspection(input: $input) { task { id state } } }`;
const NEW_TASKS = `subscription NewTasks { newTasks { id } }`;
const DUE_SOON = `query DueSoon { dueSoon(workingDays: 1, first: 200) { instanceId timer dueAt } }`;



/** What a task's context says about it: its case, applicant, item, inspectors and results. */
function about(task) {
  const c = task.context || {};
  const parent = c.parent || {};
  const pc = parent.context || {};
  return {
    caseId: task.parentId || parent.id || null,
    applicant: pc.applicant || {},
    item: pc.item || {},
    inspectors: Array.isArray(c.inspectors) ? c.inspectors : [],
    inspection: c.inspection || null,
    reinspection: c.reinspection || null,
    order: c.rectification_order || null,
    drawn: !!c.draw,
  };
}

/**
 * The task's limits in its current state (its timers armed on entry, and its deadlines), each
 * with its date and where it stands: reached (the timer fired), due by the end of the next working
 * day (as 'dueSoon' says), or later. Provisional dates (counted before the year's holiday notice)
 * are marked so in words.
 */
function limits(task, soon) {
  const entries = task.timers
    .filter((x) => x.state === task.state && x.name !== 'notice')
    .map((x) => ({ name: x.name, at: x.dueAt, provisional: x.provisional, status: x.status }));
  for (const d of task.deadlines) {
    const same = entries.find((e) => new Date(e.at).getTime() === new Date(d.at).getTime());
    if (same) same.provisional = same.provisional || d.provisional;
    else entries.push({ name: d.name, at: d.at, provisional: d.provisional, status: 'deadline' });
  }
  if (!entries.length) return '—';
  entries.sort((a, b) => a.at.localeCompare(b.at));
  return h('ul', { class: 'plain limits' }, entries.map((e) => {
    let standing;
    if (e.status === 'fired') standing = h('span', { class: 'badge overdue' }, /limit/.test(e.name) ? t('已超期', 'Overdue') : t('已提醒', 'Reminded'));
    else if (e.status === 'cancelled') standing = h('span', { class: 'badge' }, t('已取消', 'Cancelled'));
    else if (soon.has(`${task.id}/${e.name}`)) standing = h('span', { class: 'badge soon' }, t('即将到期', 'Due soon'));
    else standing = h('span', { class: 'badge' }, t('未到期', 'Upcoming'));
    return h('li', { 'data-timer': e.name, 'data-due': e.at },
      h('span', { class: 'limit-name' }, limitName(e.name)), ' ',
      h('time', { datetime: e.at }, dateTime(e.at)), ' ', standing,
      e.provisional ? h('span', { class: 'provisional' }, t('（暂定：节假日安排未公布）', ' (provisional: holidays not yet published)')) : null);
  }));
}

function enterpriseCell(a) {
  const name = a.applicant.name || '—';
  return h('span', {}, a.applicant.uscc ? link(`/enterprise/${a.applicant.uscc}`, name) : name,
    a.item.name ? h('br') : null, a.item.name ? h('small', { class: 'hint' }, `${a.item.name}${a.item.code ? `（${a.item.code}）` : ''}`) : null);
}
const caseCell = (a) => (a.caseId ? link(`/case/${a.caseId}`, a.caseId) : '—');

/** Findings recorded on a visit, each condition with kept / not kept in words. */
function findingsView(visit) {
  if (!visit) return null;
  const findings = Array.isArray(visit.findings) ? visit.findings : [];
  return h('div', { class: 'visit' },
    h('p', {}, `${t('核查日期', 'Inspected on')}：${visit.inspected_on || '—'}${visit.inspected_by ? ` · ${visit.inspected_by}` : ''} · ${t('结论', 'Result')}：`,
      visit.result === 'kept' ? h('strong', { class: 'kept' }, t('符合承诺', 'Kept')) : visit.result === 'not_kept' ? h('strong', { class: 'not-kept' }, t('不符合承诺', 'Not kept')) : (visit.result || '—')),
    h('ul', { class: 'plain' }, findings.map((f) => h('li', {},
      h('span', { class: f.kept ? 'kept' : 'not-kept' }, f.kept ? t('✓ 符合', '✓ kept') : t('✗ 不符合', '✗ not kept')), ` ${f.condition}`, f.note ? `（${f.note}）` : ''))),
    Array.isArray(visit.evidence) && visit.evidence.length ? h('p', { class: 'hint' }, `${t('证据', 'Evidence')}：${visit.evidence.join('；')}`) : null,
    visit.note ? h('p', { class: 'hint' }, `${t('备注', 'Note')}：${visit.note}`) : null);
}

/** The licence conditions of the task's case: from its item at the case's version, else as the task holds them. */
async function conditionsOf(task, a) {
  try {
    if (a.caseId) {
      const { case: c } = await gql(CASE_ITEM, { id: a.caseId });
      if (c) {
        const { approvalItem } = await gql(ITEM, { code: c.itemCode, version: c.itemVersion });
        if (approvalItem && approvalItem.spec.conditions.length) return approvalItem.spec.conditions;
      }
    }
  } catch { /* the task's own copy below */ }
  return Array.isArray(a.item.conditions) ? a.item.conditions : [];
}

/** Runs an act, says how it went, and shows the page afresh. */
async function act(button, run, done, redraw) {
  button.disabled = true;
  try {
    await run();
    await redraw();
    notify(done, 'ok');
  } catch (e) {
    notify(describe(e), 'error');
    button.disabled = false;
  }
}

function assignForm(task, inspectors, redraw) {
  const chooser = select('inspector', inspectors.map((s) => [s.id, `${s.name}（${s.id}）`]));
  chooser.required = true;
  const button = h('button', { type: 'submit', class: 'primary' }, t('指派', 'Assign'));
  const form = h('form', { id: `assign-${task.id}`, class: 'row compact' },
    field(t('检查员', 'Inspector'), chooser), button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(button, () => gql(ASSIGN, { input: { taskId: task.id, inspectors: [chooser.value] } }),
      t(`任务 ${task.id} 已指派给 ${chooser.value}`, `Task ${task.id} assigned to ${chooser.value}`), redraw);
  });
  return form;
}

/** The record of a visit: the date, a finding per condition, evidence and a note. */
function inspectionForm(task, conditions, today, mutation, kind, redraw) {
  const prefix = `${kind}-${task.id}`;
  const date = h('input', { type: 'date', name: 'inspectedOn', value: today, required: true });
  const rows = conditions.map((condition, i) => {
    const yes = h('input', { type: 'radio', name: `kept-${i}`, value: 'kept', id: `${prefix}-c${i}-yes`, required: true });
    const no = h('input', { type: 'radio', name: `kept-${i}`, value: 'not_kept', id: `${prefix}-c${i}-no` });
    const note = h('input', { name: `note-${i}`, autocomplete: 'off' });
    return { condition, yes, no, note, el: h('fieldset', { class: 'finding' },
      h('legend', {}, `${i + 1}. ${condition}`),
      h('div', { class: 'row compact' },
        h('label', { for: yes.id, class: 'check' }, yes, ' ', t('符合', 'Kept')),
        h('label', { for: no.id, class: 'check' }, no, ' ', t('不符合', 'Not kept')),
        field(t('情况说明（不符合时必填）', 'What was found (required when not kept)'), note))) };
  });
  const evidence = h('textarea', { name: 'evidence', rows: 2 });
  const note = h('textarea', { name: 'note', rows: 2 });
  const button = h('button', { type: 'submit', class: 'primary' }, kind === 'reinspect' ? t('提交复查结果', 'Record the re-inspection') : t('提交核查记录', 'Record the inspection'));
  const form = h('form', { id: prefix, class: 'panel' },
    h('h4', {}, kind === 'reinspect' ? t('整改后复查', 'Re-inspection after rectification') : t('现场核查记录', 'Inspection record')),
    field(t('核查日期', 'Inspected on'), date),
    conditions.length ? rows.map((r) => r.el) : h('p', { class: 'notice' }, t('未能读取该许可的承诺条件。', 'The conditions of this licence could not be read.')),
    field(t('证据材料（每行一项，如照片、笔录编号）', 'Evidence (one reference a line: photographs, records)'), evidence),
    field(t('备注', 'Note'), note),
    button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = {
      taskId: task.id,
      inspectedOn: date.value,
      findings: rows.map((r) => ({ condition: r.condition, kept: r.yes.checked, note: r.note.value.trim() || null })),
      evidence: evidence.value.split('\n').map((x) => x.trim()).filter(Boolean),
      note: note.value.trim() || null,
    };
    act(button, () => gql(mutation, { input }), t(`任务 ${task.id} 的核查记录已提交`, `The inspection of task ${task.id} is recorded`), redraw);
  });
  return form;
}

function feedbackForm(task, a, redraw) {
  const order = h('textarea', { name: 'rectificationOrder', rows: 3 });
  const button = h('button', { type: 'submit', class: 'primary' }, t('反馈核查结果', 'Feed the result back'));
  const notKept = a.inspection && a.inspection.result === 'not_kept';
  const form = h('form', { id: `feedback-${task.id}`, class: 'panel' },
    h('h4', {}, t('反馈核查结果', 'Feed the result back')),
    notKept
      ? field(t('整改要求', 'Rectification order'), order, t('核查发现不符合承诺：写明需整改的内容，整改期限按事项规定计算。', 'A condition was not kept: say what must be put right; the period is the item’s.'))
      : h('p', {}, t('核查结论为符合承诺，反馈后任务办结。', 'Every condition was kept: feeding back closes the task.')),
    button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(button, () => gql(FEEDBACK, { input: { taskId: task.id, rectificationOrder: notKept ? order.value.trim() || null : null } }),
      t(`任务 ${task.id} 的结果已反馈`, `The result of task ${task.id} is fed back`), redraw);
  });
  return form;
}

async function drawPage(page) {
  const v = session.viewer;
  const isAdmin = hasRole('division_admin');
  const isInspector = hasRole('inspector');
  const [{ workflowInstances, workflowDefinition }, clock, dueSoon, inspectors, breaches] = await Promise.all([
    gql(TASKS),
    serverNow().catch(() => ({ now: null, exact: false })),
    gql(DUE_SOON).then((d) => d.dueSoon, () => []),
    isAdmin ? gql(INSPECTORS, { division: v.division }).then((d) => d.staff.filter((s) => s.active), (e) => e) : Promise.resolve([]),
    isAdmin ? gql(BREACHES).then((d) => d.slaBreaches, (e) => e) : Promise.resolve([]),
  ]);
  const now = clock.now;
  const today = now ? officeDate(now) : '';
  const soon = new Set(dueSoon.map((d) => `${d.instanceId}/${d.timer}`));
  const states = (workflowDefinition && workflowDefinition.states) || [];
  const stateTitle = (s) => { const x = states.find((y) => y.name === s); return x && x.title ? `${x.title}（${s}）` : s; };
  const tasks = workflowInstances.nodes;
  const redraw = () => drawPage(page);

  const sections = [
    h('h1', {}, t('监管任务', 'Supervision tasks')),
    h('p', { class: 'hint' }, `${v.name || v.subject} · ${t('处室', 'division')} ${v.division || '—'}`,
      clock.exact ? ` · ${t('服务器时间', 'server time')} ${dateTime(now)}` : null),
  ];

  if (isAdmin) {
    const fresh = tasks.filter((x) => x.state === 'notified');
    sections.push(h('section', { id: 'new-tasks', 'aria-labelledby': 'div-new' },
      h('h2', { id: 'div-new' }, `${t('新任务：待查看并指派检查员', 'New tasks: look at and assign')}（${fresh.length}）`),
      inspectors instanceof Error ? h('p', { class: 'notice error', role: 'alert' }, `${t('无法读取本处室检查员：', 'The inspectors could not be read: ')}${describe(inspectors)}`) : null,
      table(null, [t('任务', 'Task'), t('企业与事项', 'Enterprise and item'), t('办件', 'Case'), t('时限', 'Limits'), t('指派检查员', 'Assign an inspector')],
        fresh.map((task) => {
          const a = about(task);
          return [h('span', {}, task.id, h('br'), h('small', { class: 'hint' }, `${t('推送于', 'Notified')} ${dateTime(task.createdAt)}`)),
            enterpriseCell(a), caseCell(a), limits(task, soon), assignForm(task, inspectors instanceof Error ? [] : inspectors, redraw)];
        }), t('没有待查看的新任务。', 'No new tasks.'))));

    const others = tasks.filter((x) => x.state !== 'notified');
    const order = states.map((s) => s.name);
    // Open states first, then the final ones, each in the definition's order.
    const rank = (x) => { const st = states.find((y) => y.name === x); return (st && st.isFinal ? 1000 : 0) + order.indexOf(x); };
    const groups = [...new Set(others.map((x) => x.state))].sort((p, q) => rank(p) - rank(q));
    sections.push(h('section', { id: 'other-tasks', 'aria-labelledby': 'div-others' },
      h('h2', { id: 'div-others' }, `${t('其他任务（按状态）', 'Other tasks by state')}（${others.length}）`),
      groups.length ? groups.map((state) => {
        const list = others.filter((x) => x.state === state);
        return h('div', { class: 'state-group', 'data-state': state },
          h('h3', {}, `${stateTitle(state)}（${list.length}）`),
          table(null, [t('任务', 'Task'), t('企业与事项', 'Enterprise and item'), t('办件', 'Case'), t('检查员', 'Inspectors'), t('时限', 'Limits'), t('更新时间', 'Updated')],
            list.map((task) => {
              const a = about(task);
              return [task.id, enterpriseCell(a), caseCell(a), a.inspectors.join('、') || '—', limits(task, soon), dateTime(task.updatedAt)];
            })),
          // The division admin may feed a recorded inspection back too.
          state === 'awaiting_feedback' ? list.map((task) => h('div', { class: 'task-act' }, h('p', {}, `${t('任务', 'Task')} ${task.id}`), findingsView(about(task).inspection), feedbackForm(task, about(task), redraw))) : null);
      }) : h('p', { class: 'empty' }, t('无', 'None'))));

    sections.push(h('section', { id: 'division-breaches', 'aria-labelledby': 'div-breaches' },
      h('h2', { id: 'div-breaches' }, t('本处室监管时限违约', 'Breaches of the limits in this division')),
      breaches instanceof Error ? h('p', { class: 'notice error', role: 'alert' }, describe(breaches))
        : table(null, [t('时限', 'Limit'), t('任务', 'Task'), t('办件', 'Case'), t('违约时间', 'Breached at')],
          breaches.map((b) => {
            const task = tasks.find((x) => x.id === b.taskId);
            return [word(BREACH_LIMITS, b.limit), b.taskId, task ? caseCell(about(task)) : '—', dateTime(b.breachedAt)];
          }), t('没有违约记录。', 'No breaches.'))));
  }

  if (isInspector) {
    const mine = tasks.filter((x) => about(x).inspectors.includes(v.subject));
    const finals = new Set(states.filter((s) => s.isFinal).map((s) => s.name));
    const open = mine.filter((x) => !finals.has(x.state));
    const closed = mine.filter((x) => finals.has(x.state));
    const cards = await Promise.all(open.map(async (task) => {
      const a = about(task);
      let action = null;
      if (task.state === 'inspecting') action = inspectionForm(task, await conditionsOf(task, a), today, RECORD, 'inspect', redraw);
      else if (task.state === 'awaiting_feedback') action = feedbackForm(task, a, redraw);
      else if (task.state === 'rectifying') action = inspectionForm(task, await conditionsOf(task, a), today, REINSPECT, 'reinspect', redraw);
      return h('article', { class: 'task card', 'data-task': task.id, 'data-state': task.state },
        h('h3', {}, `${t('任务', 'Task')} ${task.id} · ${a.applicant.name || ''}`),
        h('dl', { class: 'facts' },
          h('dt', {}, t('状态', 'State')), h('dd', {}, stateTitle(task.state)),
          h('dt', {}, t('企业与事项', 'Enterprise and item')), h('dd', {}, enterpriseCell(a)),
          h('dt', {}, t('办件', 'Case')), h('dd', {}, caseCell(a)),
          h('dt', {}, t('检查员', 'Inspectors')), h('dd', {}, a.inspectors.join('、') || '—'),
          h('dt', {}, t('时限', 'Limits')), h('dd', {}, limits(task, soon)),
          a.order ? [h('dt', {}, t('整改要求', 'Rectification order')), h('dd', {}, a.order)] : null),
        a.inspection ? [h('h4', {}, t('核查记录', 'Inspection')), findingsView(a.inspection)] : null,
        action);
    }));
    sections.push(h('section', { id: 'my-tasks', 'aria-labelledby': 'div-mine' },
      h('h2', { id: 'div-mine' }, `${t('指派给我的任务', 'Tasks assigned to me')}（${open.length}）`),
      cards.length ? cards : h('p', { class: 'empty' }, t('没有待办的任务。', 'No open tasks.'))));
    sections.push(h('section', { id: 'my-closed', 'aria-labelledby': 'div-closed' },
      h('h2', { id: 'div-closed' }, t('已办结', 'Closed')),
      table(null, [t('任务', 'Task'), t('企业与事项', 'Enterprise and item'), t('办件', 'Case'), t('结果', 'Outcome'), t('更新时间', 'Updated')],
        closed.map((task) => { const a = about(task); return [task.id, enterpriseCell(a), caseCell(a), stateTitle(task.state), dateTime(task.updatedAt)]; }),
        t('无', 'None'))));
  }

  fill(page, sections);
}

route('/division', async (page) => {
  await drawPage(page);
  // A task created for the division while the page is open is shown at once.
  if (hasRole('division_admin') && page.isConnected) {
    subscribeWhileShown(NEW_TASKS, {}, (data) => {
      if (!page.isConnected) return;
      drawPage(page).then(() => notify(t(`新的监管任务：${data.newTasks.id}`, `New supervision task: ${data.newTasks.id}`), 'info'), (e) => notify(describe(e), 'error'));
    });
  }
}, { title: () => t('监管', 'Supervision'), roles: ['division_admin', 'inspector'], nav: () => t('监管', 'Supervision') });
