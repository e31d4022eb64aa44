import { SUPPORTED_VERSIONS } from "../../shared/cni/versions.js";

/**
 * The conflists `weft install` writes, embedded in the executable: an init container has the executable
 * and nothing else of the repository. They are conflists/10-flannel.conflist and
 * conflists/10-flannel-dualstack.conflist; a unit test (install-conflists) keeps the two in step.
 */

/** The name kube-flannel's init container gives the list (`cp -f ... /etc/cni/net.d/10-flannel.conflist`). */
export const CONFLIST_NAME = "10-flannel.conflist";

const flannelList = (cniVersion: string) => ({
  name: "cbr0",
  cniVersion,
  plugins: [
    { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
});

/** The kube-flannel list (flannel's kube-flannel.yml `cni-conf.json`), for vxlan and host-gw alike. */
export const FLANNEL_CONFLIST = flannelList("0.3.1");
/** The same list at 1.0.0 (no ips[].version, cached result on DEL, CHECK), for dual-stack nodes. */
export const FLANNEL_DUALSTACK_CONFLIST = flannelList("1.0.0");

/** A list as the file holds it: two-space JSON and a final newline, like the files in conflists/. */
export function renderConflist(list: unknown): string {
  return `${JSON.stringify(list, null, 2)}\n`;
}

export interface ConflistSummary {
  name: string;
  cniVersion: string;
  types: string[];
}

/**
 * What libcni needs to load a file as a network list (ConfListFromBytes), checked before it goes where
 * kubelet reads: JSON, a `name`, a `cniVersion` weft speaks, and a non-empty `plugins` list whose every
 * entry has a `type`. Throws with the reason.
 */
export function validateConflist(text: string): ConflistSummary {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("not a JSON object");
  const list = doc as Record<string, unknown>;
  if (typeof list.name !== "string" || list.name === "") throw new Error('no "name" (a non-empty string)');
  if (
    typeof list.cniVersion !== "string" ||
    !(SUPPORTED_VERSIONS as readonly string[]).includes(list.cniVersion)
  ) {
    throw new Error(
      `"cniVersion" ${JSON.stringify(list.cniVersion)} is not supported: allowed: ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) {
    throw new Error('no "plugins" (a non-empty list): a single network config is not a conflist');
  }
  const types = list.plugins.map((p, i) => {
    const type = p && typeof p === "object" ? (p as Record<string, unknown>).type : undefined;
    if (typeof type !== "string" || type === "") throw new Error(`plugins[${i}] has no "type"`);
    return type;
  });
  return { name: list.name, cniVersion: list.cniVersion, types };
}
