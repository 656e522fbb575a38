/**
 * Who may talk to the web host. Pure checks, one per threat:
 *  - token:  a random per-launch secret (like Jupyter's) that the page URL
 *            carries as `?token=`; the page's own requests then ride on an
 *            HttpOnly SameSite=Strict cookie, the WebSocket passes it again.
 *  - Host:   only 127.0.0.1:port / localhost:port (or the bound host), which
 *            defeats DNS rebinding (a foreign name resolving to 127.0.0.1).
 *  - Origin: a WebSocket from a browser must come from our own origin.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `host:port` values a request may carry in its Host header. */
export function allowedHosts(boundHost: string, port: number): Set<string> {
  const hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  if (boundHost === '::1') hosts.add(`[::1]:${port}`);
  else if (boundHost !== '0.0.0.0' && boundHost !== '::') hosts.add(`${boundHost}:${port}`);
  return hosts;
}

export function hostAllowed(hostHeader: string | undefined, allowed: Set<string>): boolean {
  return hostHeader !== undefined && allowed.has(hostHeader.toLowerCase());
}

/** Browsers always send Origin on a WebSocket; a client without one is not a browser page (and still needs the token). */
export function originAllowed(origin: string | undefined, hostHeader: string): boolean {
  return origin === undefined || origin === `http://${hostHeader.toLowerCase()}`;
}

export function cookieName(port: number): string {
  return `paralab_token_${port}`;
}

export function cookieToken(cookieHeader: string | undefined, port: number): string | null {
  const name = cookieName(port);
  for (const part of (cookieHeader ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

export function tokenCookie(token: string, port: number): string {
  return `${cookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}
