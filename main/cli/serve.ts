/** `lab serve`: the web host (UI + Lab API) on 127.0.0.1. */
import { serveMain } from '../server';

export async function serveCommand(argv: string[]): Promise<void> {
  await serveMain(argv);
}
