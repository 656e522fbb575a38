// @vitest-environment happy-dom
/** The language switch: t() follows the reactive locale, and the app shell's labels change with it. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { enableAutoUnmount, flushPromises, mount } from '@vue/test-utils';
import { createPinia } from 'pinia';
import { nextTick } from 'vue';
import App from '../../renderer/src/App.vue';
import { setLab } from '../../renderer/src/api';
import { detectLocale, locale, setLocale, t, type MessageKey } from '../../renderer/src/i18n';
import { fakeLab } from './fixtures';
import { resetLabEvents } from '../../renderer/src/stores/events';

vi.mock('vue-echarts', async () => {
  const { defineComponent, h } = await import('vue');
  return { default: defineComponent({ setup: () => () => h('div') }) };
});

// a view left mounted keeps its timers and store watchers: it would talk to the next test's lab
enableAutoUnmount(afterEach);
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

describe('i18n: keys built at run time exist in both languages', () => {
  it('has every dynamic key the views compose, translated', () => {
    const families: Record<string, readonly string[]> = {
      'claims.a': ['memory', 'communication', 'throughput', 'latency'],
      'claims.v': ['borne_out', 'not_borne_out', 'not_measured'],
      'cmp.m': ['ttft_ms', 'tpot_ms', 'itl_ms', 'e2el_ms'],
      'cmp.col': ['ranks', 'ttft50', 'ttft99', 'tpot50', 'tpot99', 'itl50', 'e2el50', 'prefill', 'output', 'req', 'goodput'],
      'lab.axis': ['dp', 'pp', 'tp', 'sp', 'ep'],
      'lab.job': ['running', 'done', 'failed', 'cancelled'],
      'lab.wl': ['prefill', 'decode', 'serving', 'prefill.hint', 'decode.hint', 'serving.hint'],
      'runs.c': ['pass', 'fail', 'unchecked'],
      'chat.reason': ['eos', 'length', 'stop'],
      'learn.aspect': ['memory', 'comm', 'tput', 'latency'],
      ...Object.fromEntries(['dp', 'pp', 'tp', 'sp', 'ep'].map((s) => [`learn.${s}`, ['name', 'what', 'memory', 'comm', 'tput', 'latency']])),
      nav: ['models', 'lab', 'compare', 'chat', 'reports', 'learn'],
    };
    const keys = Object.entries(families).flatMap(([f, ks]) => ks.map((k) => `${f}.${k}` as MessageKey));
    for (const k of keys) {
      setLocale('en');
      const en = t(k);
      setLocale('zh-CN');
      const zh = t(k);
      expect(en, k).toMatch(/\S/);
      expect(zh, k).toMatch(/\S/);
      if (!/^[A-Z0-9 ._/-]+$/.test(en) && !/p50|p99/.test(en)) expect(zh, k).not.toBe(en);
    }
  });
});
