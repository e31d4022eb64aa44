import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  FLANNEL_CONFLIST,
  FLANNEL_DUALSTACK_CONFLIST,
  renderConflist,
  validateConflist,
} from "../../cli/install/conflists.js";
import { repoRoot } from "../helpers/cnitool.js";

const repoList = (name: string) => JSON.parse(readFileSync(join(repoRoot(), "conflists", name), "utf8"));

test("the embedded lists are the repository's conflists (the executable carries them)", () => {
  assert.equal(FLANNEL_CONFLIST, repoList("10-flannel.conflist"));
  assert.equal(FLANNEL_DUALSTACK_CONFLIST, repoList("10-flannel-dualstack.conflist"));
});

test("the embedded lists pass their own validation", () => {
  assert.equal(validateConflist(renderConflist(FLANNEL_CONFLIST)), {
    name: "cbr0",
    cniVersion: "0.3.1",
    types: ["flannel", "portmap"],
  });
  assert.is(validateConflist(renderConflist(FLANNEL_DUALSTACK_CONFLIST)).cniVersion, "1.0.0");
});

test("a list weft cannot install is refused with the reason", () => {
  const why = (text: string) => {
    try {
      validateConflist(text);
    } catch (err) {
      return (err as Error).message;
    }
    return "accepted";
  };
  assert.match(why("{"), /not valid JSON/);
  assert.match(why("[]"), /not a JSON object/);
  assert.match(why('{"cniVersion":"0.3.1","plugins":[{"type":"flannel"}]}'), /no "name"/);
  assert.match(
    why('{"name":"n","cniVersion":"9.9.9","plugins":[{"type":"flannel"}]}'),
    /"cniVersion" "9.9.9" is not supported: allowed: 0.1.0, .*1.1.0/,
  );
  assert.match(
    why('{"name":"n","cniVersion":"1.0.0","type":"bridge"}'),
    /a single network config is not a conflist/,
  );
  assert.match(
    why('{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"flannel"},{}]}'),
    /plugins\[1\] has no "type"/,
  );
});

test.run();
