/**
 * Plain-text report formats and the number formatting they share with HTML:
 * Markdown (for pasting into homework: runs, claims, per-rank tables) and CSV
 * (one row per run, RFC 4180 quoting, for spreadsheets).
 */
import type { ClaimRow, Lang, RunRecord } from '../contract';
import { aspectLabel, labels, type L } from './i18n';

export function fmtNum(x: number | undefined | null, d = 2): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  return x.toFixed(d);
}

export function fmtBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}

export function correctnessText(r: RunRecord, l: L): { text: string; long: string; cls: string } {
  const c = r.correctness;
  if (!c.checked) return { text: l.unchecked, long: `${l.unchecked}: ${c.note}`, cls: 'na' };
  const passed = c['passed'] !== false && c.tokens_equal !== false;
  const diff = c.max_abs_logit_diff ?? 0;
  const tol = Number(c['tolerance'] ?? NaN);
  return {
    text: passed ? l.pass : l.fail,
    long: `${passed ? l.pass : l.fail}: ${l.tokensEqual} ${String(c.tokens_equal)}, ${l.maxDiff} ${diff.toExponential(2)}${Number.isFinite(tol) ? ` (${l.tolerance} ${tol})` : ''} — ${c.note}`,
    cls: passed ? 'ok' : 'bad',
  };
}

const mdCell = (s: unknown) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
function mdTable(head: string[], rows: unknown[][]): string {
  return [`| ${head.map(mdCell).join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n');
}

export function renderMarkdown(runs: RunRecord[], claims: ClaimRow[], lang: Lang = 'en', generated = new Date()): string {
  const l = labels(lang);
  const pick = (t: { en: string; zh: string }) => (lang === 'zh-CN' ? t.zh : t.en);
  const out: string[] = [];
  out.push(`# ${l.title}`, '', `${l.generated}: ${generated.toISOString().replace('T', ' ').slice(0, 19)} UTC`, '');
  out.push(`## ${l.runs}`, '');
  out.push(
    mdTable(
      [l.run, l.spec, l.world, l.workload, l.prefillTokS, l.outputTokS, l.requestS, 'TTFT p50 ms', 'TTFT p99 ms', 'TPOT p50 ms', 'TPOT p99 ms', 'ITL p50 ms', 'E2EL p50 ms', l.correctness],
      runs.map((r) => {
        const m = r.metrics;
        return [r.label, `\`${r.parallel.spec}\``, r.parallel.world, r.workload.kind, fmtNum(m.prefill_tok_s, 1), fmtNum(m.output_tok_s, 1), fmtNum(m.request_s), fmtNum(m.ttft_ms.p50), fmtNum(m.ttft_ms.p99), fmtNum(m.tpot_ms.p50), fmtNum(m.tpot_ms.p99), fmtNum(m.itl_ms?.p50), fmtNum(m.e2el_ms?.p50), correctnessText(r, l).text];
      }),
    ),
    '',
  );
  out.push(`## ${l.claims}`, '', l.claimsIntro, '');
  out.push(mdTable([l.strategy, l.aspect, l.claim, l.evidence, l.verdict], claims.map((c) => [c.strategy, aspectLabel(l, c.aspect), pick(c.claim), pick(c.evidence), l[c.verdict]])), '');
  out.push(`## ${l.details}`, '');
  for (const r of runs) {
    const d = r.device;
    out.push(`### ${r.label}`, '');
    out.push(`- ${l.model}: ${r.model.id} (${r.model.arch}, ${fmtNum(r.model.params / 1e6, 1)}M params, ${r.model.dtype})`);
    out.push(`- ${l.spec}: \`${r.parallel.spec}\` (${String(r.parallel['mesh'] ?? '')}), world ${r.parallel.world}`);
    out.push(`- ${l.workload}: \`${JSON.stringify(r.workload)}\``);
    out.push(`- ${l.device}: ${d.kind}, ${l.threads} ${d.threads_per_rank}; ${l.hostCpu}: ${d.host_cpu}, ${l.cores} ${String(d['cores'] ?? '?')}${d['load_avg_1m'] !== undefined ? `, ${l.load} ${String(d['load_avg_1m'])}` : ''}`);
    out.push(`- ${l.correctness}: ${correctnessText(r, l).long}`, '');
    out.push(
      mdTable(
        [l.rank, l.weights, l.kv, l.activation, l.rss, `${l.compute} ms`, `${l.transfer} ms`, `${l.wait} ms`, `${l.bubble} ms`],
        r.ranks.map((k) => [k.rank, fmtBytes(k.memory?.weights_bytes), fmtBytes(k.memory?.kv_cache_bytes), fmtBytes(k.memory?.activation_peak_bytes), fmtBytes(k.memory?.rss_peak_bytes), fmtNum(k.time?.compute_ms, 1), fmtNum(k.time?.comm_ms, 1), fmtNum(k.time?.wait_ms, 1), fmtNum(k.time?.bubble_ms, 1)]),
      ),
      '',
    );
    if (r.comm.length > 0) {
      out.push(mdTable([l.rank, l.op, l.count, l.expectedCount, l.bytesSent, l.expectedBytes, l.gbs], r.comm.map((c) => [c.rank, c.op, c.count, c.expected_count, c.bytes_sent, c.expected_bytes_sent, fmtNum(Number(c['gb_s'] ?? 0), 3)])), '');
    }
  }
  return out.join('\n');
}

/** The CSV columns: one row per run. */
export const CSV_COLUMNS = [
  'id', 'label', 'created', 'model', 'spec', 'world', 'dp', 'pp', 'tp', 'sp', 'ep', 'workload', 'prompt_len', 'output_len', 'batch', 'requests', 'rate', 'seed',
  'device', 'threads_per_rank', 'host_cpu',
  'output_tok_s', 'prefill_tok_s', 'decode_tok_s', 'request_s', 'goodput_req_s',
  'ttft_mean_ms', 'ttft_p50_ms', 'ttft_p90_ms', 'ttft_p99_ms', 'tpot_mean_ms', 'tpot_p50_ms', 'tpot_p90_ms', 'tpot_p99_ms',
  'itl_mean_ms', 'itl_p50_ms', 'itl_p90_ms', 'itl_p99_ms', 'e2el_mean_ms', 'e2el_p50_ms', 'e2el_p90_ms', 'e2el_p99_ms',
  'weights_bytes_total', 'weights_bytes_max_rank', 'rss_peak_bytes_max_rank', 'comm_bytes_sent', 'comm_bytes_expected',
  'correctness', 'max_abs_logit_diff',
] as const;

export function csvField(v: unknown): string {
  const s = v === undefined || v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function renderCsv(runs: RunRecord[]): string {
  const rows = runs.map((r) => {
    const m = r.metrics;
    const w = r.workload;
    const st = (k: 'ttft_ms' | 'tpot_ms' | 'itl_ms' | 'e2el_ms') => [m[k]?.mean, m[k]?.p50, m[k]?.p90, m[k]?.p99];
    const weights = r.ranks.map((k) => k.memory?.weights_bytes ?? 0);
    const c = r.correctness;
    const verdict = !c.checked ? 'unchecked' : c['passed'] === false || c.tokens_equal === false ? 'fail' : 'pass';
    return [
      r.id, r.label, r.created, r.model.id, r.parallel.spec, r.parallel.world, r.parallel.dp, r.parallel.pp, r.parallel.tp, r.parallel.sp, r.parallel.ep, w.kind, w['prompt_len'], w['output_len'], w['batch'], w['requests'], w['rate'], w['seed'],
      r.device.kind, r.device.threads_per_rank, r.device.host_cpu,
      m.output_tok_s, m.prefill_tok_s, m['decode_tok_s'], m.request_s, m['goodput_req_s'],
      ...st('ttft_ms'), ...st('tpot_ms'), ...st('itl_ms'), ...st('e2el_ms'),
      weights.reduce((a, b) => a + b, 0), Math.max(...weights), Math.max(...r.ranks.map((k) => k.memory?.rss_peak_bytes ?? 0)),
      r.comm.reduce((a, x) => a + x.bytes_sent, 0), r.comm.reduce((a, x) => a + x.expected_bytes_sent, 0),
      verdict, c.checked ? c.max_abs_logit_diff : '',
    ].map(csvField).join(',');
  });
  return [CSV_COLUMNS.join(','), ...rows].join('\r\n') + '\r\n';
}
