/** Shared set-up of the view tests: a fresh Pinia and event hub per test, English, the chart component stubbed (happy-dom has no canvas). */
import { afterEach, beforeEach } from 'vitest';
import { enableAutoUnmount } from '@vue/test-utils';
import { createPinia, setActivePinia } from 'pinia';
import { setLab } from '../../renderer/src/api';
import { setLocale } from '../../renderer/src/i18n';
import { resetLabEvents } from '../../renderer/src/stores/events';
import type { LabApi } from '../../main/lab/contract';
import { scriptedLab } from './labFixtures';

/** vue-echarts stand-in: renders the option it was given as JSON so tests can read the chart's data. */
export async function chartStub() {
  const { defineComponent, h } = await import('vue');
  return {
    default: defineComponent({
      props: { option: { type: Object, required: true } },
      setup: (props) => () => h('div', { class: 'chart-stub', 'data-option': JSON.stringify(props.option) }),
    }),
  };
}

export function freshApp(lab: LabApi): void {
  localStorage.clear();
  setLocale('en');
  resetLabEvents();
  setLab(lab);
  setActivePinia(createPinia());
}

export const option = (el: { attributes(name: string): string | undefined }) => JSON.parse(el.attributes('data-option')!) as Record<string, any>;
export const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Hooks of a view test over a scripted lab: a fresh lab, app state and Pinia
 * before each test (handed to `fresh`), and after it the views unmounted (a
 * view left mounted keeps its timers and store watchers, which would talk to
 * the next test's lab) and the lab unset.
 */
export function useScriptedLab(fresh: (s: ReturnType<typeof scriptedLab>) => void): void {
  enableAutoUnmount(afterEach);
  beforeEach(() => {
    const s = scriptedLab();
    freshApp(s.lab);
    fresh(s);
  });
  afterEach(() => setLab(null));
}
