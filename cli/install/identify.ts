import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/**
 * Whether a file is a weft executable, without running it (install never executes what it finds in a
 * bin dir). A weft executable is an ELF file holding the multi-call entry's `WEFT_MULTICALL_NAME`:
 * every packaged build carries that name (cli/multicall.ts reads the variable; esbuild keeps property
 * names, so minification cannot rename it), in the SEA blob that postject puts near the end of the file,
 * and no other program has a reason to contain it. This recognises any weft build, also one copied in
 * by hand or by an older install, where comparing with the file being installed (content or inode)
 * would call an older weft foreign, and a manifest would know only what this install wrote. A script
 * that wraps weft is not ELF, so it counts as foreign, like any other program.
 */
export const WEFT_MARKER = Buffer.from("WEFT_MULTICALL_NAME");
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const CHUNK = 1 << 20;

export function isWeftExecutable(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size < ELF_MAGIC.length) return false;
    const head = Buffer.alloc(ELF_MAGIC.length);
    readSync(fd, head, 0, head.length, 0);
    if (!head.equals(ELF_MAGIC)) return false;
    return containsFromEnd(fd, st.size, WEFT_MARKER);
  } finally {
    closeSync(fd);
  }
}

/** Scans backwards (the blob is at the end of the file), chunks overlapping by the needle's length. */
function containsFromEnd(fd: number, size: number, needle: Buffer): boolean {
  const buf = Buffer.alloc(CHUNK + needle.length);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const len = Math.min(size, end + needle.length) - start;
    const got = readSync(fd, buf, 0, len, start);
    if (buf.subarray(0, got).includes(needle)) return true;
    end = start;
  }
  return false;
}

/** Whether two files have the same bytes (the same inode trivially); false when either is unreadable. */
export function sameContent(a: string, b: string): boolean {
  let fa: number | undefined;
  let fb: number | undefined;
  try {
    fa = openSync(a, "r");
    fb = openSync(b, "r");
    const [sa, sb] = [fstatSync(fa), fstatSync(fb)];
    if (sa.dev === sb.dev && sa.ino === sb.ino) return true;
    if (sa.size !== sb.size) return false;
    const [ba, bb] = [Buffer.alloc(CHUNK), Buffer.alloc(CHUNK)];
    for (let pos = 0; pos < sa.size; pos += CHUNK) {
      const na = readSync(fa, ba, 0, CHUNK, pos);
      const nb = readSync(fb, bb, 0, CHUNK, pos);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) break;
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fa !== undefined) closeSync(fa);
    if (fb !== undefined) closeSync(fb);
  }
}
