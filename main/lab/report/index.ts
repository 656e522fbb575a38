/**
 * A report from run records: `html` (self-contained, charts as inline SVG),
 * `pdf` (that HTML printed by Chromium), `md`, `csv` (one row per run) and
 * `json` (the records and the claims table as one document). Used by
 * `lab report` and by the Lab API's exportReport.
 */
import type { ClaimRow, Lang, ReportFormat, RunRecord, TraceEvent } from '../contract';
import { checkClaims } from '../claims';
import { renderHtml } from './html';
import { renderCsv, renderMarkdown } from './text';
import { htmlToPdf } from './pdf';

export const REPORT_FORMATS: ReportFormat[] = ['html', 'pdf', 'md', 'csv', 'json'];

export const MIME: Record<ReportFormat, string> = {
  html: 'text/html; charset=utf-8',
  pdf: 'application/pdf',
  md: 'text/markdown; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  json: 'application/json',
};

export interface RenderOptions {
  format: ReportFormat;
  lang?: Lang;
  /** trace.json of each run (same order), for the per-rank timelines */
  traces?: (TraceEvent[] | undefined)[];
  /** HTML → PDF; defaults to headless Chromium */
  printPdf?: (html: string) => Promise<Buffer>;
  generated?: Date;
}

export interface RenderedReport {
  fileName: string;
  mime: string;
  data: Buffer;
  claims: ClaimRow[];
}

export async function renderReport(runs: RunRecord[], o: RenderOptions): Promise<RenderedReport> {
  if (runs.length === 0) throw Object.assign(new Error('a report needs at least one run'), { code: 'bad_request' });
  if (!REPORT_FORMATS.includes(o.format)) throw Object.assign(new Error(`unknown report format '${o.format}'; use one of ${REPORT_FORMATS.join(', ')}`), { code: 'bad_request' });
  const claims = checkClaims(runs);
  const lang = o.lang ?? 'en';
  const generated = o.generated ?? new Date();
  let data: Buffer;
  switch (o.format) {
    case 'html':
      data = Buffer.from(renderHtml(runs, claims, { lang, traces: o.traces, generated }), 'utf8');
      break;
    case 'pdf':
      data = await (o.printPdf ?? htmlToPdf)(renderHtml(runs, claims, { lang, traces: o.traces, generated }));
      break;
    case 'md':
      data = Buffer.from(renderMarkdown(runs, claims, lang, generated), 'utf8');
      break;
    case 'csv':
      data = Buffer.from(renderCsv(runs), 'utf8');
      break;
    case 'json':
      data = Buffer.from(JSON.stringify({ schema: 'paralab.report/1', generated: generated.toISOString(), lang, runs, claims }, null, 2) + '\n', 'utf8');
      break;
  }
  const stamp = generated.toISOString().slice(0, 19).replace(/[:T]/g, '-');
  return { fileName: `paralab-report-${stamp}.${o.format}`, mime: MIME[o.format], data, claims };
}
