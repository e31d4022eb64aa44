import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  type Manifest,
  manifestPath,
  mergeManifest,
  parseManifest,
  readManifest,
  renderManifest,
} from "../../cli/install/manifest.js";

const SHA = "a".repeat(64);
const full: Manifest = {
  executable: "weft",
  links: ["weftd", "bridge", "flannel"],
  originals: ["bridge", "weft"],
  conflist: { path: "/etc/cni/net.d/10-flannel.conflist", sha256: SHA, original: true },
  createdDirs: ["/opt/cni", "/opt/cni/bin"],
};

test("render and parse round-trip; the text is stable (sorted links and originals)", () => {
  const text = renderManifest(full);
  assert.equal(parseManifest(text), { ...full, links: ["bridge", "flannel", "weftd"] });
  assert.is(renderManifest(parseManifest(text)), text);
  assert.is(renderManifest({ ...full, originals: ["weft", "bridge"] }), text);
  assert.ok(text.endsWith("}\n"));
});

test("a manifest that is not weft's is refused with what is wrong, never guessed at", () => {
  const bad = (doc: unknown) => {
    try {
      parseManifest(typeof doc === "string" ? doc : JSON.stringify(doc));
    } catch (err) {
      return (err as Error).message;
    }
    return "accepted";
  };
  assert.match(bad("{"), /not valid JSON/);
  assert.match(bad([]), /not a JSON object/);
  assert.match(bad({ ...full, executable: "sh" }), /"executable"/);
  assert.match(bad({ ...full, links: ["../etc/passwd"] }), /"links"/);
  assert.match(bad({ ...full, links: { bridge: "hardlink" } }), /"links"/);
  assert.match(bad({ ...full, originals: ["ls"] }), /"originals"/);
  assert.match(bad({ ...full, conflist: { ...full.conflist, sha256: "x" } }), /"conflist"/);
  assert.match(bad({ ...full, createdDirs: "/" }), /"createdDirs"/);
});

test("readManifest: none is undefined; a foreign file names the path", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-manifest-"));
  try {
    assert.is(readManifest(dir), undefined);
    writeFileSync(manifestPath(dir), "{}");
    assert.throws(
      () => readManifest(dir),
      /\.weft-install\.json is not weft's install manifest: "executable"/,
    );
    writeFileSync(manifestPath(dir), renderManifest(full));
    assert.equal(readManifest(dir)?.manifest.originals, ["bridge", "weft"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("merge: what an earlier install recorded stays unless this run records it anew", () => {
  const next: Manifest = {
    executable: "weft",
    links: ["bridge", "portmap"],
    originals: ["portmap"],
    createdDirs: [],
  };
  const m = mergeManifest(full, next);
  assert.equal(m.links, ["bridge", "flannel", "portmap", "weftd"]);
  assert.equal(m.originals, ["bridge", "portmap", "weft"]);
  assert.equal(m.conflist, full.conflist, "a --skip-conf run keeps the conflist an earlier run wrote");
  assert.equal(m.createdDirs, full.createdDirs);
  assert.is(mergeManifest(undefined, next), next);
});

test.run();
