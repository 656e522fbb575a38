/** Light / dark follows the system (prefers-color-scheme); charts read the same flag. */
import { ref } from 'vue';

const query = globalThis.matchMedia?.('(prefers-color-scheme: dark)');
export const prefersDark = ref(query?.matches ?? false);
query?.addEventListener?.('change', (e) => (prefersDark.value = e.matches));
