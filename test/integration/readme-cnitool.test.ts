/**
 * The README's "Trying the plugins by hand with cnitool" block, run as written, so the example a newcomer
 * copies keeps working: extracted from README.md, with only its fixed names made private (the pod's netns
 * name and /tmp/weft-try become unique ones; CNI_PATH follows WEFT_BIN_DIR) and run inside a node
 * namespace of its own, so its cni0, 10.244.7.0/24 and iptables rules never meet the host's.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { repoRoot } from "../helpers/cnitool.js";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { weftBinDir } from "../helpers/podpath.js";

const HEADING = "## Trying the plugins by hand with cnitool";

/** The first ```sh block after the heading. */
function example(): string {
  const readme = readFileSync(join(repoRoot(), "README.md"), "utf8");
  const at = readme.indexOf(`\n${HEADING}\n`);
  if (at < 0) throw new Error(`README.md has no "${HEADING}" section`);
  const block = /\n```sh\n([\s\S]*?)\n```\n/.exec(readme.slice(at));
  if (!block) throw new Error(`no sh block under "${HEADING}"`);
  return block[1]!;
}

const s = suite<{ node: TestNetns; dir: string; pod: string }>("README: the cnitool example", {} as never);

s.before((ctx) => {
  assertRoot();
  ctx.node = TestNetns.create("wrdn");
  ctx.dir = join(mkdtempSync(join(tmpdir(), "weft-readme-")), "try");
  ctx.pod = uniqueName("wrdp");
});

s.after(({ node, dir, pod }) => {
  // A failed run may leave the pod's server (socat) behind.
  const pids = spawnSync("ip", ["netns", "pids", pod], { encoding: "utf8" }).stdout ?? "";
  for (const pid of pids.split("\n").filter(Boolean)) spawnSync("kill", [pid]);
  spawnSync("ip", ["netns", "del", pod]);
  node?.delete();
  rmSync(join(dir, ".."), { recursive: true, force: true });
});

s("runs as written: ADD, the hostPort answers, DEL leaves nothing", ({ node, dir, pod }) => {
  const script = example()
    .replaceAll("demo-pod", pod)
    .replaceAll("/tmp/weft-try", dir)
    .replaceAll("$PWD/dist/bin", weftBinDir());
  assert.ok(script.includes(pod) && script.includes(dir), "the example names its pod and directory");
  const r = spawnSync("ip", ["netns", "exec", node.name, "bash", "-e", "-o", "pipefail", "-c", script], {
    cwd: repoRoot(),
    encoding: "utf8",
    timeout: 120_000,
  });
  const out = r.stdout + r.stderr;
  assert.is(r.status, 0, out);
  assert.match(r.stdout, '"address": "10.244.7.2/24"', "ADD's result");
  assert.match(r.stdout, "hello from the pod", "the hostPort reached the pod");
  const dnat = r.stdout.split("\n").filter((l) => l.includes("--dports 8080 -j CNI-DN-"));
  assert.is(dnat.length, 1, "the DNAT rule is listed after ADD and gone after DEL");
  const reserved = r.stdout.split("\n").filter((l) => l === "10.244.7.2");
  assert.is(reserved.length, 1, "the reservation is listed after ADD and gone after DEL");
  // The example's own clean-up left nothing.
  assert.not.ok(existsSync(dir), "its directory is gone");
  assert.not.ok(existsSync(`/var/run/netns/${pod}`), "the pod's netns is gone");
  assert.equal(
    node.ipJson<Array<{ ifname: string }>>(["link"]).map((l) => l.ifname),
    ["lo"],
    "no cni0 or veth left in the node",
  );
});

s.run();
