/**
 * PDF from the HTML report, printed by headless Chromium through
 * playwright-core (Debian's /usr/bin/chromium here; never a downloaded
 * browser). The page is loaded with setContent and every request it might
 * make is refused, so printing cannot reach the network. In the Electron app
 * the lab is given Electron's own printToPDF instead (see RunsDeps.printPdf).
 */
import { existsSync } from 'node:fs';

/** Flags for Chromium on these machines (ENVIRONMENT.md). */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** The Chromium to print with: PARALAB_CHROMIUM, else /usr/bin/chromium. */
export function chromiumPath(): string {
  const p = process.env['PARALAB_CHROMIUM'] || '/usr/bin/chromium';
  if (!existsSync(p)) throw Object.assign(new Error(`PDF needs Chromium at ${p}: install it (apt-get install -y chromium) or set PARALAB_CHROMIUM; --format html works without it`), { code: 'unavailable' });
  return p;
}

export async function htmlToPdf(html: string): Promise<Buffer> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
  try {
    const context = await browser.newContext();
    await context.route('**/*', (route) => route.abort('blockedbyclient'));
    const page = await context.newPage();
    await page.setContent(html, { waitUntil: 'load' });
    await page.emulateMedia({ media: 'print' });
    return await page.pdf({ format: 'A4', printBackground: true, margin: { top: '12mm', bottom: '12mm', left: '8mm', right: '8mm' } });
  } finally {
    await browser.close();
  }
}
