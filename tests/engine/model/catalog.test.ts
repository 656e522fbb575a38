import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { QK_PROJECTION_NOTE, listModels, resolveModel } from '../../../main/engine/model/catalog';
import { paralabCacheDir, paralabModelPaths, hfHubDir } from '../../../main/engine/model/paths';
import { PRESET_IDS, presetConfig } from '../../../main/engine/model/presets';
import { writeSyntheticModel } from '../../../main/engine/model/synth';
import { paramCount } from '../../../main/engine/model/types';
import { modelError, tmpDir } from './helpers';

let root: string;
let env: Record<string, string>;
let goodModel: string;
let hfSnapshot: string;

/** Layout: cache/ (PARALAB_CACHE), zoo/{good,broken,empty-ish}/ (PARALAB_MODELS), single/ (a path), hf/hub/models--acme--tiny/ */
beforeAll(async () => {
  root = tmpDir();
  const zoo = path.join(root, 'zoo');
  goodModel = path.join(zoo, 'good');
  fs.mkdirSync(goodModel, { recursive: true });
  await writeSyntheticModel(goodModel, presetConfig('synth-llama-tiny'), { seed: 5 });
  fs.mkdirSync(path.join(zoo, 'broken'));
  fs.writeFileSync(path.join(zoo, 'broken', 'config.json'), '{"architectures": ["LlamaForCausalLM"], "hidden_size": ');
  fs.mkdirSync(path.join(zoo, 'no-weights'));
  fs.copyFileSync(path.join(goodModel, 'config.json'), path.join(zoo, 'no-weights', 'config.json'));
  fs.mkdirSync(path.join(zoo, 'not-a-model'));
  // OLMoE: q/k norm over the whole projection, which runs everywhere but under TP
  fs.mkdirSync(path.join(zoo, 'olmoe'));
  const moeTiny = presetConfig('synth-moe-tiny');
  await writeSyntheticModel(path.join(zoo, 'olmoe'), { ...moeTiny, layers: 1, family: 'olmoe', hfArchitecture: 'OlmoeForCausalLM', qkNorm: true, qkNormScope: 'projection', moe: { ...moeTiny.moe!, normTopK: false } }, { seed: 8 });

  const single = path.join(root, 'single');
  fs.mkdirSync(single);
  await writeSyntheticModel(single, { ...presetConfig('synth-moe-tiny'), layers: 1 }, { seed: 6 });

  const repo = path.join(root, 'hf', 'hub', 'models--acme--tiny');
  hfSnapshot = path.join(repo, 'snapshots', 'abc123');
  fs.mkdirSync(hfSnapshot, { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'));
  fs.writeFileSync(path.join(repo, 'refs', 'main'), 'abc123');
  await writeSyntheticModel(hfSnapshot, { ...presetConfig('synth-llama-tiny'), layers: 2 }, { seed: 7 });
  fs.rmSync(path.join(hfSnapshot, 'tokenizer.json'));

  env = { PARALAB_CACHE: path.join(root, 'cache'), PARALAB_MODELS: `${zoo}:${path.join(root, 'missing')}`, HF_HOME: path.join(root, 'hf') };
});

describe('paths', () => {
  it('follow the env and platform conventions', () => {
    expect(paralabCacheDir({ PARALAB_CACHE: '/x/c' })).toBe('/x/c');
    expect(paralabCacheDir({ XDG_CACHE_HOME: '/xdg' }, 'linux')).toBe('/xdg/paralab');
    expect(paralabCacheDir({}, 'darwin')).toMatch(/Library\/Caches\/paralab$/);
    expect(hfHubDir({ HF_HOME: '/h' })).toBe('/h/hub');
    expect(hfHubDir({ HF_HUB_CACHE: '/hc' })).toBe('/hc');
    expect(paralabModelPaths({ PARALAB_MODELS: '/a:/b;/c' }, 'linux')).toEqual(['/a', '/b', '/c']);
    expect(paralabModelPaths({ PARALAB_MODELS: 'C:\\m;D:\\n' }, 'win32')).toHaveLength(2);
  });
});

describe('listModels', () => {
  it('lists presets, given paths, PARALAB_MODELS and the HF cache; bad folders carry their error', async () => {
    const models = await listModels({ paths: [path.join(root, 'single')], env });
    const byName = new Map(models.map((m) => [m.name, m]));

    // presets first, summarised without being written
    expect(models.slice(0, 4).map((m) => m.id)).toEqual([...PRESET_IDS]);
    const small = models[2];
    expect(small).toMatchObject({ source: 'preset', path: null, runnable: true, hidden: 1024, vocabSize: 32000 });
    expect(small.params).toBe(paramCount(presetConfig('synth-llama-small')));
    expect(small.sizeBytes).toBe(small.params * 4);
    expect(models[1]).toMatchObject({ runnable: true, note: null, experts: 8, topK: 2 });
    expect(fs.existsSync(path.join(root, 'cache'))).toBe(false);

    expect(byName.get('single')).toMatchObject({ source: 'folder', family: 'mixtral', runnable: true, note: null, layers: 1 });
    expect(byName.get('olmoe')).toMatchObject({ family: 'olmoe', runnable: true, note: QK_PROJECTION_NOTE });
    expect(byName.get('good')).toMatchObject({ source: 'folder', id: goodModel, path: goodModel, runnable: true, note: null, layers: 4 });
    expect(byName.get('good')!.sizeBytes).toBe(paramCount(presetConfig('synth-llama-tiny')) * 4);

    const broken = byName.get('broken')!;
    expect(broken.runnable).toBe(false);
    expect(broken.note).toContain('not valid JSON');
    const noWeights = byName.get('no-weights')!;
    expect(noWeights).toMatchObject({ runnable: false, family: 'llama' });
    expect(noWeights.note).toContain('no model.safetensors');
    expect(byName.has('not-a-model')).toBe(false);
    expect(byName.get('missing')).toMatchObject({ runnable: false, note: expect.stringContaining('folder not found') });

    const hf = byName.get('acme/tiny')!;
    expect(hf).toMatchObject({ source: 'hf-cache', path: hfSnapshot, layers: 2, runnable: true });
    expect(hf.note).toContain('tokenizer.json');
  });

  it('lists a folder once even when reached twice, and shows a written preset with its path', async () => {
    await resolveModel('synth-llama-tiny', { env });
    const models = await listModels({ paths: [goodModel, path.join(root, 'zoo')], env });
    expect(models.filter((m) => m.path === goodModel)).toHaveLength(1);
    expect(models[0].path).toBe(path.join(root, 'cache', 'presets', 'synth-llama-tiny-v1'));
  });
});

describe('resolveModel', () => {
  it('preset id, folder path, HF repo id', async () => {
    const preset = await resolveModel('synth-llama-tiny', { env });
    expect(preset).toMatchObject({ id: 'synth-llama-tiny', source: 'preset' });
    expect(preset.config).toEqual(presetConfig('synth-llama-tiny'));
    expect(fs.existsSync(path.join(preset.dir, 'model.safetensors'))).toBe(true);

    const folder = await resolveModel(goodModel, { env });
    expect(folder).toMatchObject({ id: goodModel, dir: goodModel, source: 'folder' });

    const hf = await resolveModel('acme/tiny', { env });
    expect(hf).toMatchObject({ dir: hfSnapshot, source: 'hf-cache' });
    expect(hf.config.layers).toBe(2);
  });

  it('unknown ids and missing folders say what is accepted', async () => {
    let e = await modelError(() => resolveModel('llama-7b', { env }), 'unknown-preset');
    expect(e.message).toContain("'llama-7b'");
    for (const id of PRESET_IDS) expect(e.message).toContain(id);
    expect(e.message).toContain('folder');
    e = await modelError(() => resolveModel(path.join(root, 'nowhere'), { env }), 'config-missing');
    expect(e.message).toContain(path.join(root, 'nowhere'));
    e = await modelError(() => resolveModel(path.join(root, 'zoo', 'broken'), { env }), 'config-invalid');
    expect(e.message).toContain(path.join(root, 'zoo', 'broken', 'config.json'));
  });
});
