// The acts staff and applicants take on a case, each a small form over one mutation of the API.
// Which act a state allows is the API's to say: a form is offered where the role may act, and
// what the API refuses is shown as it says it.
import { h, t, field, select, gql, notify, describe } from './core.js';

/**
 * A form that runs `run(values)` on submit: `fields` are `[name, label, control]`; the result
 * goes to `done(result)`, an error to the notice area. The submit button is off while it runs.
 */
export function actForm({ id, legend, fields = [], submit, danger = false, run, done, dataset }) {
  const button = h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, submit);
  const form = h('form', { id, class: 'act', dataset },
    h('fieldset', {}, h('legend', {}, legend),
      fields.map(([name, label, control, hint]) => { control.name = name; return field(label, control, hint); }),
      button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(fields.map(([name]) => [name, form.elements[name].value.trim()]));
    button.disabled = true;
    try {
      const result = await run(values);
      await done?.(result);
    } catch (err) {
      notify(describe(err), 'error');
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

const textarea = (required = true) => h('textarea', { rows: 3, cols: 50, required });
const input = (attrs = {}) => h('input', { type: 'text', required: true, ...attrs });

// ---- the approving department ------------------------------------------------------------------
export const ISSUE = `mutation Issue($input: IssueLicenceInput!) { issueLicence(input: $input) { licenceNumber case { id state } } }`;

/** Issues the licence: the number is the system's, shown once issued. */
export async function issueLicence(caseId, opinion) {
  const { issueLicence: r } = await gql(ISSUE, { input: { caseId, opinion: opinion || null } });
  notify(t(`已发证，许可证编号 ${r.licenceNumber}`, `Licence issued: ${r.licenceNumber}`), 'ok');
  return r;
}

export function refuseForm(instanceId, done) {
  return actForm({
    id: `refuse-${instanceId}`,
    legend: t('不予许可', 'Refuse'),
    fields: [['reason', t('不予许可的理由', 'Reasons'), textarea()]],
    submit: t('作出不予许可决定', 'Refuse the licence'),
    danger: true,
    run: ({ reason }) => fireEvent(instanceId, 'refuse', { reason }),
    done,
  });
}

export const decisions = () => [
  ['REVOKE', t('撤销（或终止申请）', 'Revoke (or end the application)')],
  ['GRACE', t('给予一次宽限期', 'Grant a grace period once')],
  ['ACCEPT_STATEMENT', t('采纳陈述申辩', 'Accept the statement')],
];

export function decideRevocationForm(caseId, done) {
  return actForm({
    id: `decide-${caseId}`,
    legend: t('撤销决定（正当程序）', 'Revocation decision (due process)'),
    fields: [
      ['decision', t('决定', 'Decision'), select('decision', decisions(), 'REVOKE')],
      ['reason', t('理由', 'Reasons'), textarea()],
    ],
    submit: t('作出决定', 'Decide'),
    run: ({ decision, reason }) => gql(`mutation($input: DecideRevocationInput!) { decideRevocation(input: $input) { case { id state } } }`, { input: { caseId, decision, reason } }),
    done,
  });
}

// ---- the window --------------------------------------------------------------------------------
export function receiveMaterialForm(caseId, material, done) {
  return actForm({
    id: `receive-${caseId}-${material.code}`,
    legend: t(`收取容缺材料：${material.name}（${material.code}）`, `Receive the deferred material: ${material.name} (${material.code})`),
    fields: [['fileRef', t('材料文件编号', 'File reference'), input({ placeholder: 'file://…' }), t('扫描件或电子材料的存档编号', 'The archive reference of the scan or e-file')]],
    submit: t('登记收取', 'Record as received'),
    run: ({ fileRef }) => gql(`mutation($input: SubmitMaterialInput!) { submitMaterial(input: $input) { case { id state } } }`, { input: { caseId, code: material.code, fileRef } }),
    done,
  });
}

export const returnCategories = () => [
  ['APPLICANT_MATERIALS', t('申请人材料问题', 'The applicant\'s materials')],
  ['OFFICER_ERROR', t('窗口人员差错', 'The officer\'s error')],
  ['ITEM_MISCONFIGURATION', t('事项配置问题', 'The item\'s configuration')],
];

/** Returns an application (退件): an opened case when `caseId` is given, else at intake (the
 * item and applicant may be functions reading the intake form at submit). */
export function returnForm({ caseId = null, itemCode, applicantUscc = null, done }) {
  return actForm({
    id: caseId ? `return-${caseId}` : 'return-intake',
    legend: t('退件', 'Return the application'),
    fields: [
      ['category', t('退件原因类别', 'Reason category'), select('category', returnCategories(), 'APPLICANT_MATERIALS')],
      ['reason', t('退件理由（告知申请人）', 'Reasons (told to the applicant)'), textarea()],
    ],
    submit: t('退件', 'Return'),
    danger: true,
    run: ({ category, reason }) => gql(`mutation($input: ReturnApplicationInput!) { returnApplication(input: $input) { id } }`, { input: { caseId, itemCode: valueOf(itemCode), applicantUscc: valueOf(applicantUscc), category, reason } }),
    done,
  });
}

// ---- the ordinary procedure --------------------------------------------------------------------
export function acceptanceForm(caseId, done) {
  return actForm({
    id: `acceptance-${caseId}`,
    legend: t('受理决定', 'Acceptance decision'),
    fields: [
      ['decision', t('决定', 'Decision'), select('decision', [['ACCEPT', t('受理', 'Accept')], ['NOT_ACCEPT', t('不予受理', 'Do not accept')], ['REQUEST_CORRECTION', t('一次性告知补正', 'Ask for corrections')]], 'ACCEPT')],
      ['reason', t('理由或补正要求', 'Reasons or corrections'), textarea(false)],
    ],
    submit: t('作出决定', 'Decide'),
    run: ({ decision, reason }) => gql(`mutation($input: DecideAcceptanceInput!) { decideAcceptance(input: $input) { case { id state } } }`,
      { input: { caseId, decision, reason: reason || null, corrections: decision === 'REQUEST_CORRECTION' ? [{ requirement: reason }] : [] } }),
    done,
  });
}

export function receiveCorrectionForm(caseId, done) {
  return actForm({
    id: `correction-${caseId}`,
    legend: t('收取补正材料', 'Receive the corrections'),
    fields: [['fileRef', t('补正材料文件编号', 'File reference'), input()]],
    submit: t('登记收取', 'Record as received'),
    run: ({ fileRef }) => gql(`mutation($input: ReceiveCorrectionInput!) { receiveCorrection(input: $input) { case { id state } } }`, { input: { caseId, fileRef } }),
    done,
  });
}

const suspensionKinds = () => [
  ['HEARING', t('听证', 'Hearing')],
  ['EXPERT_REVIEW', t('专家评审', 'Expert review')],
  ['ON_SITE_CHECK', t('现场核查', 'On-site check')],
  ['CORRECTION', t('补正', 'Correction')],
];

export function suspendForm(caseId, done) {
  return actForm({
    id: `suspend-${caseId}`,
    legend: t('中止审查（法定时限暂停计算）', 'Suspend the review (the legal clock stops)'),
    fields: [['kind', t('中止事由', 'Why'), select('kind', suspensionKinds(), 'HEARING')], ['reason', t('说明', 'Reasons'), textarea()]],
    submit: t('中止', 'Suspend'),
    run: ({ kind, reason }) => gql(`mutation($input: SuspendReviewInput!) { suspendReview(input: $input) { case { id state } } }`, { input: { caseId, kind, reason } }),
    done,
  });
}

export function resumeForm(caseId, done) {
  return actForm({
    id: `resume-${caseId}`,
    legend: t('恢复审查（法定时限继续计算）', 'Resume the review (the legal clock runs again)'),
    fields: [['note', t('说明', 'Note'), textarea(false)]],
    submit: t('恢复', 'Resume'),
    run: ({ note }) => gql(`mutation($input: ResumeReviewInput!) { resumeReview(input: $input) { case { id state } } }`, { input: { caseId, note: note || null } }),
    done,
  });
}

export function extendForm(caseId, done) {
  return actForm({
    id: `extend-${caseId}`,
    legend: t('延长办理时限（仅一次，至多十个工作日）', 'Extend the time limit (once, up to ten working days)'),
    fields: [['workingDays', t('延长工作日数', 'Working days'), input({ type: 'number', min: 1, max: 10 })], ['reason', t('理由', 'Reasons'), textarea()]],
    submit: t('批准延长', 'Extend'),
    run: ({ workingDays, reason }) => gql(`mutation($input: ExtendTimeLimitInput!) { extendTimeLimit(input: $input) { case { id state } } }`, { input: { caseId, workingDays: Number(workingDays), reason } }),
    done,
  });
}

// ---- the applicant -----------------------------------------------------------------------------
export function stateCaseForm(caseId, done) {
  return actForm({
    id: `state-${caseId}`,
    legend: t('陈述、申辩', 'State the case'),
    fields: [['statement', t('陈述申辩意见', 'Statement'), textarea()]],
    submit: t('提交陈述申辩', 'Submit the statement'),
    run: ({ statement }) => gql(`mutation($input: StateCaseInput!) { stateCase(input: $input) { case { id state } } }`, { input: { caseId, statement } }),
    done,
  });
}

export function withdrawForm(instanceId, done) {
  return actForm({
    id: `withdraw-${instanceId}`,
    legend: t('撤回申请', 'Withdraw the application'),
    fields: [['reason', t('撤回原因', 'Reason'), textarea(false)]],
    submit: t('撤回', 'Withdraw'),
    danger: true,
    run: ({ reason }) => fireEvent(instanceId, 'withdraw', reason ? { reason } : null),
    done,
  });
}

/** An event with no typed act (`refuse`, `withdraw`), fired through the generic path. */
export function fireEvent(instanceId, event, payload) {
  return gql(`mutation($input: FireEventInput!) { fireEvent(input: $input) { instance { id state } } }`, { input: { instanceId, event, payload } });
}

const valueOf = (x) => (typeof x === 'function' ? x() : x);
