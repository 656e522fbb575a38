// @vitest-environment happy-dom
/** The language switch: t() follows the reactive locale, and the app shell's labels change with it. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import { createPinia } from 'pinia';
import { nextTick } from 'vue';
import App from '../../renderer/src/App.vue';
import { setLab } from '../../renderer/src/api';
import { detectLocale, locale, setLocale, t } from '../../renderer/src/i18n';
import { fakeLab } from './fixtures';
import { resetLabEvents } from '../../renderer/src/stores/events';

vi.mock('vue-echarts', async () => {
  const { defineComponent, h } = await import('vue');
  return { default: defineComponent({ setup: () => () => h('div') }) };
});

afterEach(() => {
  setLocale('en');
  setLab(null);
  localStorage.clear();
});

describe('i18n', () => {
  it('starts from the saved choice, else from the browser language', () => {
    expect(detectLocale(null, 'zh-TW')).toBe('zh-CN');
    expect(detectLocale(null, 'en-GB')).toBe('en');
    expect(detectLocale('zh-CN', 'en-US')).toBe('zh-CN');
    expect(detectLocale('fr', undefined)).toBe('en');
  });

  it('switches t() and remembers the choice', async () => {
    setLocale('en');
    expect(t('models.count', { n: 4 })).toBe('4 models');
    setLocale('zh-CN');
    expect(locale.value).toBe('zh-CN');
    expect(t('models.count', { n: 4 })).toBe('4 个模型');
    expect(localStorage.getItem('paralab.locale')).toBe('zh-CN');
    await nextTick();
    expect(document.documentElement.lang).toBe('zh-CN');
  });

  it('relabels the app shell when the language toggle is pressed', async () => {
    resetLabEvents();
    setLab(fakeLab().lab);
    const w = mount(App, { global: { plugins: [createPinia()] } });
    await flushPromises();
    expect(w.get('[data-testid="nav-models"]').text()).toBe('Models');
    expect(w.get('h1').text()).toBe('Models');
    await w.get('[data-testid="locale-zh-CN"]').trigger('click');
    expect(w.get('[data-testid="nav-models"]').text()).toBe('模型');
    expect(w.get('h1').text()).toBe('模型');
    expect(w.get('thead').text()).toContain('参数量');
    await w.get('[data-testid="nav-chat"]').trigger('click');
    expect(w.get('h1').text()).toBe('对话');
    expect(w.get('[data-testid="chat-send"]').text()).toBe('发送');
    await w.get('[data-testid="nav-lab"]').trigger('click');
    expect(w.get('h1').text()).toBe('实验');
    await w.get('[data-testid="locale-en"]').trigger('click');
    expect(w.get('h1').text()).toBe('Lab');
    expect(w.get('[data-testid="nav-compare"]').text()).toBe('Compare');
    w.unmount();
  });
});
