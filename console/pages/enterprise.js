// 一企一档: an enterprise's file (its registration, cases, supervision tasks, licences, credit
// records and returns) as the API shows it to the caller; the applicant's own start page; and,
// for staff, a search for an enterprise by its code or a fragment of its name.
import { route, h, t, gql, fill, field, table, link, notify, describe, session, hasRole, dateTime, date, modeName, word } from '../core.js';

const STAFF = ['window', 'approver', 'department_head', 'division_admin', 'inspector', 'supervisor', 'regional_admin'];

const FILE = `query Enterprise($uscc: String!) {
  enterprise(uscc: $uscc) {
    uscc name
    registration { uscc name legalRepresentative email mobile creditTier dishonest }
    cases(first: 100) { totalCount nodes { id state itemCode itemName mode licenceNumber instance { definitionName createdAt } } }
    supervisionTasks(first: 100) { totalCount nodes { caseId state findings rectificationOrder instance { id createdAt definitionName } } }
    licences { licenceNumber caseId itemCode itemName mode issuedAt validUntil standing }
    creditRecords { id kind caseId reason createdAt repairedAt repairReason category publishUntil }
    returns { id itemCode department category reason returnedAt }
  }
}`;

const DEFINITIONS = `query Titles { workflowDefinitions(first: 100) { nodes { name states { name title } } } }`;

/** State titles by definition, as the deployed definitions give them (raw names if unavailable). */
async function stateTitles() {
  try {
    const { workflowDefinitions } = await gql(DEFINITIONS);
    const map = {};
    for (const d of workflowDefinitions.nodes) for (const s of d.states) map[`${d.name}/${s.name}`] = s.title;
    return (definition, state) => {
      const title = map[`${definition}/${state}`];
      return title ? `${title}（${state}）` : state;
    };
  } catch {
    return (_definition, state) => state;
  }
}

const STANDING = {
  VALID: ['有效', 'Valid'],
  LAPSED: ['已过期', 'Lapsed'],
  REVOKED: ['已撤销', 'Revoked'],
  DEREGISTERED: ['随营业执照注销', 'Deregistered'],
};
const CREDIT_KINDS = {
  fulfilment: ['履约', 'Fulfilment'],
  breach: ['违约', 'Breach'],
  revocation: ['撤销', 'Revocation'],
  repair: ['信用修复', 'Repair'],
};
const RETURN_CATEGORIES = {
  applicant_materials: ['申请材料问题', "Applicant's materials"],
  officer_error: ['窗口人员差错', "Officer's error"],
  item_misconfiguration: ['事项配置问题', 'Item misconfigured'],
};

async function enterprisePage(page, uscc) {
  page.append(h('h1', {}, t('企业档案', 'Enterprise file')));
  if (!uscc) {
    page.append(h('p', { 'data-not-found': true }, t('当前登录身份没有关联企业。', 'No enterprise is linked to this sign-in.')));
    return;
  }
  const [{ enterprise: e }, titleOf] = await Promise.all([gql(FILE, { uscc }), stateTitles()]);
  if (!e) {
    page.append(h('p', { 'data-not-found': true }, t('未找到该企业，或您无权查看。', 'No such enterprise, or it is not yours to see.')));
    return;
  }
  const r = e.registration;
  page.querySelector('h1').textContent = `${t('企业档案', 'Enterprise file')}：${e.name}`;
  page.append(
    h('section', { 'aria-labelledby': 'ent-reg' },
      h('h2', { id: 'ent-reg' }, t('登记信息', 'Registration')),
      h('dl', { class: 'facts' },
        h('dt', {}, t('统一社会信用代码', 'Unified social credit code')), h('dd', { 'data-uscc': e.uscc }, e.uscc),
        h('dt', {}, t('名称', 'Name')), h('dd', {}, r.name),
        h('dt', {}, t('法定代表人', 'Legal representative')), h('dd', {}, r.legalRepresentative),
        h('dt', {}, t('联系邮箱', 'Email')), h('dd', {}, r.email || '—'),
        h('dt', {}, t('联系电话', 'Mobile')), h('dd', {}, r.mobile || '—'),
        h('dt', {}, t('信用等级', 'Credit tier')), h('dd', { 'data-credit-tier': r.creditTier }, r.creditTier),
        h('dt', {}, t('失信名单', 'Dishonesty list')),
        h('dd', {}, r.dishonest ? h('span', { class: 'badge overdue' }, t('已列入', 'Listed')) : t('未列入', 'Not listed')))),

    h('section', { 'aria-labelledby': 'ent-cases' },
      h('h2', { id: 'ent-cases' }, `${t('办件', 'Cases')}（${e.cases.totalCount}）`),
      table(null, [t('办件', 'Case'), t('事项', 'Item'), t('办理方式', 'Mode'), t('状态', 'State'), t('许可证号', 'Licence'), t('受理时间', 'Opened')],
        e.cases.nodes.map((c) => [
          link(`/case/${c.id}`, c.id),
          c.itemName ? `${c.itemName}（${c.itemCode}）` : c.itemCode,
          modeName(c.mode),
          titleOf(c.instance.definitionName, c.state),
          c.licenceNumber || '—',
          dateTime(c.instance.createdAt),
        ]), t('暂无可查看的办件', 'No cases to show'))),

    h('section', { 'aria-labelledby': 'ent-licences' },
      h('h2', { id: 'ent-licences' }, t('许可证', 'Licences')),
      table(null, [t('许可证号', 'Licence'), t('事项', 'Item'), t('办理方式', 'Mode'), t('发证时间', 'Issued'), t('有效期至', 'Valid until'), t('状态', 'Standing'), t('办件', 'Case')],
        e.licences.map((l) => [
          l.licenceNumber,
          `${l.itemName}（${l.itemCode}）`,
          modeName(l.mode),
          dateTime(l.issuedAt),
          l.validUntil || t('长期', 'No term'),
          h('span', { class: l.standing === 'VALID' ? '' : 'badge' }, word(STANDING, l.standing)),
          link(`/case/${l.caseId}`, l.caseId),
        ]), t('暂无许可证', 'No licences'))),
  );

  // An inspection is unannounced: the API lists tasks only to staff who may see them.
  if (e.supervisionTasks.totalCount > 0 || !hasRole('applicant')) {
    page.append(h('section', { 'aria-labelledby': 'ent-tasks' },
      h('h2', { id: 'ent-tasks' }, `${t('监管任务', 'Supervision tasks')}（${e.supervisionTasks.totalCount}）`),
      table(null, [t('任务', 'Task'), t('办件', 'Case'), t('状态', 'State'), t('核查结果', 'Findings'), t('整改要求', 'Rectification order'), t('生成时间', 'Created')],
        e.supervisionTasks.nodes.map((k) => [
          k.instance.id,
          k.caseId ? link(`/case/${k.caseId}`, k.caseId) : '—',
          titleOf(k.instance.definitionName, k.state),
          findingsList(k.findings),
          k.rectificationOrder || '—',
          dateTime(k.instance.createdAt),
        ]), t('暂无监管任务', 'No supervision tasks'))));
  }

  page.append(
    h('section', { 'aria-labelledby': 'ent-credit' },
      h('h2', { id: 'ent-credit' }, t('信用记录', 'Credit records')),
      table(null, [t('类型', 'Kind'), t('类别', 'Category'), t('事由', 'Reason'), t('办件', 'Case'), t('记录时间', 'Recorded'), t('公示至', 'Published until'), t('修复', 'Repair')],
        e.creditRecords.map((c) => [
          word(CREDIT_KINDS, c.kind),
          c.category === 'serious' ? t('严重', 'Serious') : c.category === 'general' ? t('一般', 'General') : (c.category || '—'),
          c.reason,
          c.caseId ? link(`/case/${c.caseId}`, c.caseId) : '—',
          dateTime(c.createdAt),
          c.publishUntil ? date(c.publishUntil) : '—',
          c.repairedAt ? `${t('已修复', 'Repaired')} ${dateTime(c.repairedAt)}${c.repairReason ? '：' + c.repairReason : ''}` : '—',
        ]), t('暂无信用记录', 'No credit records'))),

    h('section', { 'aria-labelledby': 'ent-returns' },
      h('h2', { id: 'ent-returns' }, t('退件记录', 'Returns')),
      table(null, [t('事项', 'Item'), t('部门', 'Department'), t('原因类别', 'Category'), t('退件理由', 'Reason'), t('退件时间', 'Returned')],
        e.returns.map((x) => [x.itemCode, x.department, word(RETURN_CATEGORIES, x.category), x.reason, dateTime(x.returnedAt)]),
        t('暂无退件记录', 'No returns'))),
  );
}

/** The findings of an inspection (a JSON list of {condition, kept, note}) as a list. */
function findingsList(findings) {
  if (!Array.isArray(findings) || !findings.length) return '—';
  return h('ul', { class: 'plain' }, findings.map((f) => h('li', {},
    h('span', { class: f.kept ? 'kept' : 'not-kept' }, f.kept ? t('✓ 符合', '✓ kept') : t('✗ 不符合', '✗ not kept')),
    ` ${f.condition}`, f.note ? `（${f.note}）` : '')));
}

route('/enterprise/:uscc', (page, { uscc }) => enterprisePage(page, uscc), { title: () => t('企业档案', 'Enterprise file') });

route('/mine', (page) => enterprisePage(page, session.viewer && session.viewer.uscc),
  { title: () => t('我的企业', 'My enterprise'), roles: ['applicant'], nav: () => t('我的企业', 'My enterprise') });

// ---- staff: finding an enterprise ---------------------------------------------------------------
const SEARCH = `query Find($f: WorkflowInstanceFilter) { workflowInstances(filter: $f, first: 100) { totalCount nodes { id context } } }`;
const USCC = /^[0-9A-Z]{18}$/i;

/** The applicant an instance's context names (a task names it through its case). */
function applicantOf(ctx) {
  const a = (ctx && (ctx.applicant || (ctx.parent && ctx.parent.context && ctx.parent.context.applicant))) || null;
  return a && a.uscc ? a : null;
}

route('/enterprise', async (page) => {
  page.append(h('h1', {}, t('企业档案查询', 'Find an enterprise')));
  const q = h('input', { name: 'q', type: 'search', required: true, autocomplete: 'off' });
  const results = h('section', { id: 'enterprise-results', 'aria-labelledby': 'ent-found', 'aria-live': 'polite' });
  const form = h('form', { id: 'enterprise-search', role: 'search' },
    field(t('统一社会信用代码或企业名称关键字', 'Unified social credit code or part of the name'), q,
      t('输入18位统一社会信用代码直接打开档案；输入名称中的一个或几个字查找。', 'An 18-character code opens the file; a fragment of the name searches.')),
    h('button', { type: 'submit', class: 'primary' }, t('查询', 'Search')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = q.value.trim();
    if (!text) return;
    if (USCC.test(text)) {
      location.hash = `/enterprise/${text.toUpperCase()}`;
      return;
    }
    try {
      const { workflowInstances } = await gql(SEARCH, { f: { applicantName: text } });
      const found = new Map();
      for (const n of workflowInstances.nodes) {
        const a = applicantOf(n.context);
        if (a && !found.has(a.uscc)) found.set(a.uscc, { ...a, count: 0 });
        if (a) found.get(a.uscc).count += 1;
      }
      fill(results,
        h('h2', { id: 'ent-found' }, t(`查询结果：${found.size} 家企业`, `Found: ${found.size} enterprises`)),
        table(null, [t('企业名称', 'Name'), t('统一社会信用代码', 'Code'), t('相关办件与任务', 'Cases and tasks')],
          [...found.values()].map((a) => [link(`/enterprise/${a.uscc}`, a.name || a.uscc), a.uscc, String(a.count)]),
          t('没有名称含此关键字的企业办件', 'No enterprise with this in its name has cases you may see')));
    } catch (e) {
      notify(describe(e), 'error');
    }
  });
  page.append(form, results);
}, { title: () => t('企业档案', 'Enterprises'), roles: STAFF, nav: () => t('企业档案', 'Enterprises') });
