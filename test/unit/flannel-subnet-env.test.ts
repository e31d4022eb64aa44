import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  formatSubnetEnv,
  parseSubnetEnv,
  readSubnetEnv,
  type SubnetEnv,
  writeSubnetEnv,
} from "../../shared/flannel/subnet-env.js";

const F = "/run/flannel/subnet.env";

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  assert.unreachable("expected an error");
  return "";
}

test("the README/test v4 file: subnet in network form, MTU, IPMASQ", () => {
  const env = parseSubnetEnv(
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
    F,
  );
  assert.equal(env, {
    networks: ["10.1.0.0/16"],
    subnet: "10.1.17.0/24",
    ipv6Networks: [],
    mtu: 1472,
    ipMasq: true,
  } satisfies SubnetEnv);
});

test("v6-only file: fc00::1/64 becomes fc00::/64", () => {
  const env = parseSubnetEnv(
    "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
    F,
  );
  assert.equal(env.networks, []);
  assert.is(env.subnet, undefined);
  assert.equal(env.ipv6Networks, ["fc00::/48"]);
  assert.is(env.ipv6Subnet, "fc00::/64");
});

test("dual-stack file has both families", () => {
  const env = parseSubnetEnv(
    [
      "FLANNEL_NETWORK=10.1.0.0/16",
      "FLANNEL_SUBNET=10.1.17.1/24",
      "FLANNEL_IPV6_NETWORK=FC00:0::/48",
      "FLANNEL_IPV6_SUBNET=fc00:0:0:11::1/64",
      "FLANNEL_MTU=1472",
      "FLANNEL_IPMASQ=false",
    ].join("\n"),
    F,
  );
  assert.equal(env.networks, ["10.1.0.0/16"]);
  assert.equal(env.ipv6Networks, ["fc00::/48"]);
  assert.is(env.ipv6Subnet, "fc00:0:0:11::/64");
  assert.is(env.ipMasq, false);
});

test("network lists: comma separated, network form, exact duplicates dropped, last line replaces", () => {
  const base = "FLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
  let env = parseSubnetEnv(`FLANNEL_NETWORK=10.1.0.0/16,192.168.0.0/16,10.1.2.3/16,10.1.0.0/17\n${base}`, F);
  assert.equal(env.networks, ["10.1.0.0/16", "192.168.0.0/16", "10.1.0.0/17"]);
  env = parseSubnetEnv(`FLANNEL_NETWORK=10.9.0.0/16\nFLANNEL_NETWORK=10.1.0.0/16\n${base}`, F);
  assert.equal(env.networks, ["10.1.0.0/16"]);
});

test("no trimming, quoting or comments: such lines are unknown keys or bad values", () => {
  const base = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\n";
  // " FLANNEL_IPMASQ" is not the key, so IPMASQ is missing.
  assert.is(
    errorOf(() => parseSubnetEnv(`${base} FLANNEL_IPMASQ=true\n# comment\nexport X=1\n`, F)),
    `${F} is missing FLANNEL_IPMASQ`,
  );
  assert.is(
    errorOf(() => parseSubnetEnv(`${base}FLANNEL_IPMASQ=true\nFLANNEL_MTU= 1450\n`, F)),
    'strconv.ParseUint: parsing " 1450": invalid syntax',
  );
  assert.is(
    errorOf(() => parseSubnetEnv('FLANNEL_NETWORK="10.1.0.0/16"\n', F)),
    'invalid CIDR address: "10.1.0.0/16"',
  );
});

test("IPMASQ is true only for the exact text true", () => {
  const base = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\n";
  for (const [v, want] of [
    ["true", true],
    ["True", false],
    ["1", false],
    ["", false],
    ["false", false],
  ] as const) {
    assert.is(parseSubnetEnv(`${base}FLANNEL_IPMASQ=${v}\n`, F).ipMasq, want, v);
  }
});

test("CRLF line endings are tolerated as bufio.ScanLines does", () => {
  const env = parseSubnetEnv(
    "FLANNEL_NETWORK=10.1.0.0/16\r\nFLANNEL_SUBNET=10.1.17.1/24\r\nFLANNEL_MTU=1450\r\nFLANNEL_IPMASQ=true\r\n",
    F,
  );
  assert.is(env.mtu, 1450);
  assert.is(env.ipMasq, true);
});

test("the missing list, in the reference's order and text", () => {
  assert.is(
    errorOf(() => parseSubnetEnv("", F)),
    `${F} is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ`,
  );
  assert.is(
    errorOf(() => parseSubnetEnv("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_MTU=1450\n", F)),
    `${F} is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ`,
  );
  // Nothing cross-checks the families: a v4 network with only a v6 subnet passes.
  const env = parseSubnetEnv(
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    F,
  );
  assert.is(env.ipv6Subnet, "fc00::/64");
});

test("a known key without '=' (a panic in Go) is ignored and reported missing", () => {
  assert.is(
    errorOf(() =>
      parseSubnetEnv(
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU\nFLANNEL_IPMASQ=true\n",
        F,
      ),
    ),
    `${F} is missing FLANNEL_MTU`,
  );
});

test("bad values fail with Go's messages", () => {
  const cases: Array<[string, string]> = [
    ["FLANNEL_SUBNET=10.1.17.1", "invalid CIDR address: 10.1.17.1"],
    ["FLANNEL_SUBNET=10.1.17.1/33", "invalid CIDR address: 10.1.17.1/33"],
    ["FLANNEL_SUBNET=10.01.17.1/24", "invalid CIDR address: 10.01.17.1/24"],
    ["FLANNEL_NETWORK=10.1.0.0/16,", "invalid CIDR address: "],
    ["FLANNEL_IPV6_SUBNET=fc00::1/129", "invalid CIDR address: fc00::1/129"],
    ["FLANNEL_MTU=-1", 'strconv.ParseUint: parsing "-1": invalid syntax'],
    ["FLANNEL_MTU=1e3", 'strconv.ParseUint: parsing "1e3": invalid syntax'],
    ["FLANNEL_MTU=4294967296", 'strconv.ParseUint: parsing "4294967296": value out of range'],
  ];
  for (const [line, msg] of cases)
    assert.is(
      errorOf(() => parseSubnetEnv(`${line}\n`, F)),
      msg,
      line,
    );
});

test("readSubnetEnv reports a missing file like Go's os.Open", () => {
  assert.is(
    errorOf(() => readSubnetEnv("/nonexistent/weft/subnet.env")),
    "open /nonexistent/weft/subnet.env: no such file or directory",
  );
  // The system error stays reachable: weftd and the plugin can tell "not written yet" from the rest.
  let err: unknown;
  try {
    readSubnetEnv("/nonexistent/weft/subnet.env");
  } catch (e) {
    err = e;
  }
  assert.is(((err as Error).cause as NodeJS.ErrnoException).code, "ENOENT");
});

test("writer: flanneld's order, first address of each lease, \\n endings", () => {
  assert.is(
    formatSubnetEnv({
      network: "10.244.0.0/16",
      subnet: "10.244.3.0/24",
      ipv6Network: "fd00:10:244::/56",
      ipv6Subnet: "fd00:10:244:3::/64",
      mtu: 1450,
      ipMasq: true,
    }),
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
  );
  assert.is(
    formatSubnetEnv({ ipv6Network: "fc00::/48", ipv6Subnet: "fc00::/64", mtu: 1430, ipMasq: false }),
    "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n",
  );
});

test("writer: atomic, 0644 whatever the umask, directories created; the reader reads it back", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-subnetenv-"));
  const old = process.umask(0o077);
  try {
    const file = join(dir, "run", "flannel", "subnet.env");
    writeSubnetEnv(file, { network: "10.244.0.0/16", subnet: "10.244.3.0/24", mtu: 1450, ipMasq: true });
    assert.is(statSync(file).mode & 0o777, 0o644);
    writeSubnetEnv(file, { network: "10.244.0.0/16", subnet: "10.244.9.0/24", mtu: 1400, ipMasq: false });
    assert.equal(readdirSync(join(dir, "run", "flannel")), ["subnet.env"], "no temp files left");
    assert.equal(readSubnetEnv(file), {
      networks: ["10.244.0.0/16"],
      subnet: "10.244.9.0/24",
      ipv6Networks: [],
      mtu: 1400,
      ipMasq: false,
    });
    assert.match(
      readFileSync(file, "utf8"),
      /^FLANNEL_NETWORK=10\.244\.0\.0\/16\nFLANNEL_SUBNET=10\.244\.9\.1\/24\n/,
    );
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("writer: bad input fails before touching the old file", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-subnetenv-"));
  try {
    const file = join(dir, "subnet.env");
    writeFileSync(file, "old\n");
    assert.throws(() =>
      writeSubnetEnv(file, { network: "bogus", subnet: "10.244.3.0/24", mtu: 1450, ipMasq: true }),
    );
    assert.is(readFileSync(file, "utf8"), "old\n");
    assert.equal(readdirSync(dir), ["subnet.env"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
