/**
 * GC through libcni at cniVersion 1.1.0 (weft's delegates only: the reference v1.1.1 plugins stop at
 * 1.0.0). The pods are added at 1.0.0 (Debian's libcni cannot read 1.1.0 results), then the list
 * switches to 1.1.0 for GC. The case is the leak GC exists for: an attachment the runtime forgot (no
 * libcni cache entry, so no synthesised DEL), whose saved config and reservation only the plugins' GC can
 * reclaim: flannel drops its saved config and forwards GC to bridge, which forwards it to host-local.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { cnitool } from "../helpers/cnitool.js";
import { assertRoot } from "../helpers/netns.js";
import { delegateSets, ipOf, PodPath } from "../helpers/podpath.js";

const sets = (await delegateSets()).filter((s) => s === "weft");

for (const set of sets) {
  const s = suite(`flannel GC through libcni [${set} delegates]`);
  let pp: PodPath;
  s.before(async () => {
    assertRoot();
    pp = await PodPath.create({ cniVersion: "1.0.0", delegates: set, withoutPortmap: true });
  });
  s.after(() => pp?.cleanup());

  s("a forgotten attachment loses its saved config and reservation; the valid one keeps its own", () => {
    const keep = pp.pod();
    const gone = pp.pod();
    const forgotten = pp.pod();
    const rKeep = pp.addOk(keep) as { ips: Array<{ address: string }> };
    pp.addOk(gone);
    pp.addOk(forgotten);
    assert.is(pp.del(gone).status, 0);
    // The runtime lost track of this one: no cached result, so libcni cannot synthesise its DEL.
    rmSync(join(pp.cacheDir, "results", `${pp.netName}-${forgotten.containerId}-eth0`));
    assert.is(pp.reservations().length, 2);
    assert.is(pp.savedConfigs().length, 2);
    pp.setCniVersion("1.1.0");
    const gc = cnitool(
      "gc",
      pp.netName,
      undefined,
      pp.toolOptions({ validAttachments: [{ containerID: keep.containerId, ifname: "eth0" }] }),
    );
    assert.is(gc.status, 0, gc.stdout + gc.stderr);
    assert.equal(pp.savedConfigs(), [keep.containerId]);
    assert.equal(pp.reservations(), [ipOf(rKeep.ips[0]!.address)]);
    pp.setCniVersion("1.0.0");
    assert.is(pp.check(keep).status, 0, "the valid pod is untouched");
  });

  s.run();
}
