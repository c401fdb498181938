// The regional admin's page: dead letters of the outbox (requeued one by one), the catalogue,
// the departments with their divisions, and the staff of the region (with a form to put one).
import { route, h, t, gql, fill, field, select, table, notify, describe, dateTime, roleName, modeName, serverNow } from '../core.js';
import { actForm } from '../acts.js';

const DEAD = `query Dead { outbox(filter: {status: DEAD}, first: 100) { totalCount nodes {
  id instanceId channel recipient topic status attempts lastError nextAttemptAt createdAt
  history { attempt at outcome detail worker } } } }`;
const REQUEUE = `mutation Requeue($id: ID!) { requeueOutboxMessage(input: {id: $id}) { message { id status } } }`;
const CATALOGUE = `query Catalogue { approvalItems(first: 100) { totalCount nodes { code version name department excluded
  spec { timeLimitWorkingDays modes { deferralMaxWorkingDays deferralLicenceFirst verification afterTheFact } supervision { division } } } } }`;
const DEPARTMENTS = `query Departments { departments { code name side email registrationAuthority divisions { code name email } } }`;
const STAFF = `query Staff { staff { id name department division roles email active } }`;
const PUT_STAFF = `mutation PutStaff($input: PutStaffInput!) { putStaff(input: $input) { code } }`;
const ROLES = ['window', 'approver', 'department_head', 'division_admin', 'inspector', 'supervisor', 'regional_admin'];

/** Loads one section; its failure is said in the section, the others still show. */
async function load(section, query, render) {
  try {
    const data = await gql(query);
    render(data);
  } catch (e) {
    fill(section, section.firstChild, h('p', { class: 'notice error', role: 'alert' }, describe(e)));
  }
}

function modesOf(spec) {
  const m = spec.modes;
  const list = [];
  if (m.deferralMaxWorkingDays != null) list.push(`${modeName('DEFERRAL')}（≤${m.deferralMaxWorkingDays} ${t('个工作日', 'working days')}${m.deferralLicenceFirst ? t('，先证后补', ', licence first') : ''}）`);
  if (m.verification) list.push(modeName('VERIFICATION'));
  if (m.afterTheFact) list.push(modeName('AFTER_THE_FACT'));
  list.push(modeName('ORDINARY'));
  return list.join('、');
}

route('/admin', async (page) => {
  page.append(h('h1', {}, t('区级管理', 'Regional administration')));
  const dead = h('section', { id: 'dead-letters', 'aria-labelledby': 'adm-dead' }, h('h2', { id: 'adm-dead' }, t('投递失败的消息（死信）', 'Dead letters')));
  const catalogue = h('section', { id: 'catalogue', 'aria-labelledby': 'adm-cat' }, h('h2', { id: 'adm-cat' }, t('审批事项目录', 'Catalogue of approval items')));
  const departments = h('section', { id: 'departments', 'aria-labelledby': 'adm-dep' }, h('h2', { id: 'adm-dep' }, t('部门与处室', 'Departments and divisions')));
  const staff = h('section', { id: 'staff', 'aria-labelledby': 'adm-staff' }, h('h2', { id: 'adm-staff' }, t('工作人员', 'Staff')));
  const clock = h('section', { id: 'clock', 'aria-labelledby': 'adm-clock' }, h('h2', { id: 'adm-clock' }, t('培训时钟', 'Training clock')));
  page.append(dead, catalogue, departments, staff, clock);
  let deptNames = {};
  let divisionNames = {};

  const showDead = () => load(dead, DEAD, ({ outbox }) => {
    fill(dead, dead.firstChild,
      h('p', {}, t(`共 ${outbox.totalCount} 条，重试全部失败或永久失败，等待处理。`, `${outbox.totalCount} messages failed every attempt and wait for an operator.`)),
      table(null, [t('收件人', 'Recipient'), t('渠道', 'Channel'), t('主题', 'Topic'), t('尝试次数', 'Attempts'), t('最后错误', 'Last error'), t('投递记录', 'History'), t('操作', 'Action')],
        outbox.nodes.map((m) => [
          m.recipient,
          m.channel,
          h('span', {}, m.topic, h('br'), h('small', { class: 'hint' }, `${t('实例', 'Instance')} ${m.instanceId}`)),
          String(m.attempts),
          m.lastError || '—',
          m.history.length ? h('details', {}, h('summary', {}, t(`${m.history.length} 次`, `${m.history.length} attempts`)),
            h('ol', { class: 'plain' }, m.history.map((a) => h('li', {}, `${dateTime(a.at)} #${a.attempt} ${a.outcome}${a.detail ? '：' + a.detail : ''}（${a.worker}）`)))) : '—',
          h('button', {
            type: 'button', 'data-requeue': m.id,
            onclick: async (ev) => {
              ev.currentTarget.disabled = true;
              try {
                await gql(REQUEUE, { id: m.id });
                notify(t(`已重新排队：${m.topic} → ${m.recipient}`, `Requeued: ${m.topic} → ${m.recipient}`), 'ok');
              } catch (e) {
                notify(describe(e), 'error');
              }
              await showDead();
            },
          }, t('重新投递', 'Requeue')),
        ]), t('没有死信。', 'No dead letters.')));
  });

  await Promise.all([
    showDead(),
    load(departments, DEPARTMENTS, ({ departments: list }) => {
      deptNames = Object.fromEntries(list.map((d) => [d.code, d.name]));
      divisionNames = Object.fromEntries(list.flatMap((d) => d.divisions.map((v) => [v.code, v.name])));
      fill(departments, departments.firstChild,
        table(null, [t('部门', 'Department'), t('代码', 'Code'), t('类型', 'Side'), t('邮箱', 'Email'), t('处室', 'Divisions')],
          list.map((d) => [
            h('span', {}, d.name, d.registrationAuthority ? h('span', { class: 'badge' }, t('登记机关', 'Registration authority')) : null),
            d.code,
            d.side === 'approval' ? t('审批', 'Approval') : d.side === 'supervision' ? t('监管', 'Supervision') : d.side === 'service' ? t('政务服务', 'Service') : d.side,
            d.email || '—',
            d.divisions.length ? h('ul', { class: 'plain' }, d.divisions.map((v) => h('li', {}, `${v.name}（${v.code}）`))) : '—',
          ]), t('本区尚未配置部门。', 'No departments configured.')));
    }),
  ]);

  await Promise.all([
    load(catalogue, CATALOGUE, ({ approvalItems }) => {
      fill(catalogue, catalogue.firstChild,
        table(null, [t('事项编码', 'Code'), t('版本', 'Version'), t('名称', 'Name'), t('审批部门', 'Department'), t('告知承诺', 'Commitment'), t('可选办理方式', 'Modes'), t('承诺办理时限', 'Promised time limit'), t('监管处室', 'Supervising division')],
          approvalItems.nodes.map((i) => [
            i.code,
            String(i.version),
            i.name,
            deptNames[i.department] || i.department,
            i.excluded ? h('span', { class: 'badge' }, t('排除（仅一般程序）', 'Excluded (ordinary only)')) : t('适用', 'Applies'),
            i.excluded ? modeName('ORDINARY') : modesOf(i.spec),
            i.spec.timeLimitWorkingDays != null ? `${i.spec.timeLimitWorkingDays} ${t('个工作日', 'working days')}` : '—',
            i.spec.supervision ? (divisionNames[i.spec.supervision.division] || i.spec.supervision.division) : '—',
          ]), t('目录为空。', 'The catalogue is empty.')));
    }),
    showStaff(),
    showClock(),
  ]);

  // A training server's clock moves on request (the due reminders and limits fire at once); a
  // production server's does not, and says so.
  async function showClock() {
    const now = await serverNow();
    fill(clock, clock.firstChild,
      h('p', {}, t(`服务器时间：${dateTime(now.now)}`, `Server time: ${dateTime(now.now)}`), now.manual ? t('（培训时钟）', ' (training clock)') : t('（真实时钟，不可调整）', ' (the real clock: it cannot be moved)')),
      now.manual ? actForm({
        id: 'advance-clock',
        legend: t('拨快时钟', 'Move the clock on'),
        fields: [['days', t('天数', 'Days'), h('input', { type: 'number', min: 0, max: 400, value: 1, required: true })], ['hours', t('小时数', 'Hours'), h('input', { type: 'number', min: 0, max: 23, value: 0, required: true })]],
        submit: t('拨快并执行到期事项', 'Move on and run what falls due'),
        run: ({ days, hours }) => gql(`mutation($input: AdvanceClockInput!) { advanceClock(input: $input) { now timersFired messagesDelivered } }`, { input: { bySeconds: Number(days) * 86400 + Number(hours) * 3600 } }),
        done: async ({ advanceClock: r }) => {
          await showClock();
          notify(t(`时钟已到 ${dateTime(r.now)}：触发计时器 ${r.timersFired} 个，投递消息 ${r.messagesDelivered} 条`, `Now ${dateTime(r.now)}: ${r.timersFired} timers fired, ${r.messagesDelivered} messages delivered`), 'ok');
        },
      }) : null);
  }

  function showStaff() {
    return load(staff, STAFF, ({ staff: list }) => {
      fill(staff, staff.firstChild,
        table(null, [t('工号', 'Id'), t('姓名', 'Name'), t('部门', 'Department'), t('处室', 'Division'), t('角色', 'Roles'), t('邮箱', 'Email'), t('状态', 'Status')],
          list.map((s) => [s.id, s.name, s.department ? (deptNames[s.department] || s.department) : t('区级', 'Region'), (s.division && divisionNames[s.division]) || s.division || '—',
            s.roles.map(roleName).join('、'), s.email || '—', s.active ? t('在用', 'Active') : t('停用', 'Inactive')]),
          t('本区尚无工作人员。', 'No staff.')),
        staffForm(Object.entries(deptNames), showStaff));
    });
  }
}, { title: () => t('管理', 'Admin'), roles: ['regional_admin'], nav: () => t('管理', 'Admin') });

/** A small form to create or replace a staff account (putStaff). */
function staffForm(departments, done) {
  const id = h('input', { name: 'id', required: true, autocomplete: 'off' });
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const department = select('department', departments.map(([code, n]) => [code, `${n}（${code}）`]));
  const division = h('input', { name: 'division', autocomplete: 'off' });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'off' });
  const roles = h('fieldset', {}, h('legend', {}, t('角色', 'Roles')),
    h('div', { class: 'row' }, ROLES.map((r) => {
      const box = h('input', { type: 'checkbox', name: 'roles', value: r, id: `role-${r}` });
      return h('label', { for: box.id, class: 'check' }, box, ' ', roleName(r));
    })));
  const form = h('form', { id: 'put-staff', class: 'panel' },
    h('h3', {}, t('新增或修改工作人员', 'Add or change a staff member')),
    h('div', { class: 'row' },
      field(t('工号（登录标识）', 'Id (login subject)'), id),
      field(t('姓名', 'Name'), name),
      field(t('部门', 'Department'), department),
      field(t('处室代码（可空）', 'Division code (optional)'), division),
      field(t('邮箱（可空）', 'Email (optional)'), email)),
    roles,
    h('button', { type: 'submit', class: 'primary' }, t('保存', 'Save')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = {
      id: id.value.trim(),
      name: name.value.trim(),
      department: department.value,
      division: division.value.trim() || null,
      roles: [...form.querySelectorAll('input[name=roles]:checked')].map((b) => b.value),
      email: email.value.trim() || null,
    };
    try {
      await gql(PUT_STAFF, { input });
      notify(t(`已保存：${input.name}（${input.id}）`, `Saved: ${input.name} (${input.id})`), 'ok');
      done();
    } catch (e) {
      notify(describe(e), 'error');
    }
  });
  return form;
}
