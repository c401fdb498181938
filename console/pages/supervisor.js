// The supervisor's dashboard: the API's statistics for a period and department, each figure as a
// chart (Chart.js) and the same numbers in a table; below, the breaches of the supervision limits,
// the random inspection draws (and a new draw), suspended window officers and flagged items.
import { route, h, t, gql, fill, field, select, table, link, notify, describe, dateTime, modeName, serverNow, officeDate, word, BREACH_LIMITS } from '../core.js';

const DEPARTMENTS = `query Departments { departments { code name side divisions { code name } } workflowDefinitions(first: 100) { nodes { name states { name title } } } }`;
const STATISTICS = `query Statistics($f: StatisticsFilter!) { statistics(filter: $f) {
  fulfilment { kept notKept inForce rate }
  deferrals { onTime late never pending }
  revocations { cause count }
  legalLimitsPassed
  rectifications { ordered succeeded failed }
  divisions { division tasks lookedAtInTime lookAtBreaches fedBackInTime feedbackBreaches }
  intakeToLicence { licensed averageWorkingDays p90WorkingDays }
  returns { applications returns returnRate oneTimeSuccessRate }
  casesByModeAndState { mode state count }
  series(period: MONTH) { start opened licensed returned }
} }`;
const BREACHES = `query Breaches($f: SlaBreachFilter) { slaBreaches(filter: $f, first: 100) { id taskId limit department division breachedAt } }`;
const DRAWS = `query Draws { inspectionDraws(first: 10) { id seed drawnBy drawnAt ratios poolSize picks { caseId tier inspector taskId } } }`;
const DRAW = `mutation Draw($input: DrawInspectionsInput!) { drawInspections(input: $input) { draw { id seed poolSize picks { caseId } } } }`;
const SUSPENSIONS = `query Suspensions { officerSuspensions { officer department suspendedAt ownErrors intake reinstatedAt reinstatedBy retraining } }`;
const FLAGGED = `query Flagged { flaggedItems { itemCode itemVersion flaggedAt misconfigured intake reexaminationId } }`;

/** The office's calendar date of an instant, `YYYY-MM-DD`. */
/** A date input's value as the filter's instant: the start of that day in Beijing. */
const dayStart = (d) => new Date(`${d}T00:00:00+08:00`).toISOString();

// Colours distinguishable in print and for most colour vision; every chart also has its table.
const COLOURS = ['#0b5cad', '#c2410c', '#1e6b34', '#7c3aed', '#a4161a', '#0e7490', '#8a4b00', '#4a5563', '#be185d', '#65a30d', '#1e3a8a', '#b45309'];

const CAUSES = {
  expire: ['容缺材料逾期未补', 'Deferred materials not in time'],
  revocation_decided: ['核查发现未履约', 'Supervision found it broken'],
  revoke: ['审批部门撤销', 'Revoked by the department'],
};
const percent = (x) => (x == null ? '—' : `${(x * 100).toFixed(1)}%`);
const num = (x) => (x == null ? '' : String(x));

/** A table cell holding an API figure: `data-value` names its path in `statistics`, the text is the raw value. */
const cell = (path, value) => h('td', { 'data-value': path }, num(value));

/** A table of figures: `rows` are [header, ...cells] (cells built with `cell` or plain text). */
function figureTable(caption, headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || t('此期间无数据', 'Nothing in this period'));
  return h('table', { class: 'figures' },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map(([head, ...cells]) => h('tr', {}, h('th', { scope: 'row' }, head),
      cells.map((c) => (c instanceof Element && c.tagName === 'TD' ? c : h('td', {}, c)))))));
}

// Every chart drawn, so those of a page no longer shown are destroyed when the next is drawn.
const allCharts = new Set();
function destroyCharts(list) {
  for (const c of list) {
    c.destroy();
    allCharts.delete(c);
  }
  list.length = 0;
}
function destroyDetached() {
  for (const c of [...allCharts]) {
    if (!c.canvas || !c.canvas.isConnected) {
      c.destroy();
      allCharts.delete(c);
    }
  }
}

/**
 * A chart in `<figure data-chart=name>` with its caption, followed by its table. The chart is
 * drawn at once (no animation) into a fixed-height wrapper; the canvas is described for screen
 * readers, who read the table.
 */
function chartBlock(name, caption, config, tableEl, charts) {
  const canvas = h('canvas', { role: 'img', 'aria-label': `${caption}${t('（数据见下表）', ' (figures in the table below)')}` });
  const figure = h('figure', { 'data-chart': name, class: 'chart-figure' },
    h('div', { class: 'chart' }, canvas),
    h('figcaption', {}, caption));
  const block = h('div', { class: 'figure-block' }, figure, tableEl);
  return { block, draw: () => {
    if (!window.Chart) throw new Error(t('图表组件未加载', 'Chart.js did not load'));
    const options = config.options || {};
    const chart = new window.Chart(canvas, {
      ...config,
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        ...options,
        plugins: { legend: { position: 'bottom' }, ...(options.plugins || {}) },
      },
    });
    charts.push(chart);
    allCharts.add(chart);
  } };
}

const bar = (labels, datasets, extra = {}) => ({
  type: 'bar',
  data: { labels, datasets: datasets.map((d, i) => ({ backgroundColor: d.colours || COLOURS[i % COLOURS.length], borderWidth: 0, maxBarThickness: 56, ...d })) },
  options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 }, ...(extra.stacked ? { stacked: true } : {}) }, x: { ...(extra.stacked ? { stacked: true } : {}) } }, indexAxis: extra.horizontal ? 'y' : 'x', ...(extra.options || {}) },
});

function figures(s, divisionNames, charts, stateName = (x) => x) {
  const blocks = [];
  const add = (...args) => blocks.push(chartBlock(...args, charts));

  // Fulfilment of commitments.
  const f = s.fulfilment;
  const fLabels = [t('已履约', 'Kept'), t('未履约', 'Not kept'), t('履约中', 'In force')];
  add('fulfilment', t('承诺履约情况', 'Commitments kept'),
    bar(fLabels, [{ label: t('办件数', 'Cases'), data: [f.kept, f.notKept, f.inForce], colours: [COLOURS[2], COLOURS[4], COLOURS[0]] }], { options: { plugins: { legend: { display: false } } } }),
    figureTable(t('承诺履约情况', 'Commitments kept'), [t('项目', 'Figure'), t('数值', 'Value')], [
      [fLabels[0], cell('fulfilment.kept', f.kept)],
      [fLabels[1], cell('fulfilment.notKept', f.notKept)],
      [fLabels[2], cell('fulfilment.inForce', f.inForce)],
      [t('履约率（已履约/已结）', 'Rate kept (of settled)'), percent(f.rate)],
    ]));

  // Deferred materials.
  const d = s.deferrals;
  const dLabels = [t('按期补齐', 'On time'), t('逾期补齐', 'Late'), t('未补齐', 'Never'), t('待补', 'Pending')];
  add('deferrals', t('容缺材料补齐情况', 'Deferred materials'),
    bar(dLabels, [{ label: t('办件数', 'Cases'), data: [d.onTime, d.late, d.never, d.pending], colours: [COLOURS[2], COLOURS[6], COLOURS[4], COLOURS[0]] }], { options: { plugins: { legend: { display: false } } } }),
    figureTable(t('容缺材料补齐情况', 'Deferred materials'), [t('项目', 'Figure'), t('办件数', 'Cases')], [
      [dLabels[0], cell('deferrals.onTime', d.onTime)],
      [dLabels[1], cell('deferrals.late', d.late)],
      [dLabels[2], cell('deferrals.never', d.never)],
      [dLabels[3], cell('deferrals.pending', d.pending)],
    ]));

  // Revocations by cause.
  add('revocations', t('撤销许可（按原因）', 'Revocations by cause'),
    bar(s.revocations.map((r) => word(CAUSES, r.cause)), [{ label: t('撤销数', 'Revocations'), data: s.revocations.map((r) => r.count), colours: COLOURS[4] }], { options: { plugins: { legend: { display: false } } } }),
    figureTable(t('撤销许可（按原因）', 'Revocations by cause'), [t('原因', 'Cause'), t('数量', 'Count')],
      s.revocations.map((r, i) => [word(CAUSES, r.cause), cell(`revocations[${i}].count`, r.count)]), t('此期间无撤销', 'No revocations in this period')));

  // Each division's limits.
  const divLabel = (v) => (v.division ? divisionNames[v.division] || v.division : t('未指定处室', 'No division'));
  add('divisions', t('各处室监管时限执行情况', "Divisions' supervision limits"),
    bar(s.divisions.map(divLabel), [
      { label: t('按时查看', 'Looked at in time'), data: s.divisions.map((v) => v.lookedAtInTime) },
      { label: t('查看超时', 'Look-at breaches'), data: s.divisions.map((v) => v.lookAtBreaches) },
      { label: t('按时反馈', 'Fed back in time'), data: s.divisions.map((v) => v.fedBackInTime) },
      { label: t('反馈超时', 'Feedback breaches'), data: s.divisions.map((v) => v.feedbackBreaches) },
    ].map((x, i) => ({ ...x, colours: [COLOURS[2], COLOURS[4], COLOURS[0], COLOURS[6]][i] }))),
    figureTable(t('各处室监管时限执行情况', "Divisions' supervision limits"),
      [t('处室', 'Division'), t('任务数', 'Tasks'), t('3日内查看', 'Looked at in time'), t('查看超时', 'Look-at breaches'), t('5日内反馈', 'Fed back in time'), t('反馈超时', 'Feedback breaches')],
      s.divisions.map((v, i) => [divLabel(v),
        cell(`divisions[${i}].tasks`, v.tasks), cell(`divisions[${i}].lookedAtInTime`, v.lookedAtInTime), cell(`divisions[${i}].lookAtBreaches`, v.lookAtBreaches),
        cell(`divisions[${i}].fedBackInTime`, v.fedBackInTime), cell(`divisions[${i}].feedbackBreaches`, v.feedbackBreaches)]),
      t('此期间无监管任务', 'No supervision tasks in this period')));

  // Rectifications.
  const r = s.rectifications;
  const rLabels = [t('责令整改', 'Ordered'), t('整改到位', 'Succeeded'), t('整改失败', 'Failed')];
  add('rectifications', t('限期整改', 'Rectifications'),
    bar(rLabels, [{ label: t('任务数', 'Tasks'), data: [r.ordered, r.succeeded, r.failed], colours: [COLOURS[0], COLOURS[2], COLOURS[4]] }], { options: { plugins: { legend: { display: false } } } }),
    figureTable(t('限期整改', 'Rectifications'), [t('项目', 'Figure'), t('任务数', 'Tasks')], [
      [rLabels[0], cell('rectifications.ordered', r.ordered)],
      [rLabels[1], cell('rectifications.succeeded', r.succeeded)],
      [rLabels[2], cell('rectifications.failed', r.failed)],
    ]));

  // Returns and one-time success.
  const ret = s.returns;
  add('returns', t('申请与退件', 'Applications and returns'),
    bar([t('申请', 'Applications'), t('退件', 'Returns')], [{ label: t('件数', 'Count'), data: [ret.applications, ret.returns], colours: [COLOURS[0], COLOURS[6]] }], { options: { plugins: { legend: { display: false } } } }),
    figureTable(t('申请与退件', 'Applications and returns'), [t('项目', 'Figure'), t('数值', 'Value')], [
      [t('申请数（受理加退件）', 'Applications (opened and returned)'), cell('returns.applications', ret.applications)],
      [t('退件数', 'Returns'), cell('returns.returns', ret.returns)],
      [t('退件率', 'Return rate'), percent(ret.returnRate)],
      [t('一次办成率', 'One-time success rate'), percent(ret.oneTimeSuccessRate)],
    ]));

  // Cases by mode and state.
  const modes = [...new Set(s.casesByModeAndState.map((x) => x.mode))];
  const states = [...new Set(s.casesByModeAndState.map((x) => x.state))];
  const countOf = (m, st) => s.casesByModeAndState.filter((x) => x.mode === m && x.state === st).reduce((a, x) => a + x.count, 0);
  add('cases', t('办件（按办理方式和状态）', 'Cases by mode and state'),
    bar(modes.map(modeName), states.map((st, i) => ({ label: stateName(st), data: modes.map((m) => countOf(m, st)), colours: COLOURS[i % COLOURS.length] })), { stacked: true }),
    figureTable(t('办件（按办理方式和状态）', 'Cases by mode and state'), [t('办理方式', 'Mode'), t('状态', 'State'), t('办件数', 'Cases')],
      s.casesByModeAndState.map((x, i) => [modeName(x.mode), stateName(x.state), cell(`casesByModeAndState[${i}].count`, x.count)]), t('此期间无办件', 'No cases in this period')));

  // Month by month.
  add('series', t('每月受理、发证与退件', 'Opened, licensed and returned per month'),
    bar(s.series.map((b) => b.start.slice(0, 7)), [
      { label: t('受理', 'Opened'), data: s.series.map((b) => b.opened), colours: COLOURS[0] },
      { label: t('发证', 'Licensed'), data: s.series.map((b) => b.licensed), colours: COLOURS[2] },
      { label: t('退件', 'Returned'), data: s.series.map((b) => b.returned), colours: COLOURS[1] },
    ]),
    figureTable(t('每月受理、发证与退件', 'Opened, licensed and returned per month'), [t('月份', 'Month'), t('受理', 'Opened'), t('发证', 'Licensed'), t('退件', 'Returned')],
    s.series.map((b, i) => [b.start.slice(0, 7), cell(`series[${i}].opened`, b.opened), cell(`series[${i}].licensed`, b.licensed), cell(`series[${i}].returned`, b.returned)])));

  // Time to licence and the legal limits passed: figures, no chart.
  const l = s.intakeToLicence;
  const facts = h('div', { class: 'figure-block' },
    figureTable(t('从受理到发证（工作日）', 'Intake to licence (working days)'), [t('项目', 'Figure'), t('数值', 'Value')], [
      [t('已发证办件', 'Licensed cases'), cell('intakeToLicence.licensed', l.licensed)],
      [t('平均工作日', 'Average working days'), l.averageWorkingDays == null ? '—' : l.averageWorkingDays.toFixed(1)],
      [t('90% 办件在（工作日）内', '90th percentile (working days)'), cell('intakeToLicence.p90WorkingDays', l.p90WorkingDays)],
    ]),
    figureTable(t('一般程序超过法定时限', 'Ordinary cases past the legal limit'), [t('项目', 'Figure'), t('办件数', 'Cases')], [
      [t('决定前超过法定时限', 'Legal limit passed before the decision'), cell('legalLimitsPassed', s.legalLimitsPassed)],
    ]));
  return { blocks, facts };
}

route('/supervisor', async (page) => {
  destroyDetached();
  const charts = [];
  const [clock, { departments, workflowDefinitions }] = await Promise.all([serverNow(), gql(DEPARTMENTS)]);
  // A state by the title the deployed definitions give it (a case's, not a task's or a bundle's).
  const titles = {};
  for (const d of workflowDefinitions.nodes.filter((x) => !['supervision-task', 'bundle', 'item-reexamination', 'business-registration'].includes(x.name))) {
    for (const st of d.states) if (st.title && !titles[st.name]) titles[st.name] = st.title;
  }
  const stateName = (x) => (titles[x] ? `${titles[x]}（${x}）` : x);
  const today = officeDate(clock.now);
  const tomorrow = officeDate(new Date(dayStart(today)).getTime() + 36 * 3600 * 1000);
  const divisionNames = Object.fromEntries(departments.flatMap((d) => d.divisions.map((v) => [v.code, `${v.name}`])));
  const deptNames = Object.fromEntries(departments.map((d) => [d.code, d.name]));

  const from = h('input', { type: 'date', name: 'from', value: `${today.slice(0, 4)}-01-01`, required: true });
  const to = h('input', { type: 'date', name: 'to', value: tomorrow, required: true });
  const department = select('department', [['', t('全部部门', 'All departments')], ...departments.map((d) => [d.code, d.name])], '');
  const filters = h('form', { id: 'statistics-filter', class: 'row filters' },
    field(t('起始日期（含）', 'From (inclusive)'), from),
    field(t('截止日期（不含）', 'To (exclusive)'), to),
    field(t('部门', 'Department'), department),
    h('button', { type: 'submit', class: 'primary' }, t('查询', 'Show')));

  const figuresArea = h('section', { 'data-figures': true, 'aria-labelledby': 'sup-figures', class: 'figures-area' });
  const breaches = h('section', { id: 'sla-breaches', 'aria-labelledby': 'sup-breaches' });
  const draws = h('section', { id: 'draws', 'aria-labelledby': 'sup-draws' });
  const suspensions = h('section', { id: 'suspensions', 'aria-labelledby': 'sup-susp' });
  const flagged = h('section', { id: 'flagged-items', 'aria-labelledby': 'sup-flag' });
  page.append(
    h('h1', {}, t('督查', 'Oversight')),
    h('p', { class: 'hint' }, t('统计受理时间在所选期间内的办件；日期按北京时间计。', 'Figures cover the cases opened in the period (Beijing dates).'),
      clock.exact ? t(`服务器时间：${dateTime(clock.now)}。`, ` Server time: ${dateTime(clock.now)}.`) : null),
    filters, figuresArea, breaches, draws, suspensions, flagged);

  const filter = () => ({ from: dayStart(from.value), to: dayStart(to.value), department: department.value || null });

  async function showFigures() {
    const { statistics } = await gql(STATISTICS, { f: filter() });
    // A page replaced meanwhile (another route shown) draws nothing.
    if (!page.isConnected) return;
    destroyCharts(charts);
    const { blocks, facts } = figures(statistics, divisionNames, charts, stateName);
    fill(figuresArea,
      h('h2', { id: 'sup-figures' }, t('统计', 'Figures')),
      h('div', { class: 'figure-grid' }, blocks.map((b) => b.block)),
      facts);
    for (const b of blocks) b.draw();
  }

  async function showBreaches() {
    const f = filter();
    const { slaBreaches } = await gql(BREACHES, { f: { from: f.from, to: f.to, department: f.department } });
    fill(breaches, h('h2', { id: 'sup-breaches' }, t('监管时限违约', 'Breaches of the limits')),
      table(null, [t('时限', 'Limit'), t('任务或办件', 'Task or case'), t('部门', 'Department'), t('处室', 'Division'), t('违约时间', 'Breached at')],
        slaBreaches.map((b) => [word(BREACH_LIMITS, b.limit), link(`/case/${b.taskId}`, b.taskId), b.department ? deptNames[b.department] || b.department : '—', b.division ? divisionNames[b.division] || b.division : '—', dateTime(b.breachedAt)]),
        t('此期间无时限违约', 'No breaches in this period')));
  }

  async function showDraws() {
    const { inspectionDraws } = await gql(DRAWS);
    const seed = h('input', { name: 'seed', inputmode: 'numeric', autocomplete: 'off', pattern: '[0-9]*' });
    const form = h('form', { id: 'draw-inspections', class: 'row' },
      field(t('随机种子（可空）', 'Seed (optional)'), seed, t('填写以前的种子可复现同一抽查；留空则随机生成并记录。', 'An earlier seed repeats its draw; left empty, a random one is recorded.')),
      h('button', { type: 'submit', class: 'primary' }, t('立即随机抽查', 'Draw inspections now')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = form.querySelector('button');
      button.disabled = true;
      try {
        const { drawInspections } = await gql(DRAW, { input: seed.value.trim() ? { seed: seed.value.trim() } : {} });
        const d = drawInspections.draw;
        notify(t(`已抽查：种子 ${d.seed}，候选 ${d.poolSize} 件，抽中 ${d.picks.length} 件`, `Drawn: seed ${d.seed}, pool ${d.poolSize}, ${d.picks.length} picked`), 'ok');
        await showDraws();
      } catch (e) {
        notify(describe(e), 'error');
        button.disabled = false;
      }
    });
    fill(draws, h('h2', { id: 'sup-draws' }, t('双随机抽查', 'Random inspection draws')), form,
      table(null, [t('抽查时间', 'Drawn at'), t('操作人', 'Drawn by'), t('随机种子', 'Seed'), t('候选数', 'Pool'), t('抽中办件', 'Picks')],
        inspectionDraws.map((d) => [dateTime(d.drawnAt), d.drawnBy, h('code', {}, d.seed), String(d.poolSize),
          d.picks.length ? h('ul', { class: 'plain' }, d.picks.map((p) => h('li', {}, link(`/case/${p.caseId}`, p.caseId), ` ${t('信用', 'tier')} ${p.tier}${p.inspector ? ` · ${p.inspector}` : ''}`))) : t('未抽中', 'None')]),
        t('尚无抽查记录', 'No draws yet')));
  }

  async function showSuspensions() {
    const { officerSuspensions } = await gql(SUSPENSIONS);
    fill(suspensions, h('h2', { id: 'sup-susp' }, t('暂停受理的窗口人员', 'Window officers suspended from intake')),
      table(null, [t('人员', 'Officer'), t('部门', 'Department'), t('暂停时间', 'Suspended'), t('本人差错退件/受理', 'Own errors / intake'), t('恢复', 'Reinstated'), t('培训记录', 'Retraining')],
        officerSuspensions.map((s) => [s.officer, deptNames[s.department] || s.department, dateTime(s.suspendedAt), `${s.ownErrors} / ${s.intake}`,
          s.reinstatedAt ? `${dateTime(s.reinstatedAt)}（${s.reinstatedBy || ''}）` : t('未恢复', 'Not yet'), s.retraining || '—']),
        t('无暂停受理的人员', 'No officer is suspended')));
  }

  async function showFlagged() {
    const { flaggedItems } = await gql(FLAGGED);
    fill(flagged, h('h2', { id: 'sup-flag' }, t('待重新梳理的事项', 'Items flagged for re-examination')),
      table(null, [t('事项', 'Item'), t('版本', 'Version'), t('标记时间', 'Flagged'), t('配置问题退件/受理', 'Misconfigured / intake'), t('重新梳理任务', 'Re-examination')],
        flaggedItems.map((f) => [f.itemCode, String(f.itemVersion), dateTime(f.flaggedAt), `${f.misconfigured} / ${f.intake}`, f.reexaminationId ? link(`/case/${f.reexaminationId}`, f.reexaminationId) : '—']),
        t('无被标记的事项', 'No item is flagged')));
  }

  /** Each section on its own: one the API refuses says so, the others still show. */
  const section = (el, id, title, load) => load().catch((e) => fill(el, h('h2', { id }, title), h('p', { class: 'notice error', role: 'alert' }, describe(e))));

  filters.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!from.value || !to.value) return;
    try {
      await Promise.all([showFigures(), section(breaches, 'sup-breaches', t('监管时限违约', 'Breaches of the limits'), showBreaches)]);
    } catch (e) {
      notify(describe(e), 'error');
    }
  });
  for (const control of [from, to, department]) control.addEventListener('change', () => filters.requestSubmit());

  await Promise.all([
    showFigures(),
    section(breaches, 'sup-breaches', t('监管时限违约', 'Breaches of the limits'), showBreaches),
    section(draws, 'sup-draws', t('双随机抽查', 'Random inspection draws'), showDraws),
    section(suspensions, 'sup-susp', t('暂停受理的窗口人员', 'Window officers suspended from intake'), showSuspensions),
    section(flagged, 'sup-flag', t('待重新梳理的事项', 'Items flagged for re-examination'), showFlagged),
  ]);
}, { title: () => t('督查', 'Oversight'), roles: ['supervisor', 'regional_admin'], nav: () => t('督查', 'Oversight') });
