import * as assert from "uvu/assert";
import { CniError } from "../../shared/cni/errors.js";

/** The CniError `fn` throws; fails the test when it throws nothing or something else. */
export function cniErrorOf(fn: () => unknown): CniError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.instance(thrown, CniError);
  return thrown as CniError;
}

/** The CniError `p` rejects with; fails the test when it resolves or rejects with something else. */
export async function rejection(p: Promise<unknown>): Promise<CniError> {
  let thrown: unknown;
  try {
    await p;
  } catch (err) {
    thrown = err;
  }
  assert.instance(thrown, CniError);
  return thrown as CniError;
}

/** `e` has exactly this code, msg (or a msg matching the pattern) and details. */
export function assertCniError(e: CniError, code: number, msg: string | RegExp, details = ""): void {
  if (typeof msg === "string") {
    assert.equal({ code: e.code, msg: e.msg, details: e.details }, { code, msg, details });
    return;
  }
  assert.is(e.code, code, `code of: ${e.msg}`);
  assert.match(e.msg, msg);
  assert.is(e.details, details);
}

/** `fn` throws a CniError with exactly this code, msg and details. */
export function expectCniError(fn: () => unknown, code: number, msg: string | RegExp, details = ""): void {
  assertCniError(cniErrorOf(fn), code, msg, details);
}

/** `p` rejects with a CniError with exactly this code, msg and details. */
export async function expectRejection(
  p: Promise<unknown>,
  code: number,
  msg: string | RegExp,
  details = "",
): Promise<void> {
  assertCniError(await rejection(p), code, msg, details);
}

/** The end of `err`'s cause chain: the error everything else was wrapped around. */
export function rootCause(err: unknown): unknown {
  let e = err;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  return e;
}
