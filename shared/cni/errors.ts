/** Error codes from the CNI spec (SPEC.md "Error"), plus the Go library's extras the reference emits. */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  InvalidNetNS: 8,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  // The reference plugins report ordinary failures as Go's ErrInternal.
  Internal: 999,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode] | number;

/**
 * A failure that reaches the runtime as the spec's error object. `cause` (ES2022) keeps the error it was
 * made from, so a caller that retries can tell the kinds apart (a missing device, a refused connection)
 * without parsing `msg`; the error document carries `code`, `msg` and `details` only.
 */
export class CniError extends Error {
  constructor(
    readonly code: ErrorCodeValue,
    readonly msg: string,
    readonly details = "",
    options?: ErrorOptions,
  ) {
    super(details ? `${msg}; ${details}` : msg, options);
    this.name = "CniError";
  }

  /**
   * The error document; skel omits empty details, the spec wants cniVersion. JSON.stringify passes the
   * property name here, so only a version-shaped argument counts as one.
   */
  toJSON(cniVersion?: string): Record<string, unknown> {
    const doc: Record<string, unknown> = {};
    if (cniVersion && /^\d+\.\d+\.\d+$/.test(cniVersion)) doc.cniVersion = cniVersion;
    doc.code = this.code;
    doc.msg = this.msg;
    if (this.details) doc.details = this.details;
    return doc;
  }
}

/**
 * Wraps anything thrown into a CniError (code 999, the thrown value as its cause), keeping CNI errors as
 * they are (skel does not wrap twice).
 */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error) return new CniError(ErrorCode.Internal, err.message, "", { cause: err });
  return new CniError(ErrorCode.Internal, String(err), "", { cause: err });
}

/**
 * Prefixes context onto an error, the way the reference plugins wrap with fmt.Errorf("...: %w"): code and
 * details carry over, and the wrapped error is the cause.
 */
export function wrapError(context: string, err: unknown): CniError {
  const e = toCniError(err);
  return new CniError(e.code, `${context}: ${e.msg}`, e.details, { cause: err });
}
