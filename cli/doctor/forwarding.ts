import { FORWARD_CHAIN, forwardRules, MASQ_CHAIN, masqRules, planTable } from "../../daemon/rules.js";
import type { Family } from "../../shared/net/iptables.js";
import { readSysctl, writeSysctl } from "../../shared/net/sysctl.js";
import type { NodeState } from "./node.js";
import { type Check, ok, problem, skipped } from "./report.js";

/**
 * Forwarding on the node: ip_forward, the FORWARD chain's policy, and weftd's FLANNEL-FWD and
 * FLANNEL-POSTRTG chains compared rule for rule with what weftd installs (daemon/rules.ts builds both).
 */

const FORWARD_KEY: Record<Family, string> = { 4: "net/ipv4/ip_forward", 6: "net/ipv6/conf/all/forwarding" };

/** A saved table's policy of a built-in chain (`:FORWARD DROP [0:0]` -> "DROP"). */
export function policyOf(savedTable: string, chain: string): string | undefined {
  const m = new RegExp(`^:${chain} (\\S+)`, "m").exec(savedTable);
  return m?.[1];
}

/** Whether a saved nat table holds weftd's masquerade rules for this network and lease (either MASQUERADE form). */
export function hasMasqRules(savedNat: string, family: Family, network: string, subnet: string): boolean {
  return [true, false].some((rf) => planTable(savedNat, masqRules(family, network, subnet, rf)).length === 0);
}

export function hasForwardRules(savedFilter: string, network: string): boolean {
  return planTable(savedFilter, forwardRules(network)).length === 0;
}

export async function forwardingChecks(node: NodeState): Promise<Check[]> {
  const env = await node.subnetEnv();
  const families: Family[] = env.ok
    ? [...(env.value.subnet ? [4 as const] : []), ...(env.value.ipv6Subnet ? [6 as const] : [])]
    : [4];
  const out: Check[] = [];
  for (const f of families) {
    const key = FORWARD_KEY[f];
    const value = readSysctl(key);
    const name = key.replace(/\//g, ".");
    if (value === "1") out.push(ok(`ip-forward${f === 6 ? "6" : ""}`, `${name} = 1`));
    else
      out.push(
        problem(
          `ip-forward${f === 6 ? "6" : ""}`,
          `${name} is ${value ?? "unreadable"}: this node does not forward its pods' traffic (pods reach nothing beyond the node)`,
          `sysctl -w ${name}=1, and persist it in /etc/sysctl.d`,
          async () => {
            writeSysctl(key, "1");
            return `set ${name} = 1 (persist it in /etc/sysctl.d)`;
          },
        ),
      );
  }
  if (!env.ok) {
    out.push(skipped("iptables", "subnet.env cannot be read (see subnet-env): the pod network is unknown"));
    return out;
  }
  for (const f of families) {
    const v = f === 6 ? "6" : "";
    const network = f === 4 ? env.value.networks[0] : env.value.ipv6Networks[0];
    const subnet = f === 4 ? env.value.subnet : env.value.ipv6Subnet;
    if (!network || !subnet) continue;
    const tables = await node.iptables(f);
    if (!tables.ok) {
      out.push(
        problem(
          `iptables${v}`,
          `cannot read the IPv${f} rules: ${tables.error}`,
          "install iptables (see host-programs) and run doctor as root",
        ),
      );
      continue;
    }
    const filter = tables.value.get("filter") ?? "";
    const nat = tables.value.get("nat") ?? "";
    const policy = policyOf(filter, "FORWARD") ?? "ACCEPT";
    const fwd = hasForwardRules(filter, network);
    if (policy === "ACCEPT")
      out.push(
        ok(
          `forward-policy${v}`,
          `FORWARD policy ACCEPT${fwd ? `, ${FORWARD_CHAIN} accepts ${network}` : ""}`,
        ),
      );
    else if (fwd)
      out.push(ok(`forward-policy${v}`, `FORWARD policy ${policy}, ${FORWARD_CHAIN} accepts ${network}`));
    else
      out.push(
        problem(
          `forward-policy${v}`,
          `FORWARD policy is ${policy} and ${FORWARD_CHAIN} does not accept the pod network ${network}: traffic between pods of different nodes is dropped`,
          `weftd installs ${FORWARD_CHAIN} (--iptables-forward-rules, the default) and re-checks it every --iptables-resync seconds: is weftd running? Otherwise iptables -P FORWARD ACCEPT`,
        ),
      );
    if (!env.value.ipMasq) {
      out.push(
        skipped(
          `masq-rules${v}`,
          `FLANNEL_IPMASQ=false: weftd runs without --ip-masq (the bridge masquerades each pod instead)`,
        ),
      );
    } else if (hasMasqRules(nat, f, network, subnet)) {
      out.push(ok(`masq-rules${v}`, `${MASQ_CHAIN} masquerades ${network} leaving the pod network`));
    } else {
      out.push(
        problem(
          `masq-rules${v}`,
          `FLANNEL_IPMASQ=true but weftd's ${MASQ_CHAIN} rules for ${network} and ${subnet} are missing or differ: pods' traffic leaving the pod network is not masqueraded (replies never come back)`,
          `weftd puts them back within --iptables-resync seconds while it runs: is weftd running (see weftd)? Its log says "Some iptables rules are missing" when it repairs them`,
        ),
      );
    }
  }
  return out;
}
