import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  DEFAULT_BIN_DIR,
  DEFAULT_CONF_DIR,
  parseInstallFlags,
  parseUninstallFlags,
  UsageError,
  wantsHelp,
} from "../../cli/install/flags.js";

function refused(parse: () => unknown): string {
  try {
    parse();
  } catch (err) {
    assert.instance(err, UsageError);
    return (err as Error).message;
  }
  assert.unreachable("expected a usage error");
  return "";
}

test("install: the defaults are the kubelet's directories and the built-in list", () => {
  assert.equal(parseInstallFlags([]), {
    binDir: DEFAULT_BIN_DIR,
    confDir: DEFAULT_CONF_DIR,
    backend: "vxlan",
    dualStack: false,
    skipConf: false,
    dryRun: false,
    force: false,
  });
});

test("install: every flag, as --flag value and --flag=value; paths made absolute", () => {
  const f = parseInstallFlags([
    "--bin-dir",
    "/x/bin",
    "--conf-dir=/x/net.d",
    "--backend=host-gw",
    "--dual-stack",
    "--dry-run",
    "--force=true",
    "--from",
    "rel/weft",
  ]);
  assert.is(f.binDir, "/x/bin");
  assert.is(f.confDir, "/x/net.d");
  assert.is(f.backend, "host-gw");
  assert.ok(f.dualStack && f.dryRun && f.force);
  assert.is(f.from, `${process.cwd()}/rel/weft`);
  assert.is(parseInstallFlags(["--conflist", "/c/l.conflist"]).conflist, "/c/l.conflist");
  assert.is(parseInstallFlags(["--skip-conf", "--force=false"]).force, false);
});

test("install: a bad backend names the flag and the allowed values", () => {
  const msg = refused(() => parseInstallFlags(["--backend", "udp"]));
  assert.match(msg, /--backend/);
  assert.match(msg, /allowed: vxlan, host-gw/);
});

test("install: unknown flags, stray words and missing values are usage errors naming the flag", () => {
  assert.match(
    refused(() => parseInstallFlags(["--bin"])),
    /unknown flag --bin; allowed flags: --bin-dir VALUE/,
  );
  assert.match(
    refused(() => parseInstallFlags(["/opt/cni/bin"])),
    /unexpected argument "\/opt\/cni\/bin"/,
  );
  assert.match(
    refused(() => parseInstallFlags(["--bin-dir"])),
    /--bin-dir needs a value/,
  );
  assert.match(
    refused(() => parseInstallFlags(["--bin-dir="])),
    /--bin-dir needs a non-empty value/,
  );
  assert.match(
    refused(() => parseInstallFlags(["--force=yes"])),
    /invalid value "yes" for --force: allowed: true, false/,
  );
});

test("install: the choices of list that contradict each other are refused", () => {
  for (const argv of [
    ["--conflist", "/a", "--backend", "vxlan"],
    ["--conflist", "/a", "--dual-stack"],
    ["--conflist", "/a", "--skip-conf"],
    ["--skip-conf", "--dual-stack"],
  ]) {
    assert.match(
      refused(() => parseInstallFlags(argv)),
      /cannot be combined/,
      argv.join(" "),
    );
  }
  // --backend only checks the name: it goes with the built-in lists and with --skip-conf.
  assert.is(parseInstallFlags(["--backend", "host-gw", "--dual-stack"]).dualStack, true);
  assert.is(parseInstallFlags(["--backend", "host-gw", "--skip-conf"]).skipConf, true);
});

test("uninstall: defaults and switches; install's flags are not uninstall's", () => {
  assert.equal(parseUninstallFlags([]), {
    binDir: DEFAULT_BIN_DIR,
    confDir: DEFAULT_CONF_DIR,
    restore: false,
    purge: false,
    dryRun: false,
  });
  const f = parseUninstallFlags(["--bin-dir=/b", "--conf-dir", "/c", "--restore", "--purge", "--dry-run"]);
  assert.equal(f, { binDir: "/b", confDir: "/c", restore: true, purge: true, dryRun: true });
  assert.match(
    refused(() => parseUninstallFlags(["--force"])),
    /unknown flag --force; allowed flags: .*--restore/,
  );
});

test("--help and -h anywhere ask for the usage", () => {
  assert.ok(wantsHelp(["--force", "--help"]));
  assert.ok(wantsHelp(["-h"]));
  assert.not.ok(wantsHelp(["--force"]));
});

test.run();
