import { readFileSync } from "node:fs";
import type { DNS } from "../cni/types.js";
import { goFileError } from "../fs/go-errors.js";

/**
 * The reference's parseResolvConf: `nameserver` lines append, `domain` sets, `search` and `options`
 * append all their tokens; comments (`#`, `;`), empty lines and lines with fewer than two fields are
 * skipped. A file that cannot be read fails the ADD with Go's error text.
 */
export function parseResolvConf(path: string): DNS {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw goFileError(err, path);
  }
  const dns: DNS = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const fields = line.split(/\s+/);
    if (fields.length < 2) continue;
    const [key, ...rest] = fields;
    switch (key) {
      case "nameserver":
        dns.nameservers = [...(dns.nameservers ?? []), rest[0]!];
        break;
      case "domain":
        dns.domain = rest[0]!;
        break;
      case "search":
        dns.search = [...(dns.search ?? []), ...rest];
        break;
      case "options":
        dns.options = [...(dns.options ?? []), ...rest];
        break;
    }
  }
  return dns;
}
