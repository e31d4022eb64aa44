import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { cannotServe } from "../../daemon/cni-server.js";

const t = suite("cannotServe: weftd serves CNI calls only with what the plugins need");

const dir = mkdtempSync(join(tmpdir(), "weft-cannot-serve-"));
const writable = join(dir, "ip_forward");
writeFileSync(writable, "1\n");
t.after(() => rmSync(dir, { recursive: true, force: true }));

const status = (capEff: string) =>
  `Name:\tweftd\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

t("root with every capability and a writable /proc/sys: nothing in the way", () => {
  assert.is(cannotServe(status("000001ffffffffff"), writable), undefined);
  // CAP_SYS_ADMIN (bit 21) alone is what entering a namespace takes.
  assert.is(cannotServe(status("0000000000200000"), writable), undefined);
});

t("a container's default capabilities plus NET_ADMIN and NET_RAW: no CAP_SYS_ADMIN", () => {
  // deploy-weftd's set: chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service
  // net_admin net_raw sys_chroot mknod audit_write setfcap.
  const why = cannotServe(status("00000000a80435fb"), writable);
  assert.match(String(why), /lacks CAP_SYS_ADMIN/);
});

t("no CapEff line at all: not served", () => {
  assert.match(String(cannotServe("Name:\tweftd\n", writable)), /CAP_SYS_ADMIN/);
});

t("a /proc/sys that cannot be opened for writing: not served, with the reason", () => {
  const why = cannotServe(status("000001ffffffffff"), join(dir, "no-such-sysctl"));
  assert.match(String(why), /no-such-sysctl is not writable \(ENOENT\)/);
});

t.run();
