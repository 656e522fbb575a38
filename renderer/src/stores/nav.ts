/** Which view is shown (the sidebar, the desktop menu and "open in Compare" links all move it); mirrored in the URL hash. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import { isView, type ViewId } from '../views';

export const useNavStore = defineStore('nav', () => {
  const initial = globalThis.location?.hash.slice(1) ?? '';
  const view = ref<ViewId>(isView(initial) ? initial : 'models');
  function go(v: ViewId): void {
    view.value = v;
    try {
      history.replaceState(null, '', `${location.pathname}${location.search}#${v}`);
    } catch {
      // no history (tests): the view still changes
    }
  }
  return { view, go };
});
