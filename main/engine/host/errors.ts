/** A cluster that cannot go on: which rank (null: the cluster as a whole) and why, in one line. */
export class ClusterError extends Error {
  /** the Lab API error code a door reports (contract.ts LabErrorCode) */
  readonly code = 'rank_failed';
  constructor(
    message: string,
    readonly rank: number | null,
  ) {
    super(message);
    this.name = 'ClusterError';
  }
}
