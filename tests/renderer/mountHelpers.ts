/** Shared set-up of the view tests: a fresh Pinia and event hub per test, English, the chart component stubbed (happy-dom has no canvas). */
import { createPinia, setActivePinia } from 'pinia';
import { setLab } from '../../renderer/src/api';
import { setLocale } from '../../renderer/src/i18n';
import { resetLabEvents } from '../../renderer/src/stores/events';
import type { LabApi } from '../../main/lab/contract';

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
