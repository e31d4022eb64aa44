import { test } from "uvu";
import * as assert from "uvu/assert";
import { type DoctorFlags, parseDoctorFlags } from "../../cli/doctor/flags.js";

const parse = (argv: string[]) => parseDoctorFlags(argv) as DoctorFlags;
const error = (argv: string[]) => (parseDoctorFlags(argv) as { error?: string }).error;

test("defaults: the runtime's dirs, no store named, weftd's etcd defaults", () => {
  const f = parse([]);
  assert.is(f.binDir, "/opt/cni/bin");
  assert.is(f.confDir, "/etc/cni/net.d");
  assert.is(f.store, undefined);
  assert.is(f.storeDir, "/var/lib/weft/leases");
  assert.equal(f.etcdEndpoints, ["http://127.0.0.1:4001", "http://127.0.0.1:2379"]);
  assert.is(f.etcdPrefix, "/coreos.com/network");
  assert.is(f.subnetFile, undefined);
  assert.is(f.healthzUrl, undefined);
  assert.equal([f.json, f.fix, f.help], [false, false, false]);
});

test("--flag value and --flag=value; the store follows weftd's rule", () => {
  const f = parse([
    "--bin-dir",
    "/b",
    "--conf-dir=/c",
    "--etcd-endpoints=https://10.0.0.9:2379,https://10.0.0.8:2379",
  ]);
  assert.is(f.binDir, "/b");
  assert.is(f.confDir, "/c");
  assert.is(f.store, "etcd");
  assert.equal(f.etcdEndpoints, ["https://10.0.0.9:2379", "https://10.0.0.8:2379"]);
  assert.is(parse(["--store-dir", "/l"]).store, "file");
  assert.is(parse(["--store=etcd"]).store, "etcd");
  assert.is(parse(["--healthz-url", "http://127.0.0.1:9100/"]).healthzUrl, "http://127.0.0.1:9100");
  const b = parse(["--json", "--fix", "-h"]);
  assert.equal([b.json, b.fix, b.help], [true, true, true]);
});

test("bad usage names the flag (exit status 2)", () => {
  assert.is(error(["--store", "consul"]), 'invalid value "consul" for --store: allowed values: file, etcd');
  assert.is(error(["--frobnicate"]), "unknown flag --frobnicate");
  assert.is(error(["--bin-dir"]), "--bin-dir needs a value");
  assert.is(error(["--bin-dir", "--json"]), "--bin-dir needs a value");
  assert.is(error(["--json=false"]), "--json takes no value");
  assert.is(error(["extra"]), 'unexpected argument "extra"');
  assert.match(error(["--healthz-url", "127.0.0.1:9100"]) ?? "", /invalid --healthz-url .*expected http/);
});

test.run();
