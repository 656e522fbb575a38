/** The app's views, in sidebar order. */
export const VIEWS = ['models', 'lab', 'compare', 'chat', 'reports', 'learn'] as const;
export type ViewId = (typeof VIEWS)[number];
export const isView = (v: string): v is ViewId => (VIEWS as readonly string[]).includes(v);
