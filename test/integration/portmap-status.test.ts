/**
 * portmap STATUS against the real iptables/nft of this host, and against stub tools: a temp dir at the
 * front of PATH holding `iptables`/`ip6tables`/`nft` scripts that exit 1 (the plugin starts its tools
 * through PATH, so this is what a host without working tools looks like to it).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { uniqueName } from "../helpers/names.js";
import { assertRoot } from "../helpers/netns.js";
import { runPlugin } from "../helpers/plugin.js";
import { installWeft } from "../helpers/podpath.js";

const t = suite("portmap STATUS");

let bin = "";
let stubs = "";

t.before(() => {
  assertRoot();
  bin = mkdtempSync(join(tmpdir(), "weft-pmst-bin-"));
  installWeft(bin, "portmap");
  stubs = mkdtempSync(join(tmpdir(), "weft-pmst-stub-"));
});

t.after(() => {
  if (bin) rmSync(bin, { recursive: true, force: true });
  if (stubs) rmSync(stubs, { recursive: true, force: true });
});

/** A PATH whose `tools` are scripts that print an error and exit 1; everything else is the host's. */
function brokenPath(tools: string[]): string {
  const dir = mkdtempSync(join(stubs, "p-"));
  for (const tool of tools)
    writeFileSync(join(dir, tool), `#!/bin/sh\necho "${tool}: stub broken" >&2\nexit 1\n`, { mode: 0o755 });
  return `${dir}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`;
}

function status(backend: string | undefined, path?: string) {
  const conf: Record<string, unknown> = { cniVersion: "1.1.0", name: uniqueName("pmst"), type: "portmap" };
  if (backend) conf.backend = backend;
  // A broken PATH is not sent through weftd (WEFT_CNI_SOCKET=off): a served call runs the tools weftd
  // finds on its own PATH, not the client's.
  return runPlugin(
    join(bin, "portmap"),
    { command: "STATUS", path: bin, extraEnv: path ? { PATH: path, WEFT_CNI_SOCKET: "off" } : {} },
    conf,
  );
}

for (const backend of ["iptables", "nftables", undefined]) {
  t(`succeeds on this host (backend ${backend ?? "auto"})`, () => {
    const r = status(backend);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.is(r.stdout, "");
  });
}

t("iptables backend: 50 when iptables and ip6tables both fail", () => {
  const r = status("iptables", brokenPath(["iptables", "ip6tables"]));
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.is(r.json?.code, 50, r.stdout);
  assert.match(String(r.json?.msg), /iptables backend is not usable/);
  assert.match(String(r.json?.msg), /\(iptables\) .*stub broken/);
  assert.match(String(r.json?.msg), /\(ip6tables\) .*stub broken/);
});

t("iptables backend: one working family is enough (as the reference's DEL)", () => {
  const r = status("iptables", brokenPath(["ip6tables"]));
  assert.is(r.status, 0, r.stdout + r.stderr);
});

t("nftables backend: 50 when nft fails, even with iptables working", () => {
  const r = status("nftables", brokenPath(["nft"]));
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.is(r.json?.code, 50, r.stdout);
  assert.match(String(r.json?.msg), /nftables backend is not usable/);
  assert.match(String(r.json?.msg), /stub broken/);
});

t("auto: nftables stands in for an unusable iptables", () => {
  const r = status(undefined, brokenPath(["iptables", "ip6tables"]));
  assert.is(r.status, 0, r.stdout + r.stderr);
});

t("auto: 50 when neither iptables nor nft is usable", () => {
  const r = status(undefined, brokenPath(["iptables", "ip6tables", "nft"]));
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.is(r.json?.code, 50, r.stdout);
  assert.match(String(r.json?.msg), /neither iptables nor nftables is usable/);
});

t("auto: a broken nft does not matter while iptables works", () => {
  const r = status(undefined, brokenPath(["nft"]));
  assert.is(r.status, 0, r.stdout + r.stderr);
});

t.run();
