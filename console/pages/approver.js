// The approving department's page: the cases awaiting its decision — the licence (issued with the
// system's number) or a refusal, the acceptance decision of the ordinary procedure, and the
// revocation decisions of the due-process procedure. Which states wait for which decision is
// read from the deployed definitions (the transitions open to the viewer's roles), not kept here.
import { route, h, t, fill, gql, link, notify, describe, session, modeName, dateTime, stateTitle } from '../core.js';
import { issueLicence, refuseForm, decideRevocationForm, acceptanceForm } from '../acts.js';

const ROLES = ['approver', 'department_head'];

// The decisions this page offers, by the event a definition's transition is fired by.
const QUEUES = [
  { on: ['approve', 'decide_on_spot'], heading: () => t('待审批决定', 'Awaiting the decision'), id: 'decide' },
  { on: ['accept_application'], heading: () => t('待受理决定（一般程序）', 'Awaiting acceptance (ordinary procedure)'), id: 'accept' },
  { on: ['decide_revoke'], heading: () => t('待作出撤销决定（陈述申辩程序）', 'Revocation decisions (due process)'), id: 'revocation' },
];

route('/approver', async (page) => {
  page.append(h('h1', {}, t('审批', 'Approval')), h('div', { id: 'issued', 'aria-live': 'polite' }));
  const { workflowDefinitions } = await gql(`{ workflowDefinitions(first: 100) { nodes { name title transitions { from on to roles } } } }`);
  const mine = (tr) => tr.roles.length === 0 || tr.roles.some((r) => session.viewer.roles.includes(r));
  for (const queue of QUEUES) {
    const pairs = [];
    for (const d of workflowDefinitions.nodes) {
      for (const tr of d.transitions.filter((x) => queue.on.includes(x.on) && mine(x))) for (const state of tr.from) pairs.push([d.name, state]);
    }
    const unique = [...new Map(pairs.map((p) => [p.join('/'), p])).values()];
    const found = await Promise.all(unique.map(([definition, state]) => gql(`query($f: WorkflowInstanceFilter) { workflowInstances(filter: $f, first: 50) { nodes { id definitionName state createdAt context } } }`, { f: { definition, state } })));
    const instances = found.flatMap((r) => r.workflowInstances.nodes).sort((a, b) => new Date(a.createdAt) - new Date(b.createdAt));
    const section = h('section', { 'aria-labelledby': `${queue.id}-h` }, h('h2', { id: `${queue.id}-h` }, `${queue.heading()}（${instances.length}）`));
    if (!instances.length) section.append(h('p', { class: 'empty' }, t('没有待办。', 'Nothing waiting.')));
    else section.append(await queueTable(queue, instances));
    page.append(section);
  }
}, { title: () => t('审批', 'Approval'), roles: ROLES, nav: () => t('审批', 'Approval') });

async function queueTable(queue, instances) {
  const body = [];
  for (const i of instances) {
    const ctx = i.context || {};
    const acts = h('td', { class: 'acts' }, actsFor(queue, i));
    body.push(h('tr', { 'data-case': i.id },
      h('td', {}, link(`/case/${i.id}`, (ctx.applicant && ctx.applicant.name) || i.id)),
      h('td', {}, (ctx.item && ctx.item.name) || i.definitionName),
      h('td', {}, modeName(ctx.mode)),
      h('td', {}, await stateTitle(i.definitionName, i.state)),
      h('td', {}, dateTime(i.createdAt)),
      acts));
  }
  return h('table', {},
    h('thead', {}, h('tr', {}, [t('申请人', 'Applicant'), t('事项', 'Item'), t('方式', 'Mode'), t('状态', 'State'), t('受理时间', 'Opened'), t('办理', 'Act')].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, body));
}

function actsFor(queue, i) {
  const gone = (row) => () => { row.closest('tr')?.remove(); notify(t('已办理', 'Done'), 'ok'); };
  if (queue.id === 'decide') {
    const holder = h('div', {});
    const issue = h('button', { type: 'button', class: 'primary', 'data-act': 'issue', onclick: async () => {
      issue.disabled = true;
      try {
        const r = await issueLicence(i.id);
        fill(document.getElementById('issued'), h('p', { class: 'notice ok', role: 'status' },
          t('已发证：', 'Issued: '), link(`/case/${i.id}`, (i.context.applicant && i.context.applicant.name) || i.id), t('，许可证编号 ', ', licence number '), h('strong', { 'data-licence-number': '' }, r.licenceNumber)));
        holder.closest('tr')?.remove();
      } catch (e) {
        notify(describe(e), 'error');
        issue.disabled = false;
      }
    } }, t('审批通过并发证', 'Approve and issue'));
    holder.append(issue, h('details', {}, h('summary', {}, t('不予许可…', 'Refuse…')), refuseForm(i.id, gone(holder))));
    return holder;
  }
  if (queue.id === 'revocation') {
    const holder = h('div', {});
    holder.append(decideRevocationForm(i.id, gone(holder)));
    return holder;
  }
  const holder = h('div', {});
  holder.append(acceptanceForm(i.id, gone(holder)));
  return holder;
}
