import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FlagError, type Flags, parseArgs, parseDuration, usage } from "../../daemon/flags.js";
import { repoRoot } from "../helpers/cnitool.js";

function flags(argv: string[], env: Record<string, string> = {}): Flags {
  const r = parseArgs(argv, env);
  if (r.action !== "run") throw new Error(`expected run, got ${r.action}`);
  return r.flags;
}

function warnings(argv: string[], env: Record<string, string> = {}): string[] {
  const r = parseArgs(argv, env);
  return r.action === "run" ? r.warnings : [];
}

function errorOf(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseArgs(argv, env);
  } catch (err) {
    assert.instance(err, FlagError);
    return (err as Error).message;
  }
  assert.unreachable(`expected ${JSON.stringify(argv)} to be refused`);
  return "";
}

test("defaults are flanneld's (main.go), plus the file store", () => {
  const f = flags([]);
  assert.equal(f.iface, []);
  assert.is(f.subnetFile, "/run/flannel/subnet.env");
  assert.is(f.ipMasq, false);
  assert.is(f.ipMasqRandomFully, true);
  assert.equal(f.etcdEndpoints, ["http://127.0.0.1:4001", "http://127.0.0.1:2379"]);
  assert.is(f.etcdPrefix, "/coreos.com/network");
  assert.is(f.netConfigPath, "/etc/kube-flannel/net-conf.json");
  assert.is(f.netConfigPathGiven, false);
  assert.is(f.subnetLeaseRenewMarginMs, 60 * 60e3);
  assert.is(f.subnetLeaseTtlMs, 24 * 3600e3);
  assert.is(f.iptablesResync, 5);
  assert.is(f.iptablesForwardRules, true);
  assert.is(f.healthzIp, "0.0.0.0");
  assert.is(f.healthzPort, 0);
  assert.is(f.store, "file");
  assert.is(f.storeDir, "/var/lib/weft/leases");
});

test("Go's syntax: one or two dashes, =value or the next word, booleans bare or =value", () => {
  const f = flags([
    "-iface",
    "eth1",
    "--iface=eth0",
    "--public-ip",
    "192.168.1.5",
    "-ip-masq",
    "--iptables-forward-rules=false",
    "--healthz-port",
    "8080",
    "--subnet-file=/tmp/x/subnet.env",
  ]);
  assert.equal(f.iface, ["eth1", "eth0"]);
  assert.is(f.publicIp, "192.168.1.5");
  assert.is(f.ipMasq, true);
  assert.is(f.iptablesForwardRules, false);
  assert.is(f.healthzPort, 8080);
  assert.is(f.subnetFile, "/tmp/x/subnet.env");
  // strconv.ParseBool's spellings.
  for (const [text, value] of [
    ["1", true],
    ["t", true],
    ["TRUE", true],
    ["True", true],
    ["0", false],
    ["F", false],
    ["False", false],
  ] as const)
    assert.is(flags([`--ip-masq=${text}`]).ipMasq, value, text);
  // A value may start with a dash when it is the next word, as in Go.
  assert.equal(flags(["--iface", "-odd-name"]).iface, ["-odd-name"]);
  // The last of a repeated single-value flag wins.
  assert.is(flags(["--healthz-port=1", "--healthz-port=2"]).healthzPort, 2);
});

test("--net-conf is an alias of --net-config-path, and giving either marks it given", () => {
  const a = flags(["--net-conf=/etc/a.json"]);
  assert.is(a.netConfigPath, "/etc/a.json");
  assert.is(a.netConfigPathGiven, true);
  assert.is(flags(["--net-config-path", "/etc/b.json"]).netConfigPath, "/etc/b.json");
});

test("FLANNELD_<FLAG> fills flags the command line left unset (flagutil.SetFlagsFromEnv)", () => {
  const env = {
    FLANNELD_IP_MASQ: "true",
    FLANNELD_IFACE: "eth0,eth1",
    FLANNELD_SUBNET_LEASE_RENEW_MARGIN: "30",
    FLANNELD_HEALTHZ_PORT: "9000",
    FLANNELD_STORE_DIR: "/srv/leases",
    FLANNELD_NET_CONFIG_PATH: "/etc/n.json",
    FLANNELD_PUBLIC_IP: "",
  };
  const f = flags(["--healthz-port=1"], env);
  assert.is(f.ipMasq, true);
  // flagutil calls Set once with the whole value: one --iface entry, as flanneld reads it.
  assert.equal(f.iface, ["eth0,eth1"]);
  assert.is(f.subnetLeaseRenewMarginMs, 30 * 60e3);
  assert.is(f.healthzPort, 1, "the command line wins");
  assert.is(f.storeDir, "/srv/leases");
  assert.is(f.netConfigPath, "/etc/n.json");
  assert.is(f.netConfigPathGiven, true);
  assert.is(f.publicIp, "", "an empty variable is ignored");
});

test("a bad environment value names the variable, the flag and the allowed values", () => {
  assert.is(
    errorOf([], { FLANNELD_IPTABLES_RESYNC: "soon" }),
    'invalid value "soon" for FLANNELD_IPTABLES_RESYNC (--iptables-resync): not an integer; allowed values: 1..86400 (seconds)',
  );
  assert.match(
    errorOf([], { FLANNELD_IP_MASQ: "yes" }),
    /FLANNELD_IP_MASQ \(--ip-masq\): not a boolean; allowed values: true, false/,
  );
});

test("--store defaults to etcd when --etcd-endpoints is given, else file; an explicit --store wins", () => {
  assert.is(flags(["--etcd-endpoints=http://10.0.0.1:2379"]).store, "etcd");
  assert.is(flags([], { FLANNELD_ETCD_ENDPOINTS: "https://e:2379" }).store, "etcd");
  assert.is(flags(["--etcd-prefix=/x"]).store, "file");
  assert.is(flags(["--store=etcd"]).store, "etcd");
  assert.is(flags(["--store=file", "--etcd-endpoints=http://e:2379"]).store, "file");
  assert.equal(warnings(["--store=file", "--etcd-endpoints=http://e:2379"]), [
    "--etcd-endpoints ignored: the store is file (--store=file)",
  ]);
  assert.equal(flags(["--etcd-endpoints=http://a:2379,https://b:2379"]).etcdEndpoints, [
    "http://a:2379",
    "https://b:2379",
  ]);
});

test("bad flags name the flag and the allowed values", () => {
  const cases: Array<[string[], string]> = [
    [
      ["--store=consul"],
      'invalid value "consul" for flag --store: unknown store; allowed values: file, etcd',
    ],
    [
      ["--subnet-lease-renew-margin=0"],
      'invalid value "0" for flag --subnet-lease-renew-margin: out of acceptable range; allowed values: 1..1439 (minutes), or a duration shorter than --subnet-lease-ttl',
    ],
    [
      ["--subnet-lease-renew-margin=1440"],
      'invalid value "1440" for flag --subnet-lease-renew-margin: out of acceptable range; allowed values: 1..1439 (minutes), or a duration shorter than --subnet-lease-ttl',
    ],
    [
      ["--iptables-resync=0"],
      'invalid value "0" for flag --iptables-resync: out of range; allowed values: 1..86400 (seconds)',
    ],
    [
      ["--healthz-port=70000"],
      'invalid value "70000" for flag --healthz-port: out of range; allowed values: 0..65535',
    ],
    [
      ["--healthz-port=http"],
      'invalid value "http" for flag --healthz-port: not an integer; allowed values: 0..65535',
    ],
    [
      ["--ip-masq=yes"],
      'invalid value "yes" for flag --ip-masq: not a boolean; allowed values: true, false (also 1, 0, t, f)',
    ],
    [
      ["--public-ip=fc00::1"],
      'invalid value "fc00::1" for flag --public-ip: not an IPv4 address; allowed values: an IPv4 address',
    ],
    [
      ["--healthz-ip=localhost"],
      'invalid value "localhost" for flag --healthz-ip: not an IP address; allowed values: an IPv4 or IPv6 address',
    ],
    [
      ["--etcd-endpoints=10.0.0.1:2379"],
      'invalid value "10.0.0.1:2379" for flag --etcd-endpoints: "10.0.0.1:2379" is not a URL; allowed values: a comma list of http://HOST:PORT or https://HOST:PORT',
    ],
    [
      ["--etcd-endpoints=http://a:2379,unix://b"],
      'invalid value "http://a:2379,unix://b" for flag --etcd-endpoints: "unix://b" is not http or https; allowed values: a comma list of http://HOST:PORT or https://HOST:PORT',
    ],
    [
      ["--etcd-prefix=coreos.com"],
      'invalid value "coreos.com" for flag --etcd-prefix: does not start with /; allowed values: a key prefix starting with /',
    ],
    [
      ["--subnet-lease-ttl=5s"],
      'invalid value "5s" for flag --subnet-lease-ttl: not a duration of at least 10s; allowed values: a duration of at least 10s (e.g. 24h, 30m)',
    ],
    [["--bogus"], "flag provided but not defined: --bogus (weftd --help lists every flag)"],
    [["--subnet-file"], "flag needs an argument: --subnet-file (a file path)"],
    [["---x"], "bad flag syntax: ---x"],
  ];
  for (const [argv, msg] of cases) assert.is(errorOf(argv), msg, argv.join(" "));
});

test("a stray word is refused (flanneld ignores it, so `--ip-masq false` would mean true)", () => {
  assert.match(errorOf(["--ip-masq", "false"]), /^unexpected argument "false": weftd takes flags only/);
  assert.match(errorOf(["--", "x"]), /^unexpected argument "x"/);
  assert.is(flags(["--ip-masq", "--"]).ipMasq, true, "a bare -- ends the flags");
});

test("the renew margin: minutes as in flanneld, or a Go duration, and shorter than the lease", () => {
  assert.is(flags(["--subnet-lease-renew-margin=1439"]).subnetLeaseRenewMarginMs, 1439 * 60e3);
  assert.is(flags(["--subnet-lease-renew-margin=90s"]).subnetLeaseRenewMarginMs, 90e3);
  const f = flags(["--subnet-lease-ttl=2m", "--subnet-lease-renew-margin=30s"]);
  assert.is(f.subnetLeaseTtlMs, 120e3);
  assert.is(f.subnetLeaseRenewMarginMs, 30e3);
  assert.is(
    errorOf(["--subnet-lease-ttl=30m"]),
    'invalid value "60" for flag --subnet-lease-renew-margin: 1h is not shorter than --subnet-lease-ttl (30m); allowed values: a margin shorter than the lease',
  );
  assert.is(parseDuration("1h30m"), 5400e3);
  assert.is(parseDuration("1.5s"), 1500);
  assert.is(parseDuration("10"), undefined);
});

test("flanneld flags weftd does not implement are refused unless left at their defaults", () => {
  assert.is(
    errorOf(["--kube-subnet-mgr"]),
    "--kube-subnet-mgr is a flanneld flag weftd does not support: weftd has no Kubernetes subnet manager yet; use --store=file or --store=etcd",
  );
  assert.is(flags(["--kube-subnet-mgr=false"]).store, "file");
  assert.match(
    errorOf(["--iface-regex=eth.*"]),
    /--iface-regex is a flanneld flag weftd does not support: name the interface/,
  );
  assert.match(
    errorOf([], { FLANNELD_IP_BLACKHOLE_ROUTE: "true" }),
    /^FLANNELD_IP_BLACKHOLE_ROUTE \(--ip-blackhole-route\) is a flanneld flag/,
  );
  assert.equal(warnings(["--v=2", "--set-node-network-unavailable=true"]), [
    "--v ignored: klog verbosity; weftd logs by WEFT_LOG_LEVEL",
  ]);
});

test("--help and --version; --help documents every supported flag and the environment", () => {
  assert.equal(parseArgs(["--help"], {}), { action: "help" });
  assert.equal(parseArgs(["-h"], {}), { action: "help" });
  assert.equal(parseArgs(["--version"], {}), { action: "version" });
  assert.equal(parseArgs(["--ip-masq", "-version"], {}), { action: "version" });
  const text = usage();
  for (const name of [
    "iface",
    "public-ip",
    "public-ipv6",
    "subnet-file",
    "ip-masq",
    "ip-masq-fully-random-disable",
    "store",
    "store-dir",
    "etcd-endpoints",
    "etcd-prefix",
    "etcd-cafile",
    "etcd-certfile",
    "etcd-keyfile",
    "etcd-username",
    "etcd-password",
    "net-config-path",
    "net-conf",
    "subnet-lease-renew-margin",
    "subnet-lease-ttl",
    "iptables-resync",
    "iptables-forward-rules",
    "healthz-ip",
    "healthz-port",
    "version",
  ])
    assert.match(text, new RegExp(`--${name}[=, \\n]`), name);
  assert.match(text, /FLANNELD_<FLAG>/);
  assert.match(text, /\(default \/run\/flannel\/subnet\.env\)/);
});

test("the README's weftd flag table has every flag --help lists", () => {
  const readme = readFileSync(join(repoRoot(), "README.md"), "utf8");
  const at = readme.indexOf("### weftd");
  const table = readme.slice(at, readme.indexOf("\n## ", at));
  const listed = [...usage().matchAll(/^ {2}(--.*)$/gm)].flatMap((m) =>
    m[1]!.split(", ").map((f) => f.replace(/=.*$/, "")),
  );
  assert.ok(listed.includes("--cni-socket") && listed.includes("--cni-only"), listed.join(" "));
  for (const flag of listed) assert.ok(table.includes(`\`${flag}\``), `${flag} is in the README's table`);
});

test.run();
