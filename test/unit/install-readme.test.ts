import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { HOST_PROGRAMS } from "../../cli/host-programs.js";
import { repoRoot } from "../helpers/cnitool.js";

const readme = readFileSync(join(repoRoot(), "README.md"), "utf8");

test("the README's node requirements name every host program weft starts, and the install line every package", () => {
  const at = readme.indexOf("## Node requirements");
  assert.ok(at >= 0, "a Node requirements section");
  const section = readme.slice(at, readme.indexOf("\n## ", at + 1));
  for (const p of HOST_PROGRAMS) assert.ok(section.includes(`\`${p.name}\``), `${p.name} is listed`);
  const line = /apt-get install ([^\n]+)/.exec(section)?.[1]?.split(" ") ?? [];
  for (const p of HOST_PROGRAMS)
    assert.ok(line.includes(p.pkg), `${p.pkg} (for ${p.name}) is in the install line`);
});

test.run();
