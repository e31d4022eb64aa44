/**
 * hostPort under containerd: the kube-flannel list driven through go-cni (test/tools/gocni) as the CRI
 * plugin drives it, so the port mappings reach portmap as go-cni's untagged struct
 * ({"HostPort":..,"ContainerPort":..,"Protocol":..,"HostIP":..}), which the reference decodes
 * case-insensitively (Go's encoding/json). Real TCP/UDP traffic from another namespace via the node
 * address, from the node itself and from 127.0.0.1; after Remove nothing is left.
 *
 * Each case runs with weft's portmap and with the reference's (the same test passing with the reference
 * proves the test right); bridge and host-local are weft's when weft implements them.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dnatChainName } from "../../plugins/portmap/chains.js";
import { CriNode, type CriPod, gocni } from "../helpers/gocni.js";
import {
  eventually,
  natLinesOf,
  Outside,
  randomPort,
  Servers,
  tcpOnce,
  udpOnce,
} from "../helpers/hostport.js";
import { uniqueName } from "../helpers/names.js";
import { assertRoot, TestNetns } from "../helpers/netns.js";
import { type DelegateSet, delegateSets, installReference } from "../helpers/podpath.js";

assertRoot();

// ---- what the client sends: a recording plugin -------------------------------------------------------

const sent = suite("go-cni client: what containerd's CRI plugin sends to the plugins");

sent(
  "capability args are go-cni's untagged structs (HostPort, Servers, IngressRate, Subnet); CRI labels in CNI_ARGS",
  () => {
    const root = mkdtempSync(join(tmpdir(), "weft-gocni-rec-"));
    const ns = TestNetns.create("wgcr");
    try {
      const bin = join(root, "bin");
      const rec = join(root, "rec");
      mkdirSync(bin);
      mkdirSync(rec);
      mkdirSync(join(root, "net.d"));
      installReference(bin, "loopback");
      // Saves stdin and the CNI_* environment per command; ADD answers one address.
      writeFileSync(
        join(bin, "weft-recorder"),
        [
          "#!/bin/sh",
          `cat > "${rec}/$CNI_COMMAND.json"`,
          `env | grep '^CNI_' > "${rec}/$CNI_COMMAND.env"`,
          `[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","ips":[{"address":"10.9.9.9/24"}]}'`,
          "exit 0",
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      const netName = uniqueName("wrec");
      const capabilities = {
        portMappings: true,
        dns: true,
        bandwidth: true,
        ipRanges: true,
        "io.kubernetes.cri.pod-annotations": true,
      };
      writeFileSync(
        join(root, "net.d", "10-rec.conflist"),
        JSON.stringify({
          cniVersion: "1.0.0",
          name: netName,
          plugins: [{ type: "weft-recorder", capabilities }],
        }),
      );
      const id = "a".repeat(64);
      const pod: CriPod = {
        metadata: { name: "web", namespace: "shop", uid: "0c5e-uid" },
        annotations: { "example.com/owner": "weft" },
        portMappings: [
          { hostPort: 8080, containerPort: 80, protocol: "TCP" },
          { hostPort: 0, containerPort: 9090 }, // no hostPort: the CRI plugin drops it
          { hostPort: 8053, containerPort: 53, protocol: "UDP", hostIp: "127.0.0.1" },
        ],
        dnsConfig: { servers: ["10.96.0.10"], searches: ["shop.svc.cluster.local"], options: ["ndots:5"] },
        bandwidth: { ingressRate: 1000000, egressRate: 2000000 },
        ipRanges: [{ subnet: "10.9.9.0/24", gateway: "10.9.9.1" }],
      };
      const o = { confDir: join(root, "net.d"), pluginDirs: [bin], cacheDir: join(root, "cache"), pod };
      const setup = gocni("setup", ns.path, id, o);
      assert.is(setup.status, 0, setup.stdout + setup.stderr);
      assert.is(setup.json?.podIP, "10.9.9.9");

      const stdin = readFileSync(join(rec, "ADD.json"), "utf8");
      // The exact keys on the wire, before any JSON parsing could hide their case.
      assert.match(
        stdin,
        /"portMappings":\[\{"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""\}/,
      );
      const runtimeConfig = (JSON.parse(stdin) as { runtimeConfig: Record<string, unknown> }).runtimeConfig;
      assert.equal(runtimeConfig, {
        bandwidth: {
          IngressRate: 1000000,
          IngressBurst: 4294967295,
          EgressRate: 2000000,
          EgressBurst: 4294967295,
        },
        dns: { Servers: ["10.96.0.10"], Searches: ["shop.svc.cluster.local"], Options: ["ndots:5"] },
        "io.kubernetes.cri.pod-annotations": { "example.com/owner": "weft" },
        ipRanges: [{ Subnet: "10.9.9.0/24", RangeStart: "", RangeEnd: "", Gateway: "10.9.9.1" }],
        portMappings: [
          { HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "" },
          { HostPort: 8053, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1" },
        ],
      });
      const env = readFileSync(join(rec, "ADD.env"), "utf8");
      assert.match(env, `CNI_CONTAINERID=${id}`);
      assert.match(env, "CNI_IFNAME=eth0");
      const args = new Set(/^CNI_ARGS=(.*)$/m.exec(env)![1]!.split(";"));
      assert.equal(
        args,
        new Set([
          "IgnoreUnknown=1",
          "K8S_POD_NAMESPACE=shop",
          "K8S_POD_NAME=web",
          `K8S_POD_INFRA_CONTAINER_ID=${id}`,
          "K8S_POD_UID=0c5e-uid",
        ]),
      );

      // Remove sends the same options (the CRI plugin keeps the sandbox config).
      const remove = gocni("remove", ns.path, id, o);
      assert.is(remove.status, 0, remove.stdout + remove.stderr);
      const del = JSON.parse(readFileSync(join(rec, "DEL.json"), "utf8")) as { runtimeConfig: unknown };
      assert.equal(del.runtimeConfig, runtimeConfig);
    } finally {
      ns.delete();
      rmSync(root, { recursive: true, force: true });
    }
  },
);

sent.run();

// ---- hostPort traffic, weft's portmap and the reference's ---------------------------------------------

const delegates: DelegateSet = (await delegateSets()).includes("weft") ? "weft" : "reference";

for (const portmap of ["weft", "reference"] as const) {
  const t = suite(`go-cni (containerd CRI): hostPort [${portmap} portmap, ${delegates} bridge/host-local]`);

  for (const version of ["0.3.1", "1.0.0"]) {
    t(
      `cniVersion ${version}: TCP/UDP answer via the node address from another namespace, from the node, via 127.0.0.1; Remove leaves nothing`,
      async () => {
        const node = await CriNode.create({ cniVersion: version, delegates });
        const outside = new Outside();
        const servers: Servers[] = [];
        try {
          node.pp.usePlugin("portmap", portmap);
          const a = node.pod();
          const b = node.pod();
          const tcp = randomPort();
          const udp = tcp + 1;
          const portMappings = [
            { hostPort: tcp, containerPort: 80, protocol: "TCP" as const },
            { hostPort: udp, containerPort: 53, protocol: "UDP" as const },
          ];
          const setup = node.setup(a, { portMappings });
          // Before weft decodes keys as Go does, weft's portmap fails here: "Invalid container port number: 0".
          assert.is(setup.status, 0, setup.stdout + setup.stderr);
          const rb = node.setupOk(b);
          servers.push(new Servers(a.netns, "podA"));
          const nodeIp = outside.nodeIp;

          assert.is(
            eventually(() => tcpOnce(outside.ns, nodeIp, tcp)),
            "podA",
            "outside -> node:tcp",
          );
          assert.is(
            eventually(() => udpOnce(outside.ns, nodeIp, udp)),
            "podA",
            "outside -> node:udp",
          );
          assert.is(
            eventually(() => tcpOnce(undefined, nodeIp, tcp)),
            "podA",
            "node -> own address",
          );
          assert.is(
            eventually(() => tcpOnce(undefined, "127.0.0.1", tcp)),
            "podA",
            "node -> 127.0.0.1",
          );
          assert.is(
            eventually(() => tcpOnce(b.netns, nodeIp, tcp)),
            "podA",
            "other pod -> node",
          );
          const chain = dnatChainName(node.pp.netName, a.containerId);
          assert.ok(natLinesOf(node.pp.netName, [a.containerId]).includes(`:${chain} - [0:0]`), chain);

          const status = node.status();
          assert.is(status.status, 0, status.stdout + status.stderr);

          const podIp = (setup.json as { podIP: string }).podIP;
          const remove = node.remove(a);
          assert.is(remove.status, 0, remove.stdout + remove.stderr);
          assert.equal(natLinesOf(node.pp.netName, [a.containerId]), [], "no chain or rule of the pod");
          assert.not.ok(node.pp.reservations().includes(podIp), "reservation released");
          assert.not.ok(node.pp.savedConfigs().includes(a.containerId), "saved flannel config removed");
          assert.not.ok(node.cachedResultExists(a), "cached result removed");
          const vethB = (rb.raw[1] as { interfaces: Array<{ name: string }> }).interfaces[1]!.name;
          assert.equal(node.pp.bridgePorts(), [vethB], "only the other pod's veth on the bridge");
          assert.is(tcpOnce(outside.ns, nodeIp, tcp), undefined, "nothing answers on the hostPort");
          assert.is(udpOnce(outside.ns, nodeIp, udp), undefined, "nothing answers UDP on the hostPort");
          assert.is(tcpOnce(undefined, "127.0.0.1", tcp), undefined, "nothing answers on 127.0.0.1");
          assert.ok(existsSync(a.netns.path), "the netns is the runtime's");
        } finally {
          for (const s of servers) s.stop();
          node.cleanup();
          outside.delete();
        }
      },
    );
  }

  t.run();
}
