/**
 * Static files of the built renderer (out/renderer): a URL path maps to a
 * regular file strictly inside the root (after decoding, normalising and
 * resolving symlinks), or to nothing — no directory listings, no traversal.
 */
import { realpath, stat } from 'node:fs/promises';
import { extname, resolve, sep, posix } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentType(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** The file a URL pathname names under root, or null (missing, a directory, or outside root). */
export async function resolveStatic(root: string, pathname: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const rel = posix.normalize(`/${decoded}`).replace(/^\/+/, '') || 'index.html';
  try {
    const base = await realpath(root);
    const file = await realpath(resolve(base, rel));
    if (!file.startsWith(base + sep)) return null;
    return (await stat(file)).isFile() ? file : null;
  } catch {
    return null;
  }
}
