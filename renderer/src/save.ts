/**
 * Saving a report where the user expects it. In the desktop app the main
 * process shows a save dialog (the lab makes PDFs there with Electron's
 * printToPDF); in a browser the file is handed over as a download.
 * Returns where it went (a path or a file name), or null when the user cancelled.
 */
import type { ReportFile, ReportRequest } from '../../main/lab/contract';
import { lab } from './api';

/** The bytes of a ReportFile (utf8 text or base64). */
export function reportBytes(f: ReportFile): Uint8Array {
  if (f.encoding === 'utf8') return new TextEncoder().encode(f.data);
  const bin = atob(f.data);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Browser download through a temporary object URL. */
export function download(f: ReportFile): void {
  const blob = new Blob([reportBytes(f) as BlobPart], { type: f.mime });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = f.fileName;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export async function saveReport(req: ReportRequest): Promise<string | null> {
  const host = window.paralabHost;
  const file = await lab().exportReport(req);
  if (host) return host.saveFile(file);
  download(file);
  return file.fileName;
}
