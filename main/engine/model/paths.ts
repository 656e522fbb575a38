/**
 * Where models live on disk: ParaLab's own cache (synthetic presets), the
 * folders named by PARALAB_MODELS, and the Hugging Face hub cache. Only
 * environment and platform conventions here, no file access.
 */
import os from 'node:os';
import path from 'node:path';

type Env = Record<string, string | undefined>;

/** Expands a leading `~` to the home folder. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') || p.startsWith('~\\') ? path.join(os.homedir(), p.slice(1)) : p;
}

/**
 * ParaLab's cache folder: `PARALAB_CACHE`, else the platform's user cache
 * (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS,
 * `%LOCALAPPDATA%` on Windows) + `paralab`.
 */
export function paralabCacheDir(env: Env = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.PARALAB_CACHE) return path.resolve(expandHome(env.PARALAB_CACHE));
  const home = os.homedir();
  if (platform === 'darwin') return path.join(home, 'Library', 'Caches', 'paralab');
  if (platform === 'win32') return path.join(env.LOCALAPPDATA || path.join(home, 'AppData', 'Local'), 'paralab', 'Cache');
  return path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'paralab');
}

/** The Hugging Face hub cache: `HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`. */
export function hfHubDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return path.resolve(expandHome(env.HF_HUB_CACHE));
  if (env.HUGGINGFACE_HUB_CACHE) return path.resolve(expandHome(env.HUGGINGFACE_HUB_CACHE));
  const home = env.HF_HOME
    ? expandHome(env.HF_HOME)
    : path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
  return path.resolve(home, 'hub');
}

/**
 * Folders listed in `PARALAB_MODELS`: separated by `:` or `;` on Linux and
 * macOS, by `;` on Windows (where `:` belongs to drive letters).
 */
export function paralabModelPaths(env: Env = process.env, platform: NodeJS.Platform = process.platform): string[] {
  const raw = env.PARALAB_MODELS;
  if (!raw) return [];
  return raw
    .split(platform === 'win32' ? /;/ : /[:;]/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => path.resolve(expandHome(p)));
}
