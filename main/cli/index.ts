/**
 * `lab`: ParaLab's command line (DESIGN.md, "CLI contract").
 *
 *   npm run --silent lab -- <command> [options]
 *
 * With --json, stdout is exactly one JSON document; human text otherwise.
 * Errors: a non-zero exit and one line on stderr that says what to change.
 */
import { UsageError } from './args';

type Command = (argv: string[]) => Promise<void>;

// Loaded on demand: `lab models` should not pay for onnxruntime or the web host.
const COMMANDS: Record<string, () => Promise<Command>> = {
  models: async () => (await import('./models')).modelsCommand,
  generate: async () => (await import('./generate')).generateCommand,
  verify: async () => (await import('./verify')).verifyCommand,
  bench: async () => (await import('./bench')).benchCommand,
  report: async () => (await import('./report')).reportCommand,
  serve: async () => (await import('./serve')).serveCommand,
  commbench: async () => (await import('./commbench')).commbenchCommand,
  worker: async () => (await import('./worker')).workerCommand,
  devices: async () => (await import('./devices')).devicesCommand,
};

const HELP = `ParaLab — measure parallel LLM inference for real

usage: npm run --silent lab -- <command> [options]

commands:
  models   [--path P] [--json]     list built-in presets and model folders found (P: more folders or .bin files)
  generate --model M --parallel SPEC (--prompt T | --prompt-ids 1,2,3) --max-new-tokens N
           [--greedy | --temperature X --top-p P --top-k K --repetition-penalty R --seed S] [--stop STR]
           [--ignore-eos --raw --device cpu|webgpu|cuda --devices 0,1 --threads-per-rank T --timeout S] [--json]
  verify   --model M --parallel SPEC (--prompt T | --prompt-ids …) [--max-new-tokens N] [--device D] [--json]
  bench    --model M --parallel "SPEC;SPEC" --workload prefill|decode|serving [--prompt-len L --output-len O
           --batch B --reps N --requests R --rate QPS --max-batch N --slo-ttft MS --slo-tpot MS
           --threads-per-rank T --timeout S --device D --seed S --verify --ceiling --pp-compare --quiet] --out DIR [--json]
  report   RUN_DIR… --format html|pdf|md|csv|json --out FILE [--lang zh-CN|en]
  commbench [--ranks 2,4] [--transport shm,unix,tcp] [--min 4K --max 64M]   collective latency / bus bandwidth (nccl-tests style)
  worker   --join HOST:PORT              serve as a rank for a host started with --listen HOST:PORT --workers N
  serve    [--host 127.0.0.1] [--port N]   the UI and Lab API for a browser
  devices  [--json] [--quick]            execution providers (cpu, webgpu, cuda) and GPUs found; --quick skips the probe runs

models: a preset id (synth-llama-tiny, synth-llama-small, synth-moe-tiny, synth-moe-small), a
Hugging Face model folder, or a llama2.c checkpoint (.bin). SPEC: single, dp=2, tp=2, pp=2,tp=2,
sp=2,sp_impl=ring, dp=2,ep=2, … (see README.md). T: 1 … 2 × cores. --timeout S: seconds one step
may take before the run counts as hung (default: scaled from the steps seen). \`lab <command> --help\` shows one command.`;

/** The usage lines of one command (its line in HELP and the indented lines under it), or null. */
function commandHelp(command: string): string | null {
  const lines = HELP.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`  ${command} `) || l === `  ${command}`);
  if (at < 0) return null;
  let end = at + 1;
  while (end < lines.length && /^ {5,}\S/.test(lines[end])) end++;
  return [`usage: npm run --silent lab -- ${command} [options]`, '', ...lines.slice(at, end), '', ...lines.slice(-4)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP + '\n');
    return command ? 0 : 2;
  }
  const load = COMMANDS[command];
  if (!load) throw new UsageError(`unknown command '${command}'; use one of: ${Object.keys(COMMANDS).join(', ')}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${commandHelp(command) ?? HELP}\n`);
    return 0;
  }
  await (await load())(rest);
  return 0;
}

// A command whose promise never settles would let Node exit 0 with its output
// cut off; a run that did not finish must never pass for a success.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write('lab: the command stopped before it finished (a request was left unanswered); its output is incomplete\n');
  process.exitCode = 1;
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (e: unknown) => {
    settled = true;
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`lab: ${msg.split('\n')[0]}\n`);
    if (process.env.PARALAB_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
