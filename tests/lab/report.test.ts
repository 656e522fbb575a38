/** Reports from hand-made runs: every format, self-contained HTML, one CSV row per run, bilingual claims. */
import { describe, expect, it } from 'vitest';
import { renderReport, REPORT_FORMATS } from '../../main/lab/report';
import { renderCsv, csvField, CSV_COLUMNS } from '../../main/lab/report/text';
import { makeRecord } from './runFixtures';

const runs = [
  makeRecord({ label: 'single', verified: true }),
  makeRecord({ degrees: { tp: 2 }, label: 'tp=2, "fast"', outputTokS: 150, verified: true, comm: [0, 1].map((rank) => ({ rank, op: 'all_reduce', count: 32, bytes: 4096, expectedBytes: 4096 })) }),
];
const fakePdf = async (html: string) => Buffer.from(`%PDF-fake ${html.length}`);

describe('reports', () => {
  it('HTML is one self-contained file with the charts as inline SVG', async () => {
    const r = await renderReport(runs, { format: 'html', lang: 'en' });
    const html = r.data.toString('utf8');
    expect(r.mime).toContain('text/html');
    expect(r.fileName).toMatch(/\.html$/);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(6);
    expect(html).not.toMatch(/<script|<link|<img|@import|url\((?!#)/i); // url(#id): SVG clip paths inside the file
    expect(html).not.toMatch(/(src|href)=["']?https?:/i);
    expect(html).toContain('Claims check');
    expect(html).toContain('tp=2, &quot;fast&quot;');
    expect(html).toContain('Test CPU');
    expect(r.claims.filter((c) => c.strategy === 'TP' && c.aspect === 'throughput')[0].verdict).toBe('borne_out');
  });

  it('draws the expert load of an MoE run', async () => {
    const moe = { ...makeRecord({ label: 'moe' }), expert_load: { tokens: [[4, 0, 2, 2], [2, 2, 2, 2]], balancedness: [2, 1] } };
    const html = (await renderReport([moe], { format: 'html' })).data.toString('utf8');
    expect(html).toContain('Tokens routed per expert: moe (max ÷ mean ≤ 2.00)');
    expect((await renderReport([makeRecord()], { format: 'html' })).data.toString('utf8')).not.toContain('Tokens routed per expert');
  });

  it('speaks Chinese with --lang zh-CN', async () => {
    const html = (await renderReport(runs, { format: 'html', lang: 'zh-CN' })).data.toString('utf8');
    expect(html).toContain('结论检验');
    expect(html).toContain('<html lang="zh-CN">');
    const md = (await renderReport(runs, { format: 'md', lang: 'zh-CN' })).data.toString('utf8');
    expect(md).toContain('成立');
  });

  it('CSV: a header and one row per run, quoted where needed', () => {
    const lines = renderCsv(runs).trimEnd().split('\r\n');
    expect(lines).toHaveLength(1 + runs.length);
    expect(lines[0].split(',')).toEqual([...CSV_COLUMNS]);
    expect(lines[2]).toContain('"tp=2, ""fast"""');
    expect(csvField('a\nb')).toBe('"a\nb"');
    expect(csvField(undefined)).toBe('');
  });

  it('Markdown and JSON carry the runs and the claims', async () => {
    const md = (await renderReport(runs, { format: 'md' })).data.toString('utf8');
    expect(md).toMatch(/\| DP \| Memory \|/);
    expect(md).toContain('| single |');
    const json = JSON.parse((await renderReport(runs, { format: 'json' })).data.toString('utf8'));
    expect(json.schema).toBe('paralab.report/1');
    expect(json.runs).toHaveLength(2);
    expect(new Set(json.claims.map((c: { strategy: string }) => c.strategy))).toEqual(new Set(['DP', 'PP', 'TP', 'SP', 'EP']));
  });

  it('PDF goes through the printer it is given; every format renders; bad requests are refused', async () => {
    const pdf = await renderReport(runs, { format: 'pdf', printPdf: fakePdf });
    expect(pdf.data.subarray(0, 4).toString()).toBe('%PDF');
    for (const f of REPORT_FORMATS) expect((await renderReport(runs, { format: f, printPdf: fakePdf })).data.length).toBeGreaterThan(0);
    await expect(renderReport([], { format: 'md' })).rejects.toThrow(/at least one run/);
    await expect(renderReport(runs, { format: 'docx' as never })).rejects.toThrow(/unknown report format/);
  });
});
