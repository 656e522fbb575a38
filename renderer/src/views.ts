/** The app's views, in sidebar order; only `models` is live in this version. */
export const VIEWS = ['models', 'lab', 'compare', 'chat', 'reports', 'learn'] as const;
export type ViewId = (typeof VIEWS)[number];
export const LIVE_VIEWS: ReadonlySet<ViewId> = new Set(['models']);
