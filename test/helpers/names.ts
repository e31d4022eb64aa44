/** Short names unique to this test run, so parallel runs and leftovers never collide (ifnames <= 15 chars). */
let counter = 0;
const run = (process.pid % 46656).toString(36).padStart(3, "0");

export function uniqueName(prefix: string): string {
  counter += 1;
  const name = `${prefix}${run}${counter.toString(36)}`;
  if (name.length > 15) throw new Error(`test name too long for a link: ${name}`);
  return name;
}
