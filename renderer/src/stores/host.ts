/** Host domain: which door the UI uses and what the lab's host is (info()), for the status bar. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { LabInfo } from '../../../main/lab/contract';
import { door, lab, type Door } from '../api';

export const useHostStore = defineStore('host', () => {
  const info = ref<LabInfo | null>(null);
  const via = ref<Door>(door());
  const error = ref<string | null>(null);

  async function load(): Promise<void> {
    try {
      info.value = await lab().info();
      error.value = null;
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  return { info, via, error, load };
});
