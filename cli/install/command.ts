import { UsageError, wantsHelp } from "./flags.js";

/**
 * `weft install` and `weft uninstall` around their work: `--help` anywhere prints `usage` on stdout
 * (exit 0) and does nothing else; an error ends the command with its message on stderr, prefixed
 * `weft <name>: `, exit 2 for bad usage (with where the flags are told) and 1 otherwise.
 */
export async function runCommand(
  name: string,
  usage: string,
  argv: string[],
  work: () => Promise<number>,
): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(usage);
    return 0;
  }
  try {
    return await work();
  } catch (err) {
    process.stderr.write(`weft ${name}: ${(err as Error).message}\n`);
    if (err instanceof UsageError) {
      process.stderr.write(`(weft ${name} --help shows the flags)\n`);
      return 2;
    }
    return 1;
  }
}
