/** `lab models`: built-in presets and the model folders the lab can see. */
import { parse } from './args';
import { listModels } from '../engine/model/catalog';
import { formatBytes, formatCount } from './format';

export async function modelsCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse('models', argv, { json: { type: 'boolean' }, path: { type: 'string', multiple: true } });
  const models = await listModels({ paths: [...(values.path ?? []), ...positionals] });
  if (values.json) {
    process.stdout.write(JSON.stringify({ models }, null, 2) + '\n');
    return;
  }
  const rows = models.map((m) => [
    m.id,
    m.source,
    m.hfArchitecture,
    formatCount(m.params),
    `${m.layers}L h${m.hidden} ${m.heads}/${m.kvHeads}h${m.experts ? ` ${m.experts}e×${m.topK}` : ''}`,
    m.dtype,
    formatBytes(m.sizeBytes),
    m.runnable ? 'yes' : `no: ${m.note ?? ''}`,
  ]);
  printTable(['model', 'source', 'architecture', 'params', 'shape', 'dtype', 'size', 'runnable'], rows);
}

export function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  process.stdout.write([line(head), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)].join('\n') + '\n');
}
