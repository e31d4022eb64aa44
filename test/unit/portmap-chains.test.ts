import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  chainName,
  dnatChain,
  dnatChainName,
  dnatComment,
  markMasqChain,
  setMarkChain,
  sharedChains,
  splitPortList,
  topLevelDnatChain,
} from "../../plugins/portmap/chains.js";
import type { PortMapNetConf } from "../../plugins/portmap/config.js";
import { net4, net6, referenceConf, referenceMappings } from "../helpers/portmap-vectors.js";

// The reference's test vectors (portmap_iptables_test.go).
const LONG_ID =
  "icee6giejonei6sohng6ahngee7laquohquee9shiGo7fohferakah3Feiyoolu2pei7ciPhoh7shaoX6vai3vuf0ahfaeng8yohb9ceu0daez5hashee8ooYai5wa3y";
const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

const conf = (extra: Partial<PortMapNetConf>, version = "1.0.0") => referenceConf(LONG_ID, extra, version);

const names = suite("portmap chain names");

names("match the reference's vectors", () => {
  assert.is(dnatChainName("testNetName", LONG_ID), "CNI-DN-bfd599665540dd91d5d28");
  assert.is(dnatChainName("test", LONG_ID), "CNI-DN-67e92b96e692a494b6b85");
  assert.is(dnatChainName("test", LONG_ID).length, 28);
});

names("the legacy SNAT chain uses the same hash with its prefix", () => {
  assert.is(chainName("SN-", "testNetName", LONG_ID), "CNI-SN-bfd599665540dd91d5d28");
});

names("the comment is cut to 255 characters with an ellipsis", () => {
  assert.is(dnatComment("cbr0", "ctr1"), 'dnat name: "cbr0" id: "ctr1"');
  const long = dnatComment("n", "x".repeat(300));
  assert.is(long.length, 256);
  assert.ok(long.endsWith("..."));
});

names.run();

const rules = suite("portmap iptables rules");

for (const ver of VERSIONS) {
  rules(`[${ver}] dnat chain: entry rules and rules for IPv4, IPv6 and without snat`, () => {
    const c = conf(
      {
        runtimeConfig: { portMappings: referenceMappings },
        snat: true,
        conditionsV4: ["-a", "b"],
        conditionsV6: ["-c", "d"],
      },
      ver,
    );
    const ch = dnatChain(c, net4);
    assert.is(ch.name, "CNI-DN-67e92b96e692a494b6b85");
    assert.equal(ch.entryChains, ["CNI-HOSTPORT-DNAT"]);
    const comment = `dnat name: "test" id: "${LONG_ID}"`;
    assert.equal(ch.entryRules, [
      [
        "-m",
        "comment",
        "--comment",
        comment,
        "-m",
        "multiport",
        "-p",
        "tcp",
        "--destination-ports",
        "8080,8081,8083,8084,8085,8086",
        "-a",
        "b",
      ],
      [
        "-m",
        "comment",
        "--comment",
        comment,
        "-m",
        "multiport",
        "-p",
        "udp",
        "--destination-ports",
        "8080,8082",
        "-a",
        "b",
      ],
    ]);
    assert.equal(ch.rules, [
      ["-p", "tcp", "--dport", "8080", "-s", "10.0.0.2/24", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8080", "-s", "127.0.0.1", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.0.0.2:80"],
      ["-p", "tcp", "--dport", "8081", "-s", "10.0.0.2/24", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8081", "-s", "127.0.0.1", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8081", "-j", "DNAT", "--to-destination", "10.0.0.2:80"],
      ["-p", "udp", "--dport", "8080", "-s", "10.0.0.2/24", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "udp", "--dport", "8080", "-s", "127.0.0.1", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "udp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.0.0.2:81"],
      ["-p", "udp", "--dport", "8082", "-s", "10.0.0.2/24", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "udp", "--dport", "8082", "-s", "127.0.0.1", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "udp", "--dport", "8082", "-j", "DNAT", "--to-destination", "10.0.0.2:82"],
      [
        "-p",
        "tcp",
        "--dport",
        "8083",
        "-d",
        "192.168.0.2",
        "-s",
        "10.0.0.2/24",
        "-j",
        "CNI-HOSTPORT-SETMARK",
      ],
      ["-p", "tcp", "--dport", "8083", "-d", "192.168.0.2", "-s", "127.0.0.1", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8083", "-d", "192.168.0.2", "-j", "DNAT", "--to-destination", "10.0.0.2:83"],
      ["-p", "tcp", "--dport", "8084", "-s", "10.0.0.2/24", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8084", "-s", "127.0.0.1", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8084", "-j", "DNAT", "--to-destination", "10.0.0.2:84"],
    ]);

    const ch6 = dnatChain(c, net6);
    assert.equal(ch6.entryRules[0]!.slice(-2), ["-c", "d"]);
    assert.equal(ch6.rules, [
      ["-p", "tcp", "--dport", "8080", "-s", "2001:db8::2/64", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "[2001:db8::2]:80"],
      ["-p", "tcp", "--dport", "8081", "-s", "2001:db8::2/64", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8081", "-j", "DNAT", "--to-destination", "[2001:db8::2]:80"],
      ["-p", "udp", "--dport", "8080", "-s", "2001:db8::2/64", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "udp", "--dport", "8080", "-j", "DNAT", "--to-destination", "[2001:db8::2]:81"],
      ["-p", "udp", "--dport", "8082", "-s", "2001:db8::2/64", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "udp", "--dport", "8082", "-j", "DNAT", "--to-destination", "[2001:db8::2]:82"],
      [
        "-p",
        "tcp",
        "--dport",
        "8085",
        "-d",
        "2001:db8:a::1",
        "-s",
        "2001:db8::2/64",
        "-j",
        "CNI-HOSTPORT-SETMARK",
      ],
      [
        "-p",
        "tcp",
        "--dport",
        "8085",
        "-d",
        "2001:db8:a::1",
        "-j",
        "DNAT",
        "--to-destination",
        "[2001:db8::2]:85",
      ],
      ["-p", "tcp", "--dport", "8086", "-s", "2001:db8::2/64", "-j", "CNI-HOSTPORT-SETMARK"],
      ["-p", "tcp", "--dport", "8086", "-j", "DNAT", "--to-destination", "[2001:db8::2]:86"],
    ]);

    const noSnat = { ...c, snat: false };
    assert.equal(dnatChain(noSnat, net4).rules, [
      ["-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.0.0.2:80"],
      ["-p", "tcp", "--dport", "8081", "-j", "DNAT", "--to-destination", "10.0.0.2:80"],
      ["-p", "udp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.0.0.2:81"],
      ["-p", "udp", "--dport", "8082", "-j", "DNAT", "--to-destination", "10.0.0.2:82"],
      ["-p", "tcp", "--dport", "8083", "-d", "192.168.0.2", "-j", "DNAT", "--to-destination", "10.0.0.2:83"],
      ["-p", "tcp", "--dport", "8084", "-j", "DNAT", "--to-destination", "10.0.0.2:84"],
    ]);
  });

  rules(`[${ver}] externalSetMarkChain replaces the mark chain and creates no mark chains`, () => {
    const c = conf(
      {
        runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
        externalSetMarkChain: "PLZ-SET-MARK",
        conditionsV4: ["-a", "b"],
        conditionsV6: ["-c", "d"],
      },
      ver,
    );
    assert.equal(dnatChain(c, net4).rules, [
      ["-p", "tcp", "--dport", "8080", "-s", "10.0.0.2/24", "-j", "PLZ-SET-MARK"],
      ["-p", "tcp", "--dport", "8080", "-s", "127.0.0.1", "-j", "PLZ-SET-MARK"],
      ["-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.0.0.2:80"],
    ]);
    assert.equal(
      sharedChains(c).map((x) => x.name),
      ["CNI-HOSTPORT-DNAT"],
    );
  });
}

rules("masqAll masquerades any source and drops the localhost rule", () => {
  const c = conf({
    runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
    masqAll: true,
  });
  assert.equal(dnatChain(c, net4).rules, [
    ["-p", "tcp", "--dport", "8080", "-s", "0.0.0.0/0", "-j", "CNI-HOSTPORT-SETMARK"],
    ["-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.0.0.2:80"],
  ]);
  assert.equal(dnatChain(c, net6).rules[0], [
    "-p",
    "tcp",
    "--dport",
    "8080",
    "-s",
    "::/0",
    "-j",
    "CNI-HOSTPORT-SETMARK",
  ]);
});

rules("top-level chain", () => {
  assert.equal(topLevelDnatChain(), {
    name: "CNI-HOSTPORT-DNAT",
    entryChains: ["PREROUTING", "OUTPUT"],
    entryRules: [["-m", "addrtype", "--dst-type", "LOCAL"]],
    rules: [],
    prependEntry: false,
  });
});

rules("mark chains for bit 5 use 0x20/0x20; the default bit 13 gives 0x2000/0x2000", () => {
  assert.equal(setMarkChain(5), {
    name: "CNI-HOSTPORT-SETMARK",
    entryChains: [],
    entryRules: [],
    rules: [
      ["-m", "comment", "--comment", "CNI portfwd masquerade mark", "-j", "MARK", "--set-xmark", "0x20/0x20"],
    ],
    prependEntry: false,
  });
  assert.equal(markMasqChain(5), {
    name: "CNI-HOSTPORT-MASQ",
    entryChains: ["POSTROUTING"],
    entryRules: [["-m", "comment", "--comment", "CNI portfwd requiring masquerade"]],
    rules: [["-m", "mark", "--mark", "0x20/0x20", "-j", "MASQUERADE"]],
    prependEntry: true,
  });
  const c = conf({ runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 1, protocol: "tcp" }] } });
  assert.equal(sharedChains(c)[0]!.rules[0]!.at(-1), "0x2000/0x2000");
  assert.equal(markMasqChain(0).rules[0]![3], "0x1/0x1");
  assert.equal(markMasqChain(31).rules[0]![3], "0x80000000/0x80000000");
});

rules("multiport entries split at 15 ports per protocol, protocols sorted", () => {
  assert.equal(splitPortList([1, 2, 3]), ["1,2,3"]);
  const ports = Array.from({ length: 32 }, (_, i) => 9000 + i);
  assert.equal(splitPortList(ports), [
    ports.slice(0, 15).join(","),
    ports.slice(15, 30).join(","),
    ports.slice(30).join(","),
  ]);
  const c = conf({
    runtimeConfig: {
      portMappings: [
        ...ports.map((p) => ({ hostPort: p, containerPort: 80, protocol: "udp" })),
        { hostPort: 7000, containerPort: 70, protocol: "tcp" },
      ],
    },
  });
  const entries = dnatChain(c, net4).entryRules.map((r) => [r[7], r[9]]);
  assert.equal(entries, [
    ["tcp", "7000"],
    ["udp", ports.slice(0, 15).join(",")],
    ["udp", ports.slice(15, 30).join(",")],
    ["udp", ports.slice(30).join(",")],
  ]);
});

rules.run();
