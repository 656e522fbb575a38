/**
 * The `lab` command line as users and scripts meet it: the JSON contract of
 * DESIGN.md on stdout, and for every kind of bad input a non-zero exit with
 * ONE line on stderr naming the file or value and what to change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lab } from '../support/cli';
import { ensurePreset } from '../../main/engine/model/synth';

let tmp: string;
let tiny: string;
const env = () => ({ PARALAB_CACHE: path.join(tmp, 'cache') });

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'paralab-cli-'));
  tiny = await ensurePreset('synth-llama-tiny', { cacheDir: path.join(tmp, 'cache') });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the tiny preset folder, broken by `mutate`. */
function brokenCopy(name: string, mutate: (dir: string) => void): string {
  const dir = path.join(tmp, name);
  cpSync(tiny, dir, { recursive: true });
  mutate(dir);
  return dir;
}

function expectOneLineError(r: { code: number; stdout: string; stderr: string }, pattern: RegExp) {
  expect(r.code).not.toBe(0);
  const lines = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(lines[0]).not.toMatch(/\n\s+at /);
}

describe('lab generate --json', () => {
  it('prints the DESIGN.md JSON: generated token_ids, text, metrics, ranks, comm', async () => {
    const r = await lab(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2,3', '--max-new-tokens', '8', '--greedy', '--json'], env());
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.token_ids).toHaveLength(8);
    expect(doc.prompt_ids).toEqual([1, 2, 3]);
    expect(typeof doc.text).toBe('string');
    expect(doc.metrics.ttft_ms).toBeGreaterThan(0);
    expect(doc.metrics.output_tokens).toBe(8);
    expect(doc.ranks).toHaveLength(1);
    expect(doc.ranks[0].weight_bytes).toBeGreaterThan(1_000_000);
    expect(Array.isArray(doc.comm)).toBe(true);
    // Greedy is deterministic: a second run gives the same tokens.
    const again = JSON.parse((await lab(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2,3', '--max-new-tokens', '8', '--json'], env())).stdout);
    expect(again.token_ids).toEqual(doc.token_ids);
  });

  it('text prompts go through the chat template and tokenizer; sampling with a seed is reproducible', async () => {
    const args = ['generate', '--model', 'synth-llama-tiny', '--prompt', '什么是张量并行?', '--max-new-tokens', '6', '--temperature', '0.9', '--top-p', '0.9', '--seed', '5', '--ignore-eos', '--json'];
    const a = JSON.parse((await lab(args, env())).stdout);
    const b = JSON.parse((await lab(args, env())).stdout);
    expect(a.token_ids).toEqual(b.token_ids);
    expect(a.prompt_ids.length).toBeGreaterThan(5);
  });
});

describe('bad input → one clear line, non-zero exit', () => {
  const gen = (model: string, extra: string[] = []) => lab(['generate', '--model', model, '--prompt-ids', '1,2,3', '--max-new-tokens', '2', ...extra], env());

  it('unknown preset', async () => expectOneLineError(await gen('synth-llama-huge'), /unknown model 'synth-llama-huge'.*synth-llama-tiny/));
  it('missing config.json', async () => expectOneLineError(await gen(brokenCopy('noconfig', (d) => unlinkSync(path.join(d, 'config.json')))), /config\.json/));
  it('garbled config.json', async () => expectOneLineError(await gen(brokenCopy('garbled', (d) => writeFileSync(path.join(d, 'config.json'), '{"hidden_size": 64,'))), /config\.json/));
  it('unknown architecture', async () =>
    expectOneLineError(
      await gen(
        brokenCopy('arch', (d) => {
          const c = JSON.parse(readFileSync(path.join(d, 'config.json'), 'utf8'));
          writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...c, architectures: ['MambaForCausalLM'], model_type: 'mamba' }));
        }),
      ),
      /MambaForCausalLM|mamba/,
    ));
  it('truncated safetensors', async () =>
    expectOneLineError(
      await gen(
        brokenCopy('trunc', (d) => {
          const f = path.join(d, 'model.safetensors');
          truncateSync(f, Math.floor(statSync(f).size / 2));
        }),
      ),
      /model\.safetensors.*truncated/i,
    ));
  it('corrupt safetensors header', async () =>
    expectOneLineError(
      await gen(
        brokenCopy('header', (d) => {
          const f = path.join(d, 'model.safetensors');
          const buf = readFileSync(f);
          buf.write('#', 12);
          writeFileSync(f, buf);
        }),
      ),
      /model\.safetensors/,
    ));
  it('tensor shape does not match the config', async () =>
    expectOneLineError(
      await gen(
        brokenCopy('shape', (d) => {
          const c = JSON.parse(readFileSync(path.join(d, 'config.json'), 'utf8'));
          writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...c, intermediate_size: 200 }));
        }),
      ),
      /shape \[176, 64\].*\[200, 64\]/,
    ));
  it('missing tokenizer', async () => expectOneLineError(await gen(brokenCopy('notok', (d) => unlinkSync(path.join(d, 'tokenizer.json')))), /tokenizer/));
  it('out-of-range token id', async () => expectOneLineError(await lab(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,99999', '--max-new-tokens', '2'], env()), /token id 99999 is out of range/));
  it('`<command> --help` prints that command’s usage and exits 0', async () => {
    const r = await lab(['bench', '--help'], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run --silent lab -- bench \[options\]\n\n  bench +--model M --parallel "SPEC;SPEC" --workload prefill\|decode\|serving/);
    expect(r.stdout).toContain('--slo-ttft MS');
    expect(r.stdout).not.toContain('commbench');
  });
  it('prompt + new tokens longer than the context', async () =>
    expectOneLineError(await lab(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2,3', '--max-new-tokens', '5000'], env()), /needs 5002 positions, but the model's context is 4096 positions \(max_position_embeddings\); use at most 4094 new tokens/));
  it('a bench workload longer than the context, refused before any rank starts', async () =>
    expectOneLineError(
      await lab(['bench', '--model', 'synth-llama-tiny', '--parallel', 'tp=2', '--workload', 'prefill', '--prompt-len', '4097', '--out', path.join(os.tmpdir(), 'paralab-never-written')], env()),
      /synth-llama-tiny: this run needs a context of 4097 positions, but the model has 4096 \(max_position_embeddings\)/,
    ));
  it('impossible parallel spec', async () => expectOneLineError(await gen('synth-llama-tiny', ['--parallel', 'tp=16']), /tp=16 exceeds the 8 attention heads/));
  it('unknown option', async () => expectOneLineError(await gen('synth-llama-tiny', ['--bogus']), /bogus/));
});
