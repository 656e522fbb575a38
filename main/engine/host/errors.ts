/** A cluster that cannot go on: which rank (null: the cluster as a whole) and why, in one line. */
export class ClusterError extends Error {
  constructor(
    message: string,
    readonly rank: number | null,
  ) {
    super(message);
    this.name = 'ClusterError';
  }
}
