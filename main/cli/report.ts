/**
 * `lab report DIR… --format html|pdf|md|csv|json --out FILE [--lang zh-CN|en]`:
 * a report from run folders. Each DIR is a run folder (with run.json) or a
 * runs directory, whose run folders are all taken (oldest first). Without
 * --out a text format goes to stdout; a PDF needs --out. With --json stdout
 * is `{"file", "format", "runs", "claims"}`.
 */
import path from 'node:path';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { parse, UsageError } from './args';
import { listRunFolders, readRunFolder, readTrace } from '../lab/record';
import { REPORT_FORMATS, renderReport } from '../lab/report';
import type { Lang, ReportFormat } from '../lab/contract';

/** Where relative paths start: the user's directory (`npm run` moves to the package root but keeps it in INIT_CWD). */
export function userPath(p: string): string {
  return path.resolve(process.env['INIT_CWD'] || process.cwd(), p);
}

/** Run folders named by the arguments, in order, without duplicates. */
export function expandRunDirs(args: string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    const p = userPath(a);
    if (!existsSync(p)) throw new UsageError(`${a} does not exist: give run folders (or a runs directory) written by \`lab bench --out DIR\``);
    const found = existsSync(path.join(p, 'run.json')) ? [p] : listRunFolders(p).reverse();
    if (found.length === 0) throw new UsageError(`${a} holds no run.json: give run folders (or a runs directory) written by \`lab bench --out DIR\``);
    for (const f of found) if (!out.includes(f)) out.push(f);
  }
  return out;
}

export async function reportCommand(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse('report', argv, {
    format: { type: 'string' },
    out: { type: 'string' },
    lang: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length === 0) throw new UsageError('report: give one or more run folders, e.g. lab report runs/ --format html --out report.html');
  const format = (v.format ?? (v.out ? path.extname(v.out).slice(1) : 'md')) as ReportFormat;
  if (!REPORT_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${REPORT_FORMATS.join(', ')}; got '${v.format ?? format}'`);
  const lang = (v.lang ?? 'en') as Lang;
  if (lang !== 'en' && lang !== 'zh-CN') throw new UsageError(`--lang must be en or zh-CN; got '${v.lang}'`);
  if (format === 'pdf' && !v.out) throw new UsageError('--format pdf needs --out FILE.pdf');
  if (v.json && !v.out) throw new UsageError('--json needs --out FILE (stdout carries the JSON summary)');
  const dirs = expandRunDirs(positionals);
  const runs = dirs.map((d) => readRunFolder(d));
  const traces = dirs.map((d) => readTrace(d));
  const report = await renderReport(runs, { format, lang, traces });
  if (!v.out) {
    process.stdout.write(report.data);
    return;
  }
  const out = userPath(v.out);
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, report.data);
  renameSync(tmp, out);
  if (v.json) {
    process.stdout.write(JSON.stringify({ file: out, format, runs: runs.map((r) => r.id), claims: report.claims }) + '\n');
    return;
  }
  const tally = (k: string) => report.claims.filter((c) => c.verdict === k).length;
  process.stdout.write(`${out} (${format}, ${runs.length} run${runs.length === 1 ? '' : 's'}; claims: ${tally('borne_out')} borne out, ${tally('not_borne_out')} not borne out, ${tally('not_measured')} not measured)\n`);
}
