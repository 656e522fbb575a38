/**
 * Models domain: what listModels returns for the built-in presets plus the
 * folders the user added here (remembered in localStorage), with loading and
 * error state. Only the latest request may write the list.
 */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { ModelSummary } from '../../../main/lab/contract';
import { lab } from '../api';

const PATHS_KEY = 'paralab.modelPaths';

function loadPaths(): string[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(PATHS_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((p): p is string => typeof p === 'string') : [];
  } catch {
    return [];
  }
}

export const useModelsStore = defineStore('models', () => {
  const models = ref<ModelSummary[]>([]);
  const paths = ref<string[]>(loadPaths());
  const loading = ref(false);
  const loaded = ref(false);
  const error = ref<string | null>(null);
  let seq = 0;

  async function refresh(): Promise<void> {
    const mine = ++seq;
    loading.value = true;
    error.value = null;
    try {
      const list = await lab().listModels({ paths: [...paths.value] });
      if (mine === seq) models.value = list;
    } catch (e) {
      if (mine === seq) error.value = e instanceof Error ? e.message : String(e);
    } finally {
      if (mine === seq) {
        loading.value = false;
        loaded.value = true;
      }
    }
  }

  function savePaths(): void {
    try {
      localStorage.setItem(PATHS_KEY, JSON.stringify(paths.value));
    } catch {
      // storage may be unavailable (private mode); the list still works for this session
    }
  }

  async function addPath(path: string): Promise<void> {
    const p = path.trim();
    if (!p || paths.value.includes(p)) return;
    paths.value = [...paths.value, p];
    savePaths();
    await refresh();
  }

  async function removePath(path: string): Promise<void> {
    paths.value = paths.value.filter((p) => p !== path);
    savePaths();
    await refresh();
  }

  return { models, paths, loading, loaded, error, refresh, addPath, removePath };
});
