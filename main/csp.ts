/**
 * The one Content-Security-Policy of the app pages. Electron sets it as a
 * response header (main/index.ts), the web host sends it with every response
 * (main/server), and renderer/index.html repeats it in a <meta> (a test keeps
 * the three equal). Scripts only from the app itself; inline styles are
 * allowed because Vue and ECharts set style attributes; WebSockets only to
 * the app's own origin or the loopback host.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self' ws://127.0.0.1:*",
].join('; ');

/** Header-only additions (a <meta> CSP cannot carry these). */
export const CSP_HEADER = `${CONTENT_SECURITY_POLICY}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'`;
