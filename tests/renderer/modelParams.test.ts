// @vitest-environment happy-dom
/** The parameters chart builder is pure: one bar per model, sorted, coloured by runnable. */
import { describe, expect, it } from 'vitest';
import { modelParamsOption } from '../../renderer/src/charts/modelParams';
import { DARK, LIGHT } from '../../renderer/src/charts/palette';
import { formatBytes, formatParams } from '../../renderer/src/format';
import { MODELS } from './fixtures';

describe('modelParamsOption', () => {
  it('returns one bar per model, smallest first (drawn bottom-up), with matching category names', () => {
    const o = modelParamsOption(MODELS, LIGHT, 'Parameters');
    expect(o.yAxis.data).toEqual(['synth-llama-tiny', 'synth-moe-tiny', 'synth-llama-small']);
    expect(o.series).toHaveLength(1);
    expect(o.series[0].name).toBe('Parameters');
    expect(o.series[0].data.map((d) => d.value)).toEqual([281_664, 520_000, 155_300_000]);
    expect(o.series[0].data.map((d) => d.itemStyle.color)).toEqual([LIGHT.accent, LIGHT.accentMuted, LIGHT.accent]);
    expect(o.xAxis.type).toBe('log');
    expect([o.xAxis.min, o.xAxis.max]).toEqual([1e5, 1e9]);
  });

  it('follows the palette and leaves its input alone', () => {
    const input = [...MODELS].reverse();
    const before = input.map((m) => m.id);
    const o = modelParamsOption(input, DARK, 'x');
    expect(input.map((m) => m.id)).toEqual(before);
    expect(o.yAxis.axisLabel.color).toBe(DARK.text);
    expect(modelParamsOption([], DARK, 'x').series[0].data).toEqual([]);
  });
});

describe('format', () => {
  it('writes parameter counts and sizes the way people read them', () => {
    expect(formatParams(155_300_000)).toBe('155.3M');
    expect(formatParams(281_664)).toBe('281.7K');
    expect(formatParams(7_241_732_096)).toBe('7.2B');
    expect(formatParams(512)).toBe('512');
    expect(formatParams(1e6)).toBe('1M');
    expect(formatBytes(621_200_000)).toBe('592.4 MiB');
    expect(formatBytes(0)).toBe('0 B');
  });
});
