import { existsSync } from "node:fs";
import type { Lease } from "../../daemon/lease.js";
import type { SubnetEnv } from "../../shared/flannel/subnet-env.js";
import { canonicalIpText } from "../../shared/net/ipaddr.js";
import type { NodeState } from "./node.js";
import { type Check, ok, problem, skipped } from "./report.js";

/**
 * subnet.env, the store and this node's lease in it: the file the flannel plugin reads must exist, parse,
 * and name the subnet weftd holds (anchors 6.8: a missing file fails every pod; 6.9: a stale file means
 * duplicate subnets).
 */

/** This node's lease: the one whose public IP is an address of this node. */
export function ownLease(leases: Lease[], addresses: string[]): Lease | undefined {
  const mine = new Set(addresses.map(canonicalIpText));
  return leases.find((l) => mine.has(canonicalIpText(l.attrs.PublicIP)));
}

const gatewayText = (subnet: string) => subnet.replace(/\.0\/(\d+)$/, ".1/$1");

export function describeEnv(env: SubnetEnv): string {
  const parts = [
    env.networks.length > 0 ? `FLANNEL_NETWORK=${env.networks.join(",")}` : "",
    env.subnet ? `FLANNEL_SUBNET=${gatewayText(env.subnet)}` : "",
    env.ipv6Subnet ? `FLANNEL_IPV6_SUBNET=${env.ipv6Subnet}` : "",
    `FLANNEL_MTU=${env.mtu}`,
    `FLANNEL_IPMASQ=${env.ipMasq}`,
  ];
  return parts.filter(Boolean).join(" ");
}

export async function subnetEnvChecks(node: NodeState): Promise<Check[]> {
  const out: Check[] = [];
  const setup = await node.setup();
  const given = node.flags.subnetFile;
  if (given && setup.ok && setup.value.flannel && setup.value.subnetFile !== given) {
    out.push(
      problem(
        "subnet-file",
        `the flannel plugin reads ${setup.value.subnetFile} (subnetFile in ${setup.value.file}) but weftd writes ${given} (--subnet-file): every pod ADD fails or uses a stale subnet`,
        `make the conflist's subnetFile and weftd's --subnet-file the same file`,
      ),
    );
  }
  const env = await node.subnetEnv();
  const file = env.file;
  if (env.ok) {
    out.push(ok("subnet-env", `${file}: ${describeEnv(env.value)}`));
  } else if (!existsSync(file)) {
    out.push(
      problem(
        "subnet-env",
        `${file} does not exist: weftd has not written it (not running, not ready, or its --subnet-file is another file), so every pod ADD fails with "open ${file}: no such file or directory"`,
        `start weftd and wait for /readyz (see the weftd check); its --subnet-file must be ${file}`,
      ),
    );
  } else {
    out.push(
      problem(
        "subnet-env",
        `${file} cannot be used: ${env.error}`,
        `do not edit it by hand: delete it and restart weftd, which rewrites it for its lease`,
      ),
    );
  }
  return out;
}

export async function storeChecks(node: NodeState): Promise<Check[]> {
  const store = await node.store();
  if (!store)
    return [
      skipped(
        "store",
        `no store given and ${node.flags.storeDir} does not exist: pass weftd's store flags (--store-dir DIR, or --etcd-endpoints ...) to check the store and the leases`,
      ),
    ];
  if (!store.ok) {
    const etcd = node.flags.store === "etcd";
    return [
      problem(
        "store",
        etcd ? store.error : `the file store cannot be read: ${store.error}`,
        etcd
          ? `make etcd reachable from this node at ${node.flags.etcdEndpoints.join(",")} (is it running, is that its client URL, do the TLS files match?); weftd retries by itself and keeps its routes meanwhile`
          : `give weftd's --store-dir (the directory the daemons of this machine share)`,
      ),
    ];
  }
  const n = store.value.leases.length;
  return [ok("store", `${store.value.description}: ${n} lease${n === 1 ? "" : "s"}`)];
}

/** This node's lease against subnet.env. */
export async function leaseChecks(node: NodeState): Promise<Check[]> {
  const store = await node.store();
  if (!store?.ok) return [skipped("lease", "no leases to compare with (see the store check)")];
  const leases = store.value.leases;
  const addresses = await node.addresses();
  const own = ownLease(leases, addresses);
  const env = await node.subnetEnv();
  const envSubnet = env.ok ? env.value.subnet : undefined;
  if (!own) {
    const taken = envSubnet ? leases.find((l) => l.subnet === envSubnet) : undefined;
    return [
      problem(
        "lease",
        `no lease in ${store.value.description} carries a public IP of this node (${addresses.join(", ") || "none"})${
          taken ? `; subnet.env's ${envSubnet} is leased to ${taken.attrs.PublicIP}, another node` : ""
        }`,
        `weftd holds no lease: see its /readyz and log (store unreachable, no subnet left, or --public-ip/--iface picks another address)`,
      ),
    ];
  }
  const what = `${own.subnet ?? own.ipv6Subnet} for ${own.attrs.PublicIP} (${own.attrs.BackendType ?? "no backend"}${
    own.expiration === undefined ? ", a reservation" : `, expires ${new Date(own.expiration).toISOString()}`
  })`;
  if (!env.ok) return [ok("lease", `${what}; subnet.env not compared (see subnet-env)`)];
  const mismatch: string[] = [];
  if (own.subnet !== env.value.subnet) mismatch.push(`${env.value.subnet ?? "no IPv4 subnet"} (IPv4)`);
  if (own.ipv6Subnet !== env.value.ipv6Subnet && (own.ipv6Subnet || env.value.ipv6Subnet))
    mismatch.push(`${env.value.ipv6Subnet ?? "no IPv6 subnet"} (IPv6)`);
  if (mismatch.length > 0) {
    const holder = leases.find((l) => l !== own && l.subnet !== undefined && l.subnet === env.value.subnet);
    return [
      problem(
        "lease",
        `subnet.env (${env.file}) says ${mismatch.join(", ")} but weftd's lease is ${what}${
          holder
            ? `; ${env.value.subnet} is leased to ${holder.attrs.PublicIP}: two nodes hand out the same addresses`
            : ""
        }; pods get addresses no route leads to`,
        `restart weftd so it rewrites subnet.env for its lease; pods started with the old subnet keep their addresses until recreated`,
      ),
    ];
  }
  return [ok("lease", `${what}, as subnet.env says`)];
}
