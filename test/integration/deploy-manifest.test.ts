/**
 * deploy/weft.yml and deploy/Dockerfile name only what exists: the manifest parses (PyYAML, as kubectl's
 * YAML 1.1), every executable it runs is one the image installs and the build makes, every weftd flag is
 * accepted by weftd's own parser with the values given, install's flags are install's, the host paths it
 * mounts are the ones the plugins, install and weftd use, its conflist is conflists/10-flannel.conflist,
 * its net-conf.json passes weftd's checks, and the probes hit weftd's health port. The Dockerfile's COPY
 * sources exist after `npm run build` and pass its .dockerignore. Runs after the build (integration).
 * The image itself is not built here: no container engine on this machine.
 */

import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_BIN_DIR, DEFAULT_CONF_DIR, parseInstallFlags } from "../../cli/install/flags.js";
import { type Flags, parseArgs } from "../../daemon/flags.js";
import { parseNetConf } from "../../daemon/net-conf.js";
import { DEFAULT_DATA_DIR as FLANNEL_DATA_DIR } from "../../plugins/flannel/saved-config.js";
import { DEFAULT_CNI_SOCKET } from "../../shared/cni/socket-protocol.js";
import { DEFAULT_SUBNET_FILE } from "../../shared/flannel/subnet-env.js";
import { DEFAULT_DATA_DIR as HOST_LOCAL_DATA_DIR } from "../../shared/ipam/config.js";
import { repoRoot } from "../helpers/cnitool.js";
import { weftBinDir } from "../helpers/podpath.js";
import { loadYamlDocuments } from "../helpers/yaml.js";

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  mountPropagation?: string;
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: Mount[];
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
  secret?: { secretName: string };
}
interface PodSpec {
  hostNetwork?: boolean;
  priorityClassName?: string;
  tolerations?: Array<{ operator?: string; effect?: string }>;
  automountServiceAccountToken?: boolean;
  serviceAccountName?: string;
  initContainers: Container[];
  containers: Container[];
  volumes: Volume[];
}
interface Doc {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

const root = repoRoot();
const docs = loadYamlDocuments(join(root, "deploy", "weft.yml")).filter((d) => d !== null) as Doc[];
const one = (kind: string) => {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`deploy/weft.yml: ${found.length} ${kind} documents, want 1`);
  return found[0]!;
};
const ns = one("Namespace");
const cm = one("ConfigMap");
const ds = one("DaemonSet");
const pod = ds.spec!.template.spec;
const init = pod.initContainers.find((c) => c.name === "install-cni")!;
const weftd = pod.containers.find((c) => c.name === "weftd")!;
const cni = pod.containers.find((c) => c.name === "cni")!;
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

/** What the image installs: COPY destinations and the `ln` names of deploy/Dockerfile. */
const dockerfile = readFileSync(join(root, "deploy", "Dockerfile"), "utf8");
const copies = [...dockerfile.matchAll(/^COPY\s+(\S+)\s+(\S+)\s*$/gm)].map((m) => ({
  src: m[1]!,
  dest: m[2]!,
}));
const linkLine = /^RUN for name in ([\w\s-]+?); do ln (\S+) "([^"$]+)\$name"; done$/m.exec(dockerfile);
const linked = linkLine ? linkLine[1]!.split(/\s+/) : [];
const imageFiles = new Set([
  ...copies.map((c) => c.dest),
  ...linked.map((n) => posix.join(linkLine![3]!, n)),
]);
const built = readdirSync(weftBinDir()).filter((f) => !f.startsWith("."));

/** The volume mounted at the directory holding `path` in `c` (the longest mountPath prefix). */
function volumeOf(c: Container, path: string): { mount: Mount; volume: Volume } {
  const mounts = (c.volumeMounts ?? [])
    .filter(
      (m) => path === m.mountPath.replace(/\/$/, "") || path.startsWith(m.mountPath.replace(/\/?$/, "/")),
    )
    .sort((a, b) => b.mountPath.length - a.mountPath.length);
  const mount = mounts[0];
  if (!mount) throw new Error(`${c.name}: nothing is mounted at ${path}`);
  const volume = pod.volumes.find((v) => v.name === mount.name);
  if (!volume) throw new Error(`${c.name}: the mount ${mount.name} has no volume`);
  return { mount, volume };
}

/** The host path a container path lands on, through its hostPath mount. */
function hostPathOf(c: Container, path: string): string {
  const { mount, volume } = volumeOf(c, path);
  assert.ok(volume.hostPath, `${c.name}: ${path} is on the volume ${volume.name}, not a hostPath`);
  return posix.join(volume.hostPath!.path, posix.relative(mount.mountPath, path));
}

/** The ConfigMap key a container path reads, through its configMap mount. */
function configMapKeyOf(c: Container, path: string): string {
  const { mount, volume } = volumeOf(c, path);
  assert.is(volume.configMap?.name, cm.metadata.name, `${c.name}: ${path} is not on the ConfigMap`);
  return posix.relative(mount.mountPath, path);
}

const s = suite("deploy/weft.yml and deploy/Dockerfile");

s("the manifest is a Namespace, a ConfigMap and a DaemonSet in it, and no API access", () => {
  assert.equal(docs.map((d) => d.kind).sort(), ["ConfigMap", "DaemonSet", "Namespace"]);
  for (const d of [cm, ds]) assert.is(d.metadata.namespace, ns.metadata.name, `${d.kind}'s namespace`);
  // weftd never calls the Kubernetes API (etcd store), so neither RBAC objects nor a token.
  assert.is(pod.automountServiceAccountToken, false);
  assert.is(pod.serviceAccountName, undefined);
  assert.is(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"], "privileged");
  for (const [k, v] of Object.entries(ds.spec!.selector.matchLabels))
    assert.is(ds.spec!.template.metadata.labels[k], v, `the selector's ${k} matches the pods`);
});

s(
  "the pods run on every node like kube-flannel's: host network, node-critical, every NoSchedule taint",
  () => {
    assert.is(pod.hostNetwork, true);
    assert.is(pod.priorityClassName, "system-node-critical");
    assert.ok(pod.tolerations?.some((t) => t.operator === "Exists" && t.effect === "NoSchedule"));
  },
);

s("every mount names a volume, and every volume is mounted", () => {
  const used = new Set<string>();
  for (const c of [...pod.initContainers, ...pod.containers]) {
    for (const m of c.volumeMounts ?? []) {
      assert.ok(
        pod.volumes.some((v) => v.name === m.name),
        `${c.name}: volume ${m.name}`,
      );
      used.add(m.name);
    }
  }
  assert.equal([...used].sort(), pod.volumes.map((v) => v.name).sort());
});

s("both containers run the image the Dockerfile builds, tagged with the package version", () => {
  for (const c of [init, weftd, cni]) assert.is(c.image, `weft:${version}`, c.name);
  assert.match(dockerfile, `docker build -f deploy/Dockerfile -t weft:${version} .`);
});

s(
  "the Dockerfile installs every name the build makes, from sources that exist and pass its ignore file",
  () => {
    assert.ok(linkLine, "the Dockerfile's `RUN for name in ...; do ln ...` line");
    const weftInImage = copies.find((c) => c.src === "dist/bin/weft");
    assert.ok(weftInImage, "COPY dist/bin/weft");
    assert.is(linkLine![2], weftInImage!.dest, "the links point at the copied executable");
    assert.equal([...linked, "weft"].sort(), [...built].sort(), "the image has the names of dist/bin");
    const ignore = readFileSync(join(root, "deploy", "Dockerfile.dockerignore"), "utf8").split("\n");
    assert.is(
      ignore.find((l) => l.trim() && !l.startsWith("#")),
      "*",
      "the context starts empty",
    );
    for (const { src } of copies) {
      accessSync(join(root, src), constants.X_OK);
      assert.ok(ignore.includes(`!${src}`), `${src} is let into the build context`);
    }
  },
);

s("the init container runs `weft install` into the node's CNI directories", () => {
  assert.ok(imageFiles.has(init.command[0]!), `${init.command[0]} is in the image`);
  assert.is(posix.basename(init.command[0]!), "weft");
  assert.is(init.command[1], "install");
  const args = init.args ?? [];
  // install's own parser: an unknown flag or a bad value throws, naming it.
  const flags = parseInstallFlags(args);
  // kubelet's and containerd's default CNI directories, which are install's defaults too.
  assert.is(hostPathOf(init, flags.binDir), DEFAULT_BIN_DIR);
  assert.is(hostPathOf(init, flags.confDir), DEFAULT_CONF_DIR);
  assert.ok(flags.conflist, "the init container installs the ConfigMap's list");
  assert.is(configMapKeyOf(init, flags.conflist!), "cni-conf.json");
  const given = new Map([
    ["--bin-dir", flags.binDir],
    ["--conf-dir", flags.confDir],
  ]);
  for (const dir of ["--bin-dir", "--conf-dir"])
    assert.not.ok(volumeOf(init, given.get(dir)!).mount.readOnly, `${dir} is writable`);
});

s("the ConfigMap's conflist is conflists/10-flannel.conflist", () => {
  const file = readFileSync(join(root, "conflists", "10-flannel.conflist"), "utf8");
  assert.is(cm.data?.["cni-conf.json"]?.trim(), file.trim());
});

s("the ConfigMap's net-conf.json passes weftd's checks", async () => {
  const config = await parseNetConf(cm.data!["net-conf.json"]!);
  assert.ok(config.network, "an IPv4 network");
});

/** weftd's settings from a container's args, through weftd's own parser, with no environment. */
function weftdFlags(c: Container = weftd): Flags {
  const parsed = parseArgs(c.args ?? [], {});
  if (parsed.action !== "run") throw new Error(`${c.name}'s args ask for ${parsed.action}`);
  assert.equal(parsed.warnings, [], "no flag is ignored");
  return parsed.flags;
}

s("the main container runs weftd (through iptables-mode), and weftd accepts every flag", () => {
  for (const exe of weftd.command) assert.ok(imageFiles.has(exe), `${exe} is in the image`);
  assert.equal(
    weftd.command.map((c) => posix.basename(c)),
    ["iptables-mode", "weftd"],
  );
  const mode = copies.find((c) => c.dest === weftd.command[0]);
  assert.is(mode?.src, "deploy/iptables-mode.sh");
  const flags = weftdFlags();
  assert.is(flags.store, "etcd");
  assert.ok(flags.ipMasq, "--ip-masq, as kube-flannel.yml");
});

s("weftd's files are where the plugins and the Secret and ConfigMap put them", () => {
  const flags = weftdFlags();
  // The flannel plugin reads subnet.env at its default path on the host.
  assert.is(hostPathOf(weftd, flags.subnetFile), DEFAULT_SUBNET_FILE);
  assert.not.ok(volumeOf(weftd, dirname(flags.subnetFile)).mount.readOnly);
  assert.is(configMapKeyOf(weftd, flags.netConfigPath), "net-conf.json");
  assert.ok(flags.netConfigPathGiven, "the ConfigMap's net-conf.json is the one read");
  for (const file of [flags.etcdCafile, flags.etcdCertfile, flags.etcdKeyfile]) {
    assert.ok(file, "TLS to etcd");
    assert.ok(volumeOf(weftd, file).volume.secret?.secretName, `${file} comes from a Secret`);
  }
  // iptables' lock is the node's, shared with kubelet and kube-proxy.
  assert.is(hostPathOf(weftd, "/run/xtables.lock"), "/run/xtables.lock");
});

s("the probes ask weftd's health server: /healthz for liveness, /readyz for readiness", () => {
  const flags = weftdFlags();
  assert.ok(flags.healthzPort > 0, "--healthz-port is set");
  assert.ok(["0.0.0.0", "::"].includes(flags.healthzIp), "kubelet probes the node's address");
  const port = (p: Probe) =>
    typeof p.httpGet.port === "number"
      ? p.httpGet.port
      : weftd.ports?.find((x) => x.name === p.httpGet.port)?.containerPort;
  assert.is(weftd.livenessProbe?.httpGet.path, "/healthz");
  assert.is(weftd.readinessProbe?.httpGet.path, "/readyz");
  assert.is(port(weftd.livenessProbe!), flags.healthzPort);
  assert.is(port(weftd.readinessProbe!), flags.healthzPort);
});

s(
  "weftd is not privileged: NET_ADMIN and NET_RAW only; it leaves the plugins' calls to the cni container",
  () => {
    assert.is(weftd.securityContext?.privileged, false);
    assert.equal(weftd.securityContext?.capabilities?.add?.sort(), ["NET_ADMIN", "NET_RAW"]);
    // Without CAP_SYS_ADMIN and a writable /proc/sys it could not serve them (daemon/cni-server.ts
    // cannotServe); told not to, it does not warn so at every start.
    assert.is(weftdFlags().cniSocket, "", "--cni-socket= (off)");
  },
);

s("the cni container is weftd --cni-only on the socket the plugins look for, with probes of its own", () => {
  assert.ok(cni, "a container named cni");
  assert.equal(cni.command, weftd.command, "weftd through iptables-mode, as the main container");
  assert.is(cni.image, weftd.image);
  const flags = weftdFlags(cni);
  assert.ok(flags.cniOnly, "--cni-only: no lease, routes or rules (the weftd container has them)");
  // The plugins' default: they find it with no WEFT_CNI_SOCKET in the runtime's environment.
  assert.is(flags.cniSocket, DEFAULT_CNI_SOCKET);
  const { mount, volume } = volumeOf(cni, dirname(flags.cniSocket));
  assert.is(hostPathOf(cni, flags.cniSocket), DEFAULT_CNI_SOCKET, "the socket is on the node");
  assert.is(volume.hostPath?.type, "DirectoryOrCreate", "the directory is made on a fresh node");
  assert.not.ok(mount.readOnly);
  assert.is(hostPathOf(cni, flags.subnetFile), DEFAULT_SUBNET_FILE, "/metrics' pod subnet");
  // Host network: its health port must not be weftd's.
  assert.ok(flags.healthzPort > 0 && flags.healthzPort !== weftdFlags().healthzPort);
  const port = (p: Probe) => cni.ports?.find((x) => x.name === p.httpGet.port)?.containerPort;
  assert.is(cni.livenessProbe?.httpGet.path, "/healthz");
  assert.is(cni.readinessProbe?.httpGet.path, "/readyz");
  assert.is(port(cni.livenessProbe!), flags.healthzPort);
  assert.is(port(cni.readinessProbe!), flags.healthzPort);
});

s(
  "the cni container can do what the plugins do: privileged, every host path a call touches at its own path",
  () => {
    // setns into pod namespaces and /proc/sys writes (daemon/cni-server.ts cannotServe).
    assert.is(cni.securityContext?.privileged, true);
    // The pods' namespaces, created after the container started, reach it: HostToContainer.
    const netns = volumeOf(cni, "/var/run/netns/cni-0123");
    assert.is(hostPathOf(cni, "/var/run/netns/cni-0123"), "/var/run/netns/cni-0123");
    assert.is(netns.mount.mountPropagation, "HostToContainer");
    // flannel's saved configs and host-local's reservations: the plugins' default data dirs, writable.
    for (const dir of [FLANNEL_DATA_DIR, HOST_LOCAL_DATA_DIR]) {
      assert.is(hostPathOf(cni, dir), dir);
      assert.not.ok(volumeOf(cni, dir).mount.readOnly, `${dir} is writable`);
    }
    // CNI_PATH: where the init container installs the plugins, which flannel's delegate is found in
    // (weftd declines a call whose executable it does not see there).
    const installed = hostPathOf(init, parseInstallFlags(init.args ?? []).binDir);
    assert.is(hostPathOf(cni, installed), installed);
    assert.is(hostPathOf(cni, "/run/xtables.lock"), "/run/xtables.lock");
  },
);

s.run();
