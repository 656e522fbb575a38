/**
 * The HTML report: one self-contained file — inline CSS, charts as inline SVG
 * rendered on the server (charts.ts), no script, no font, no image, no link
 * to anything outside it — so it opens offline, mails as one attachment and
 * prints to PDF as it looks. Sections: runs summary, comparison charts,
 * claims check, per-run timeline, configuration and environment, per-rank
 * memory / time, comm ledger, correctness.
 */
import type { ClaimRow, Lang, RunRecord, TraceEvent } from '../contract';
import { aspectLabel, labels, type L } from './i18n';
import { commChart, expertLoadChart, latencyChart, memoryChart, percentileChart, throughputChart, timeChart, timelineChart } from './charts';
import { correctnessText, fmtBytes, fmtNum } from './text';

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const CSS = `
:root { color-scheme: light; --fg:#1d2330; --muted:#5b6577; --line:#d9dee7; --bg:#fff; --head:#f3f5f9; --ok:#1f7a4a; --bad:#b3261e; --na:#7d7d7d; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 24px 32px 48px; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 15px; margin: 22px 0 8px; }
.meta { color: var(--muted); margin-bottom: 16px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 12.5px; }
th, td { border: 1px solid var(--line); padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.chart { margin: 10px 0 18px; page-break-inside: avoid; break-inside: avoid; }
.chart svg { max-width: 100%; height: auto; }
.v-borne_out, .ok { color: var(--ok); font-weight: 600; } .v-not_borne_out, .bad { color: var(--bad); font-weight: 600; } .v-not_measured, .na { color: var(--na); }
.note { color: var(--muted); font-size: 12px; }
.run { page-break-before: auto; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
@media print { body { padding: 0 8mm; } h2 { break-after: avoid; } table { break-inside: auto; } tr { break-inside: avoid; } }
`;

function table(head: string[], rows: (string | { num: string })[][]): string {
  const cell = (c: string | { num: string }) => (typeof c === 'string' ? `<td>${c}</td>` : `<td class="num">${c.num}</td>`);
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

const num = (x: number | undefined | null, d = 2) => ({ num: esc(fmtNum(x, d)) });

function runsTable(runs: RunRecord[], l: L): string {
  return table(
    [l.run, l.spec, l.world, l.workload, l.prefillTokS, l.outputTokS, l.requestS, 'TTFT p50 / p99 ms', 'TPOT p50 / p99 ms', 'ITL p50 ms', 'E2EL p50 ms', l.correctness],
    runs.map((r) => {
      const m = r.metrics;
      const c = correctnessText(r, l);
      return [
        esc(r.label),
        `<code>${esc(r.parallel.spec)}</code>`,
        num(r.parallel.world, 0),
        esc(r.workload.kind),
        num(m.prefill_tok_s, 1),
        num(m.output_tok_s, 1),
        num(m.request_s, 2),
        { num: `${esc(fmtNum(m.ttft_ms.p50))} / ${esc(fmtNum(m.ttft_ms.p99))}` },
        { num: `${esc(fmtNum(m.tpot_ms.p50))} / ${esc(fmtNum(m.tpot_ms.p99))}` },
        num(m.itl_ms?.p50),
        num(m.e2el_ms?.p50),
        `<span class="${c.cls}">${esc(c.text)}</span>`,
      ];
    }),
  );
}

export function claimsTable(claims: ClaimRow[], lang: Lang, l: L): string {
  const pick = (t: { en: string; zh: string }) => (lang === 'zh-CN' ? t.zh : t.en);
  return table(
    [l.strategy, l.aspect, l.claim, l.evidence, l.verdict],
    claims.map((c) => [`<b>${esc(c.strategy)}</b>`, esc(aspectLabel(l, c.aspect)), esc(pick(c.claim)), esc(pick(c.evidence)), `<span class="v-${c.verdict}">${esc(l[c.verdict])}</span>`]),
  );
}

function runDetails(r: RunRecord, trace: TraceEvent[] | undefined, l: L): string {
  const d = r.device;
  const versions = Object.entries((d['versions'] as Record<string, string>) ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
  const model = r.model;
  const cfg = table(
    ['', ''],
    [
      [esc(l.model), esc(`${model.id} (${model.arch}, ${fmtNum(model.params / 1e6, 1)}M params, ${model.layers} layers, hidden ${model.hidden}, ${model.heads}/${model.kv_heads} heads${model.experts ? `, ${model.experts} experts top-${model.top_k}` : ''}, ${model.dtype})`)],
      [esc(l.spec), esc(`${r.parallel.spec} — ${String(r.parallel['mesh'] ?? '')}, world ${r.parallel.world}`)],
      [esc(l.workload), `<code>${esc(JSON.stringify(r.workload))}</code>`],
      [esc(l.device), esc(`${d.kind}, ${l.threads} ${d.threads_per_rank}`)],
      [esc(l.hostCpu), esc(`${d.host_cpu} · ${l.cores} ${String(d['cores'] ?? '?')} · ${l.hostMemory} ${fmtBytes(Number(d['memory_bytes'] ?? 0))} · ${String(d['platform'] ?? '')}${d['load_avg_1m'] !== undefined ? ` · ${l.load} ${String(d['load_avg_1m'])}` : ''}`)],
      [esc(l.versions), esc(versions)],
      [esc(l.correctness), esc(correctnessText(r, l).long)],
    ],
  );
  const ranks = table(
    [l.rank, l.layers, l.weights, l.kv, l.activation, l.rss, `${l.compute} ms`, `${l.transfer} ms`, `${l.wait} ms`, `${l.bubble} ms`],
    r.ranks.map((k) => [
      num(k.rank, 0),
      esc(Array.isArray(k['layers']) ? `${(k['layers'] as number[])[0]}–${(k['layers'] as number[])[1]}` : ''),
      { num: esc(fmtBytes(k.memory?.weights_bytes)) },
      { num: esc(fmtBytes(k.memory?.kv_cache_bytes)) },
      { num: esc(fmtBytes(k.memory?.activation_peak_bytes)) },
      { num: esc(fmtBytes(k.memory?.rss_peak_bytes)) },
      num(k.time?.compute_ms, 1),
      num(k.time?.comm_ms, 1),
      num(k.time?.wait_ms, 1),
      num(k.time?.bubble_ms, 1),
    ]),
  );
  const comm =
    r.comm.length === 0
      ? ''
      : table(
          [l.rank, l.op, l.count, l.expectedCount, l.bytesSent, l.expectedBytes, 'ms', `${l.wait} ms`, l.gbs],
          r.comm.map((c) => [num(c.rank, 0), esc(c.op), num(c.count, 0), num(c.expected_count, 0), { num: esc(fmtBytes(c.bytes_sent)) }, { num: esc(fmtBytes(c.expected_bytes_sent)) }, num(Number(c['ms'] ?? 0), 2), num(Number(c['wait_ms'] ?? 0), 2), num(Number(c['gb_s'] ?? 0), 3)]),
        );
  const tl = trace ? timelineChart(r, trace, l) : null;
  const source = (r['trace'] as { source?: string } | undefined)?.source;
  const timeline = tl ? `<div class="chart">${tl}</div>${source === 'reconstructed' ? `<p class="note">${esc(l.timelineNote)}</p>` : ''}` : `<p class="note">${esc(l.noTrace)}</p>`;
  const experts = expertLoadChart(r, l);
  return `<section class="run"><h3>${esc(r.label)} <span class="note">${esc(r.id)}</span></h3>${cfg}${ranks}${comm}${timeline}${experts ? `<div class="chart">${experts}</div>` : ''}</section>`;
}

export function renderHtml(runs: RunRecord[], claims: ClaimRow[], o: { lang?: Lang; traces?: (TraceEvent[] | undefined)[]; generated?: Date } = {}): string {
  const lang = o.lang ?? 'en';
  const l = labels(lang);
  const when = (o.generated ?? new Date()).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  const comm = commChart(runs, l);
  const charts = [throughputChart(runs, l), latencyChart(runs, l), percentileChart(runs, l), memoryChart(runs, l), ...(comm ? [comm] : []), timeChart(runs, l)];
  return `<!doctype html>
<html lang="${lang === 'zh-CN' ? 'zh-CN' : 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(l.title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${esc(l.title)}</h1>
<div class="meta">${esc(l.generated)}: ${esc(when)} · ${runs.length} ${esc(l.runs.toLowerCase())} · ${esc([...new Set(runs.map((r) => r.model.id))].join(', '))}</div>
<h2>${esc(l.runs)}</h2>
${runsTable(runs, l)}
<h2>${esc(l.charts)}</h2>
${charts.map((svg) => `<div class="chart">${svg}</div>`).join('\n')}
<h2>${esc(l.claims)}</h2>
<p class="note">${esc(l.claimsIntro)}</p>
${claimsTable(claims, lang, l)}
<h2>${esc(l.details)}</h2>
${runs.map((r, i) => runDetails(r, o.traces?.[i], l)).join('\n')}
</body>
</html>
`;
}
