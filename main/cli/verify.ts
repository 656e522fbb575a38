/**
 * `lab verify`: single vs SPEC on identical input; exit 0 only if it passes.
 * The reference `single` always runs on the CPU; `--device webgpu|cuda`
 * (and `--devices 0,1`) choose where SPEC runs.
 */
import { parse } from './args';
import { requestFrom, requestOptions } from './generate';
import { remoteFrom, workerOptions } from './worker';
import { verify } from '../engine/host/verify';
import { Engine } from '../engine/host/engine';
import { promptIds } from '../lab/generate';

export async function verifyCommand(argv: string[]): Promise<void> {
  const { values } = parse('verify', argv, { ...requestOptions, ...workerOptions });
  const req = requestFrom({ ...values, 'max-new-tokens': values['max-new-tokens'] ?? '8' });
  let ids = req.promptIds;
  if (!ids) {
    // Tokenize once, the same way generate does, so both runs see identical ids.
    const probe = await Engine.prepareModel(req.model);
    ids = promptIds(req, probe.tokenizer);
  }
  const remote = remoteFrom(values);
  const r = await verify({ model: req.model, parallel: req.parallel, device: req.device, devices: req.devices, threadsPerRank: req.threadsPerRank, promptIds: ids, maxNewTokens: req.maxNewTokens, remote });
  if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    process.stdout.write(
      `${r.passed ? 'PASS' : 'FAIL'}  ${r.spec}${r.device === 'cpu' ? '' : ` on ${r.device}`} vs single on the CPU: tokens ${r.tokens_equal ? 'identical' : `differ at step ${r.first_mismatch}`}, max |Δlogit| ${r.max_abs_logit_diff.toExponential(2)} (tolerance ${r.tolerance})\n`,
    );
  }
  if (!r.passed) {
    process.exitCode = 1;
    if (!values.json) process.stderr.write(`lab: verify failed for '${r.spec}'\n`);
  }
}
