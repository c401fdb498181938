// The case page, for everyone who may see the case: its state on the definition's diagram with
// the path taken, the limits ahead, the materials, the commitment letter, the licence, the
// supervision task, the audit timeline with its actors, and the acts the viewer's role may take.
// It follows the case live through the `caseEvents` subscription. A case outside the viewer's
// scope is not found, exactly as the API says.
import { route, printLetter, h, t, fill, gql, link, table, notify, describe, session, modeName, roleName, limitName, daysLeft, dateTime, date, subscribeWhileShown, stateTitle } from '../core.js';
import { diagram } from '../diagram.js';
import { issueLicence, refuseForm, decideRevocationForm, receiveMaterialForm, returnForm, stateCaseForm, withdrawForm, acceptanceForm, receiveCorrectionForm, suspendForm, resumeForm, extendForm } from '../acts.js';

const INSTANCE = `id definitionName definitionVersion state version createdAt updatedAt parentId context
  deadlines { name at provisional workingDaysLeft }
  timers { name event state dueAt status provisional }
  history { seq event fromState toState actor payload occurredAt }`;

const CASE = `query Case($id: ID!) {
  case(id: $id) {
    id state itemCode itemVersion mode applicantUscc licenceNumber commitmentText commitmentVersion signedBy
    materials { code name status fileRef receivedBy verification }
    notices { topic subject text sentAt }
    inspectionOutcomes { state result inspectedOn conditionsNotKept rectificationOrder rectificationDue decidedAt }
    instance { ${INSTANCE} }
  }
  children: workflowInstances(filter: { parentId: $id }, first: 20) { nodes { id definitionName state createdAt } }
}`;

const OTHER = `query Instance($id: ID!) { workflowInstance(id: $id) { ${INSTANCE} } }`;

route('/case/:id', async (page, { id }) => {
  if (!(await render(page, id))) return;
  // Live: every new audit event of this instance redraws the page with the API's state.
  subscribeWhileShown(`subscription($id: ID!) { caseEvents(instanceId: $id) { seq event toState } }`, { id }, async (data) => {
    await render(page, id);
    notify(t(`案件已更新：${data.caseEvents.event} → ${await stateTitle(currentDefinition, data.caseEvents.toState)}`, `The case moved: ${data.caseEvents.event} → ${data.caseEvents.toState}`));
  });
}, { title: () => t('案件', 'Case') });

let currentDefinition = null;

async function render(page, id) {
  const data = await gql(CASE, { id });
  let c = data.case;
  let instance = c ? c.instance : null;
  if (!c) instance = (await gql(OTHER, { id })).workflowInstance;
  if (!instance) {
    fill(page, h('h1', {}, t('案件', 'Case')), h('p', { 'data-not-found': '' }, t('未找到该案件，或您无权查看。', 'No such case, or it is not yours to see.')));
    return false;
  }
  currentDefinition = instance.definitionName;
  const definition = (await gql(`query($name: String!, $version: Int) { workflowDefinition(name: $name, version: $version) {
      name version title initialState states { name title isFinal } transitions { from on to roles } } }`,
  { name: instance.definitionName, version: instance.definitionVersion })).workflowDefinition;
  const title = (name) => (definition.states.find((s) => s.name === name) || {}).title || name;
  const ctx = instance.context || {};
  const heading = c
    ? `${(ctx.item && ctx.item.name) || c.itemCode} · ${(ctx.applicant && ctx.applicant.name) || c.applicantUscc}`
    : `${definition.title || definition.name}`;

  fill(page,
    h('h1', {}, heading),
    h('p', { class: 'state-line' }, t('当前状态：', 'State: '),
      h('strong', { 'data-case-state': instance.state }, title(instance.state)),
      h('span', { class: 'muted' }, ` · ${definition.title || definition.name} v${instance.definitionVersion} · ${t('编号', 'ID')} ${instance.id}`)),
    c ? summary(c, ctx) : instanceSummary(instance),
    section('limits', t('时限与计时器', 'Limits and timers'), limits(instance)),
    section('diagram', t('流程图', 'Workflow diagram'),
      h('p', { class: 'legend' },
        h('span', { class: 'key current' }, t('当前状态', 'current')),
        h('span', { class: 'key visited' }, t('已经过', 'passed')),
        h('span', { class: 'key' }, t('未经过', 'not reached')),
        t('；虚线框为终结状态，蓝色箭头为已走过的流转。', '; dashed boxes end the case, blue arrows are the transitions taken.')),
      h('div', { class: 'diagram', tabindex: 0, role: 'group', 'aria-label': t('流程图（可横向滚动）', 'Workflow diagram (scrolls sideways)') }, diagram(definition, instance.state, instance.history))),
    c ? materials(c) : null,
    c && c.commitmentText ? section('commitment', t('告知承诺书', 'Commitment letter'),
      h('div', { class: 'letter' }, c.commitmentText),
      h('button', { type: 'button', class: 'no-print', onclick: printLetter }, t('打印承诺书', 'Print the letter'))) : null,
    c ? supervision(c, await titled(data.children.nodes)) : null,
    c && c.notices.length ? section('notices', t('已发送的告知', 'Notices sent'), table(null,
      [t('发送时间', 'Sent'), t('主题', 'Subject'), t('内容', 'Text')],
      c.notices.map((n) => [dateTime(n.sentAt), n.subject, h('div', { class: 'pre' }, n.text)]))) : null,
    acts(c, instance, definition, () => render(page, id)),
    section('timeline', t('审计时间线', 'Audit timeline'), timeline(instance.history, title)));
  return true;
}

async function titled(instances) {
  return Promise.all(instances.map(async (x) => ({ ...x, title: await stateTitle(x.definitionName, x.state) })));
}

function section(id, heading, ...body) {
  return h('section', { 'aria-labelledby': `${id}-h`, id }, h('h2', { id: `${id}-h` }, heading), body);
}

function summary(c, ctx) {
  const credit = ctx.credit || {};
  return h('dl', { class: 'facts' },
    fact(t('申请人', 'Applicant'), link(`/enterprise/${c.applicantUscc}`, `${(ctx.applicant && ctx.applicant.name) || ''}（${c.applicantUscc}）`)),
    fact(t('信用等级', 'Credit tier'), `${credit.tier || '—'}${credit.dishonest ? t('（失信）', ' (dishonest)') : ''}`),
    fact(t('事项', 'Item'), `${(ctx.item && ctx.item.name) || ''}（${c.itemCode} v${c.itemVersion}）`),
    fact(t('审批部门', 'Department'), (ctx.department && ctx.department.name) || '—'),
    fact(t('承诺方式', 'Mode'), modeName(c.mode)),
    fact(t('签署人', 'Signed by'), c.signedBy || '—'),
    fact(t('许可证编号', 'Licence number'), c.licenceNumber ? h('strong', { 'data-licence-number': '' }, c.licenceNumber) : t('尚未发证', 'not issued')));
}

function instanceSummary(instance) {
  const ctx = instance.context || {};
  return h('dl', { class: 'facts' },
    instance.parentId ? fact(t('上级流程', 'Parent'), link(`/case/${instance.parentId}`, instance.parentId)) : null,
    fact(t('创建时间', 'Created'), dateTime(instance.createdAt)),
    fact(t('最近更新', 'Updated'), dateTime(instance.updatedAt)));
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

function limits(instance) {
  const pending = instance.timers.filter((x) => x.status === 'pending');
  const running = (d) => pending.some((x) => new Date(x.dueAt).getTime() === new Date(d.at).getTime());
  return [
    instance.deadlines.length
      ? h('ul', { class: 'deadlines' }, instance.deadlines.map((d) => h('li', { 'data-deadline': d.name },
        h('strong', {}, limitName(d.name)), '：', date(d.at), ' ', h('span', { class: 'muted' }, dateTime(d.at).slice(-5)), ' · ',
        // A deadline no pending timer waits on any more (met, or the case moved on) is history.
        running(d) ? daysLeft(d.workingDaysLeft, d.provisional) : h('span', { class: 'muted' }, t('已不再计时', 'no longer running')))))
      : h('p', { class: 'empty' }, t('无期限', 'No deadlines')),
    table(t('计时器', 'Timers'), [t('名称', 'Name'), t('触发事件', 'Fires'), t('到期', 'Due'), t('状态', 'Status')],
      instance.timers.map((x) => [limitName(x.name), x.event, [dateTime(x.dueAt), x.provisional ? h('span', { class: 'provisional' }, t('（暂定）', ' (provisional)')) : null], timerStatus(x.status)]),
      t('无计时器', 'No timers')),
    pending.length ? null : h('p', { class: 'empty' }, t('没有待触发的计时器。', 'Nothing is pending.')),
  ];
}

function timerStatus(status) {
  return { pending: t('待触发', 'pending'), fired: t('已触发', 'fired'), cancelled: t('已取消', 'cancelled') }[status] || status;
}

function materials(c) {
  return section('materials', t('申请材料', 'Materials'), table(null,
    [t('编号', 'Code'), t('材料', 'Material'), t('状态', 'Status'), t('文件', 'File'), t('收取人', 'Received by'), t('核验', 'Verification')],
    c.materials.map((m) => [m.code, m.name, materialStatus(m.status), m.fileRef || '—', m.receivedBy || '—', m.verification || '—'])));
}

function materialStatus(status) {
  return { provided: t('已提交', 'provided'), deferred: t('容缺后补', 'deferred'), to_verify: t('待核验', 'to verify'), missing: t('缺失', 'missing'), received: t('已补齐', 'received'), verified: t('已核验', 'verified') }[status] || status;
}

function supervision(c, children) {
  const tasks = children.filter((x) => x.definitionName === 'supervision-task');
  const outcomes = c.inspectionOutcomes;
  if (!tasks.length && !outcomes.length) return null;
  return section('supervision', t('监管核查', 'Supervision'),
    tasks.length ? h('ul', {}, tasks.map((x) => h('li', {}, link(`/case/${x.id}`, t(`监管任务（${dateTime(x.createdAt)}）`, `Supervision task (${dateTime(x.createdAt)})`)), ' · ', x.title))) : null,
    outcomes.length ? table(t('核查结果', 'Inspection outcomes'), [t('日期', 'Date'), t('结果', 'Result'), t('未履行的条件', 'Conditions not kept'), t('整改', 'Rectification')],
      outcomes.map((o) => [o.inspectedOn || date(o.decidedAt), o.result || o.state, o.conditionsNotKept.join('；') || '—', o.rectificationOrder ? `${o.rectificationOrder}（${t('期限', 'due')} ${o.rectificationDue || '—'}）` : '—'])) : null);
}

/**
 * The acts open here: the definition's transitions from the current state that the viewer's
 * roles may fire, each as its form. Whether this case's scope and facts allow it is the API's.
 */
function acts(c, instance, definition, again) {
  if (!c) return null;
  const roles = session.viewer.roles;
  const open = new Set(definition.transitions
    .filter((tr) => tr.from.includes(instance.state) && tr.roles.some((r) => roles.includes(r)))
    .map((tr) => tr.on));
  const any = (...events) => events.some((e) => open.has(e));
  const done = async () => { await again(); notify(t('已办理', 'Done'), 'ok'); };
  const forms = [];
  if (any('materials_complete', 'supplied', 'verified', 'unverifiable')) {
    for (const m of c.materials.filter((x) => !['provided', 'received', 'verified'].includes(x.status))) forms.push(receiveMaterialForm(c.id, m, done));
  }
  if (any('approve', 'decide_on_spot')) {
    const issue = h('button', { type: 'button', class: 'primary', 'data-act': 'issue', onclick: async () => {
      issue.disabled = true;
      try { await issueLicence(c.id); await again(); } catch (e) { notify(describe(e), 'error'); issue.disabled = false; }
    } }, t('审批通过并发证', 'Approve and issue the licence'));
    forms.push(h('div', { class: 'act' }, issue));
  }
  if (any('accept_application', 'not_accept', 'request_correction')) forms.push(acceptanceForm(c.id, done));
  if (any('correction_received')) forms.push(receiveCorrectionForm(c.id, done));
  if (any('suspend')) forms.push(suspendForm(c.id, done));
  if (any('resume')) forms.push(resumeForm(c.id, done));
  if (any('extend')) forms.push(extendForm(c.id, done));
  if (any('decide_revoke', 'decide_grace', 'decide_close')) forms.push(decideRevocationForm(c.id, done));
  if (any('statement')) forms.push(stateCaseForm(c.id, done));
  if (any('refuse')) forms.push(refuseForm(instance.id, done));
  if (any('return')) forms.push(returnForm({ caseId: c.id, itemCode: c.itemCode, done }));
  if (any('withdraw')) forms.push(withdrawForm(instance.id, done));
  if (!forms.length) return null;
  return section('acts', t('办理', 'Act on the case'), h('p', { class: 'hint' }, t('按流程定义列出当前状态下您的角色可办理的事项；系统逐项校验，不允许的操作会被拒绝并说明原因。', 'The acts the workflow opens to your role in this state; the API checks each and says why it refuses one.')), forms);
}

function timeline(history, title) {
  return h('ol', { class: 'timeline' }, [...history].reverse().map((e) => h('li', {},
    h('span', { class: 'when' }, dateTime(e.occurredAt)),
    h('strong', {}, e.event),
    e.fromState !== e.toState ? h('span', {}, `${e.fromState ? title(e.fromState) : '—'} → ${title(e.toState)}`) : h('span', {}, title(e.toState)),
    h('span', { class: 'actor' }, actorText(e.actor)),
    reasonOf(e.payload))));
}

function actorText(actor) {
  if (!actor) return '';
  if (actor.subject === 'system') return t('系统', 'system');
  if (actor.subject) return `${actor.subject}${actor.roles && actor.roles.length ? `（${actor.roles.map(roleName).join('、')}）` : ''}`;
  return JSON.stringify(actor);
}

function reasonOf(payload) {
  if (!payload || typeof payload !== 'object') return null;
  const said = payload.reason || payload.statement || payload.opinion || (payload.decision && payload.decision.opinion) || payload.licence_number;
  return said ? h('span', { class: 'said' }, String(said)) : null;
}
