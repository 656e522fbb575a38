/**
 * Runs domain: the run list, which runs are selected, their full records and
 * traces (fetched once, cached), the claims for the selection, and report
 * export. Only the latest list request may write the list.
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { ClaimRow, ReportFormat, RunRecord, RunSummary, TraceEvent } from '../../../main/lab/contract';
import { lab } from '../api';
import { locale } from '../i18n';
import { saveReport } from '../save';
import { errorText } from './events';

export const useRunsStore = defineStore('runs', () => {
  const runs = ref<RunSummary[]>([]);
  const selected = ref<string[]>([]);
  const records = ref<Record<string, RunRecord>>({});
  const traces = ref<Record<string, TraceEvent[] | { error: string }>>({});
  const claims = ref<ClaimRow[]>([]);
  const loading = ref(false);
  const loaded = ref(false);
  const error = ref<string | null>(null);
  const exporting = ref<ReportFormat | null>(null);
  const exportResult = ref<{ ok: boolean; text: string } | null>(null);
  let seq = 0;

  const selectedRecords = computed(() => selected.value.map((id) => records.value[id]).filter((r): r is RunRecord => !!r));

  /** Reloads the list; `select` (new run ids) become the selection. */
  async function refresh(select?: string[]): Promise<void> {
    const mine = ++seq;
    loading.value = true;
    try {
      const list = await lab().listRuns();
      if (mine !== seq) return;
      runs.value = list;
      error.value = null;
      const known = new Set(list.map((r) => r.id));
      selected.value = (select?.length ? select : selected.value).filter((id) => known.has(id));
      if (!selected.value.length && list.length) selected.value = list.slice(0, Math.min(4, list.length)).map((r) => r.id);
      await loadSelected();
    } catch (e) {
      if (mine === seq) error.value = errorText(e);
    } finally {
      if (mine === seq) {
        loading.value = false;
        loaded.value = true;
      }
    }
  }

  async function loadSelected(): Promise<void> {
    const missing = selected.value.filter((id) => !records.value[id]);
    const got = await Promise.all(missing.map((id) => lab().getRun(id).then((r) => [id, r] as const, (e: unknown) => [id, errorText(e)] as const)));
    const next = { ...records.value };
    for (const [id, r] of got) {
      if (typeof r === 'string') error.value = r;
      else next[id] = r;
    }
    records.value = next;
  }

  async function toggle(id: string): Promise<void> {
    selected.value = selected.value.includes(id) ? selected.value.filter((s) => s !== id) : [...selected.value, id];
    await loadSelected();
  }

  async function loadTrace(id: string): Promise<void> {
    if (traces.value[id]) return;
    try {
      const t = await lab().getTrace(id);
      traces.value = { ...traces.value, [id]: t };
    } catch (e) {
      traces.value = { ...traces.value, [id]: { error: errorText(e) } };
    }
  }

  async function loadClaims(): Promise<void> {
    try {
      claims.value = await lab().claims([...selected.value]);
    } catch (e) {
      error.value = errorText(e);
    }
  }

  async function remove(id: string): Promise<void> {
    try {
      await lab().deleteRun(id);
      selected.value = selected.value.filter((s) => s !== id);
      await refresh();
    } catch (e) {
      error.value = errorText(e);
    }
  }

  async function exportAs(format: ReportFormat): Promise<void> {
    exporting.value = format;
    exportResult.value = null;
    try {
      const where = await saveReport({ runIds: [...selected.value], format, lang: locale.value });
      exportResult.value = where === null ? null : { ok: true, text: where };
    } catch (e) {
      exportResult.value = { ok: false, text: errorText(e) };
    } finally {
      exporting.value = null;
    }
  }

  return { runs, selected, selectedRecords, records, traces, claims, loading, loaded, error, exporting, exportResult, refresh, toggle, loadSelected, loadTrace, loadClaims, remove, exportAs };
});
