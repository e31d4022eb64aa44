import { WEFT_VERSION } from "../shared/version.js";

/** weftd: the subnet-leasing daemon. Its behaviour arrives with its own issue; until then it says so. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--version")) {
    process.stdout.write(`weftd v${WEFT_VERSION}\n`);
    return 0;
  }
  process.stderr.write("weftd: the routing daemon is not implemented yet\n");
  return 2;
}
