import { randomBytes } from "node:crypto";

/**
 * The fuzz test's generator (test/integration/fuzz.test.ts runs what it makes): a seeded PRNG, a JSON
 * model that can hold what JSON.stringify cannot write (duplicate keys, number text such as 1e400), the
 * valid configs of each plugin the mutations start from, and the mutations themselves. Everything a case
 * contains follows from (seed, case index) alone, so a failure replays from the two numbers.
 */

// ---- PRNG ---------------------------------------------------------------------------------------------

/** A 32-bit mixing step (splitmix32's finaliser): nearby inputs give unrelated outputs. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** sfc32: small, fast, and good enough to pick mutations; seeded from one 32-bit number. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number) {
    this.a = mix32(seed);
    this.b = mix32(this.a);
    this.c = mix32(this.b);
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 2 ** 32) * n);
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error("pick from an empty list");
    return xs[this.int(xs.length)]!;
  }

  /** One of `choices`, each with its weight. */
  weighted<T>(choices: ReadonlyArray<readonly [T, number]>): T {
    const total = choices.reduce((s, [, w]) => s + w, 0);
    let r = (this.u32() / 2 ** 32) * total;
    for (const [v, w] of choices) {
      r -= w;
      if (r < 0) return v;
    }
    return choices[choices.length - 1]![0];
  }
}

/** The seed of case `index` of a run seeded with `seed`. */
export function caseSeed(seed: number, index: number): number {
  return mix32(mix32(seed) ^ Math.imul(index + 1, 0x27d4eb2d));
}

export function randomSeed(): number {
  return randomBytes(4).readUInt32LE(0);
}

// ---- JSON that keeps duplicates ----------------------------------------------------------------------

/** A number written exactly as this text (1e400, -0, 9007199254740993), which a JS number cannot keep. */
export class Raw {
  constructor(readonly text: string) {}
}

/** A JSON object as its ordered entries: the same key may occur twice, as the fuzzer writes it. */
export class Obj {
  constructor(readonly entries: Array<[string, J]> = []) {}
}

export type J = null | boolean | number | string | Raw | J[] | Obj;

export function fromPlain(v: unknown): J {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map(fromPlain);
  if (typeof v === "object") {
    return new Obj(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, fromPlain(x)]));
  }
  if (typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v;
  throw new Error(`not JSON: ${String(v)}`);
}

/** Compact JSON text of `v`, duplicate keys and raw numbers as they are. */
export function toText(v: J): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Obj)
    return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${toText(x)}`).join(",")}}`;
  if (Array.isArray(v)) return `[${v.map(toText).join(",")}]`;
  return JSON.stringify(v);
}

/** The string values of the top-level entries named `key` in any letter case (a decoder may take any). */
export function topLevelStrings(o: J, key: string): string[] {
  if (!(o instanceof Obj)) return [];
  return o.entries
    .filter(([k, v]) => k.toLowerCase() === key.toLowerCase() && typeof v === "string")
    .map(([, v]) => v as string);
}

/** One place in the tree a mutation can change: an entry of an object or an item of an array. */
interface Slot {
  parent: Obj | J[];
  index: number;
  /** The object key, for entries. */
  key?: string;
  /** `ipam.ranges[0][0].subnet`: where the mutation happened, for the report. */
  path: string;
  value: J;
}

function slotsOf(root: J): Slot[] {
  const out: Slot[] = [];
  const walk = (v: J, path: string) => {
    if (v instanceof Obj) {
      v.entries.forEach(([k, x], index) => {
        const p = path ? `${path}.${k}` : k;
        out.push({ parent: v, index, key: k, path: p, value: x });
        walk(x, p);
      });
    } else if (Array.isArray(v)) {
      v.forEach((x, index) => {
        const p = `${path}[${index}]`;
        out.push({ parent: v, index, path: p, value: x });
        walk(x, p);
      });
    }
  };
  walk(root, "");
  return out;
}

function setSlot(s: Slot, v: J): void {
  if (s.parent instanceof Obj) s.parent.entries[s.index] = [s.key!, v];
  else s.parent[s.index] = v;
}

function removeSlot(s: Slot): void {
  if (s.parent instanceof Obj) s.parent.entries.splice(s.index, 1);
  else s.parent.splice(s.index, 1);
}

function clone(v: J): J {
  if (v instanceof Obj) return new Obj(v.entries.map(([k, x]) => [k, clone(x)]));
  if (Array.isArray(v)) return v.map(clone);
  return v;
}

const kindOf = (v: J): string =>
  v === null
    ? "null"
    : v instanceof Raw || typeof v === "number"
      ? "number"
      : v instanceof Obj
        ? "object"
        : Array.isArray(v)
          ? "array"
          : typeof v;

// ---- Values --------------------------------------------------------------------------------------------

/** Strings a config author or a hostile pod spec can produce, and that quoting code tends to get wrong. */
export const ODD_STRINGS: readonly string[] = [
  "",
  " ",
  "a".repeat(300),
  "x".repeat(5000),
  "ü",
  "日本語",
  "😀",
  '"',
  "#",
  "\\",
  "\n",
  'a"b#c\\d\ne',
  "e\\th",
  "\t",
  "\u0000",
  "../../x",
  "-x",
  "%s%n",
  "0",
  "true",
  "null",
  "1e400",
  "10.1.2.3",
  "::1",
  "01.2.3.4",
  "10.0.0.0/33",
  "$(touch pwned)",
];

/** The names in CNI_PATH (dist/bin): a `type` naming one of them makes delegation chains and loops. */
export const PLUGIN_TYPES: readonly string[] = [
  "flannel",
  "bridge",
  "host-local",
  "portmap",
  "weft",
  "weftd",
];

/** Addresses and prefixes at the edges of what range and route parsing must handle. */
const ADDRESS_TEXTS: readonly string[] = [
  "10.99.1.0/32",
  "10.99.1.0/31",
  "10.99.1.0/30",
  "10.99.1.0/0",
  "0.0.0.0/0",
  "::/0",
  "10.99.1.255",
  "10.99.2.10",
  "10.99.1.1",
  "255.255.255.255/32",
  "10.99.1.0/24",
  "fd00:99::/120",
  "fd00:99::/128",
  "fd00:99::1",
  "::ffff:10.99.1.10",
  "::ffff:10.99.1.0/120",
  "10.99.1.5/24",
  "010.99.1.0/24",
  "10.99.1.0/024",
  "10.99.1.0/24 ",
  "fe80::1%eth0",
  "10.99.1",
  "1.2.3.4.5",
];

const NUMBER_TEXTS: readonly string[] = [
  "0",
  "-1",
  "-0",
  "1.5",
  "-0.5",
  "65536",
  "65535",
  "4094",
  "4095",
  "2147483648",
  "-2147483649",
  "4294967296",
  "9007199254740993",
  "1e308",
  "1e400",
  "-1e400",
  "1e-400",
  "31",
  "32",
];

function numberValue(rng: Rng): J {
  const text = rng.pick(NUMBER_TEXTS);
  const n = Number(text);
  // Written as text when the JS number would print differently (1e400 -> Infinity is not JSON).
  return Number.isFinite(n) && String(n) === text ? n : new Raw(text);
}

/** A value of any kind; `safe` leaves out what would send a path key to the host's default directory. */
function anyValue(rng: Rng, safe: boolean): J {
  const kinds = ["string", "number", "bool", "array", "object", "null"].filter(
    (k) => !(safe && k === "null"),
  );
  switch (rng.pick(kinds)) {
    case "string":
      return safe ? rng.pick(ODD_STRINGS.filter((s) => s !== "")) : rng.pick(ODD_STRINGS);
    case "number":
      return numberValue(rng);
    case "bool":
      return rng.chance(0.5);
    case "array":
      return rng.pick<J>([[], [1, "a"], [null], [new Obj()]]);
    case "object":
      return rng.pick<J>([new Obj(), new Obj([["a", 1]]), new Obj([["type", "bridge"]])]);
    default:
      return null;
  }
}

/** A value of another kind than `v` (a type change). */
function otherKind(rng: Rng, v: J, safe: boolean): J {
  for (let i = 0; i < 20; i++) {
    const x = anyValue(rng, safe);
    if (kindOf(x) !== kindOf(v)) return x;
  }
  return kindOf(v) === "string" ? 7 : "7";
}

function caseVariant(rng: Rng, key: string): string {
  const variants = [
    key.toUpperCase(),
    key.toLowerCase(),
    key.charAt(0).toUpperCase() + key.slice(1),
    [...key].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join(""),
  ].filter((k) => k !== key);
  return variants.length > 0 ? rng.pick(variants) : key;
}

// ---- Mutations ----------------------------------------------------------------------------------------

/**
 * Keys whose absence or emptiness sends a plugin to the host's real directories (/var/lib/cni/...,
 * /run/flannel/subnet.env): never deleted, nulled or emptied, but still type-changed, duplicated and
 * given odd (relative) strings, which land in the case's private working directory.
 */
export const PATH_KEYS: ReadonlySet<string> = new Set(["dataDir", "subnetFile", "resolvConf"]);

const isPathKey = (s: Slot) => s.key !== undefined && PATH_KEYS.has(s.key);

type TreeMutation = (rng: Rng, root: J, slots: Slot[]) => string | undefined;

/** The tree mutations: name (for reading), what it does, and its weight. */
const TREE_MUTATIONS: ReadonlyArray<readonly [string, TreeMutation, number]> = [
  [
    "type",
    (rng, _root, slots) => {
      const s = rng.pick(slots);
      const v = otherKind(rng, s.value, isPathKey(s));
      setSlot(s, v);
      return `${s.path}: ${kindOf(s.value)} -> ${toText(v).slice(0, 60)}`;
    },
    28,
  ],
  [
    "delete",
    (rng, _root, slots) => {
      const s = rng.pick(slots.filter((x) => !isPathKey(x)));
      removeSlot(s);
      return `delete ${s.path}`;
    },
    16,
  ],
  [
    "number",
    (rng, _root, slots) => {
      const numbers = slots.filter((s) => kindOf(s.value) === "number");
      const s = rng.pick(numbers.length > 0 && rng.chance(0.8) ? numbers : slots);
      const v = numberValue(rng);
      setSlot(s, v);
      return `${s.path} = ${toText(v)}`;
    },
    12,
  ],
  [
    "null",
    (rng, _root, slots) => {
      const s = rng.pick(slots.filter((x) => !isPathKey(x)));
      setSlot(s, null);
      return `${s.path} = null`;
    },
    8,
  ],
  [
    "empty",
    (rng, _root, slots) => {
      const s = rng.pick(slots.filter((x) => !isPathKey(x)));
      const v: J =
        s.value instanceof Obj ? new Obj() : Array.isArray(s.value) ? [] : rng.pick<J>(["", [], new Obj()]);
      setSlot(s, v);
      return `${s.path} = ${toText(v)}`;
    },
    8,
  ],
  [
    "duplicate",
    (rng, _root, slots) => {
      const entries = slots.filter((x) => x.key !== undefined);
      if (entries.length === 0) return undefined;
      const s = rng.pick(entries);
      const key = rng.chance(0.5) ? s.key! : caseVariant(rng, s.key!);
      const safe = isPathKey(s) || PATH_KEYS.has(key);
      const value = rng.weighted<() => J>([
        [() => clone(s.value), 1],
        [() => otherKind(rng, s.value, safe), 2],
        [() => (safe ? rng.pick(ODD_STRINGS.slice(1)) : rng.pick(ODD_STRINGS)), 1],
      ])();
      const obj = s.parent as Obj;
      const at = rng.chance(0.5) ? s.index + 1 : s.index;
      obj.entries.splice(at, 0, [key, value]);
      return `duplicate ${s.path} as ${JSON.stringify(key)}=${toText(value).slice(0, 60)} ${at > s.index ? "after" : "before"}`;
    },
    12,
  ],
  [
    "address",
    (rng, _root, slots) => {
      const ips = slots.filter((s) => typeof s.value === "string" && /^[0-9a-f:.]+(\/\d+)?$/i.test(s.value));
      if (ips.length === 0) return undefined;
      const s = rng.pick(ips);
      const v = rng.pick(ADDRESS_TEXTS);
      setSlot(s, v);
      return `${s.path} = ${JSON.stringify(v)}`;
    },
    10,
  ],
  [
    "odd string",
    (rng, _root, slots) => {
      const strings = slots.filter((s) => typeof s.value === "string");
      if (strings.length === 0) return undefined;
      const s = rng.pick(strings);
      const pool = s.key === "type" && rng.chance(0.6) ? PLUGIN_TYPES : ODD_STRINGS;
      const v = isPathKey(s) ? rng.pick(pool.filter((x) => x !== "")) : rng.pick(pool);
      setSlot(s, v);
      return `${s.path} = ${JSON.stringify(v).slice(0, 60)}`;
    },
    12,
  ],
];

/** Applies one random tree mutation; returns its description. */
export function mutateTree(rng: Rng, root: J): string {
  for (let i = 0; i < 20; i++) {
    const slots = slotsOf(root);
    if (slots.length === 0) break;
    const fn = rng.weighted(TREE_MUTATIONS.map(([, f, w]) => [f, w] as const));
    try {
      const d = fn(rng, root, slots);
      if (d) return d;
    } catch {
      // pick from an empty filtered list: try another mutation
    }
  }
  return "(no mutation applicable)";
}

/** Text-level damage to a document: truncation, trailing garbage, or a whole other document. */
export function mutateText(rng: Rng, text: string): { text: string; what: string } {
  return rng.weighted<() => { text: string; what: string }>([
    [
      () => {
        const at = rng.int(Math.max(1, text.length));
        return { text: text.slice(0, at), what: `truncated at ${at} of ${text.length}` };
      },
      6,
    ],
    [() => ({ text: `${text}${rng.pick(["x", "}", " {}", "\n{}", ","])}`, what: "trailing garbage" }), 2],
    [
      () => {
        const doc = rng.pick(["", "null", "[]", "1", '"x"', "{}", "{", "\ufeff{}", "[{}]", "true"]);
        return { text: doc, what: `document ${JSON.stringify(doc)}` };
      },
      2,
    ],
  ])();
}

// ---- The environment -----------------------------------------------------------------------------------

export const VERBS = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"] as const;
export type FuzzVerb = (typeof VERBS)[number];

/** CNI_* variables of a call; undefined means unset. */
export type CniEnv = Record<string, string | undefined>;

const ENV_MUTATIONS: ReadonlyArray<
  readonly [string, (rng: Rng, env: CniEnv, t: FuzzTarget) => string | undefined]
> = [
  [
    "CNI_CONTAINERID",
    (rng, env) =>
      rng.pick([
        undefined,
        "",
        "c".repeat(256),
        "c".repeat(4096),
        "a/b",
        "a b",
        "ä",
        "-x",
        'a"b',
        "a#b",
        "..",
        "a\\b",
        `${env.CNI_CONTAINERID}.x`,
      ]),
  ],
  [
    "CNI_IFNAME",
    (rng) =>
      rng.pick([
        undefined,
        "",
        "e\\th",
        'e"h',
        "e#h",
        "e'h",
        "i".repeat(16),
        "é",
        ".",
        "..",
        "eth0 ",
        "e\nh",
        "lo",
        "-x",
        "eth0;ls",
        "e$h",
      ]),
  ],
  [
    "CNI_NETNS",
    (rng, _env, t) =>
      rng.pick([
        undefined,
        "",
        "/var/run/netns/weft-fuzz-missing",
        t.nodeNetns,
        "/etc/hostname",
        "/",
        "netns",
      ]),
  ],
  [
    "CNI_ARGS",
    (rng) =>
      rng.pick([
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc",
        "IgnoreUnknown=maybe",
        "K8S_POD_NAME=web-0",
        "a=b=c",
        "=",
        ";",
        "IP=10.a",
        "IP=",
        "MAC=zz",
        "MAC=02:00:00:00:00:01",
        "IgnoreUnknown=true;IP=10.99.1.50",
        `IgnoreUnknown=1;K8S_POD_NAME=${"p".repeat(3000)}`,
      ]),
  ],
  [
    "CNI_PATH",
    (rng, env) => rng.pick([undefined, "/nonexistent/weft-fuzz", "::", `${env.CNI_PATH}:/nonexistent`]),
  ],
  ["CNI_COMMAND", (rng, env) => rng.pick(["FROB", (env.CNI_COMMAND ?? "").toLowerCase(), ""])],
];

export function mutateEnv(rng: Rng, env: CniEnv, t: FuzzTarget, exclude: readonly string[] = []): string {
  const [name, gen] = rng.pick(ENV_MUTATIONS.filter(([n]) => !exclude.includes(n)));
  const v = gen(rng, env, t);
  env[name] = v;
  return v === undefined ? `unset ${name}` : `${name}=${JSON.stringify(v).slice(0, 60)}`;
}

// ---- Valid configs, per plugin ---------------------------------------------------------------------------

export const PLUGINS = ["flannel", "bridge", "host-local", "portmap"] as const;
export type FuzzPlugin = (typeof PLUGINS)[number];

/** What a case runs against: names and paths of the private test environment. */
export interface FuzzTarget {
  netName: string;
  /** /var/run/netns/<pod> and /var/run/netns/<node>. */
  podNetns: string;
  nodeNetns: string;
  cniPath: string;
  /** The case's private directory (data dirs, subnet.env, resolv.conf live under it). */
  dir: string;
  containerId: string;
}

/** Addresses are free to choose: every kernel object lives in the test's own node and pod netns. */
const V4_NETWORK = "10.244.0.0/16";
const V6_NETWORK = "fd00:f0::/48";

export interface BasePlan {
  conf: Record<string, unknown>;
  env: CniEnv;
  /** flannel's subnet.env text. */
  subnetEnv?: string;
  /** A resolv.conf for host-local's resolvConf key. */
  resolvConf?: string;
  variant: string;
}

/** A version that allows the verb (GC and STATUS came in 1.1.0, CHECK in 0.4.0); mutations try the others. */
function versionFor(rng: Rng, verb: FuzzVerb): string {
  if (verb === "GC" || verb === "STATUS") return "1.1.0";
  if (verb === "CHECK") return rng.pick(["1.0.0", "1.1.0"]);
  return rng.pick(["0.3.1", "1.0.0", "1.1.0"]);
}

function subnetEnvText(v4: boolean, v6: boolean, ipMasq: boolean): string {
  const lines: string[] = [];
  if (v4) lines.push(`FLANNEL_NETWORK=${V4_NETWORK}`, "FLANNEL_SUBNET=10.244.7.1/24");
  if (v6) lines.push(`FLANNEL_IPV6_NETWORK=${V6_NETWORK}`, "FLANNEL_IPV6_SUBNET=fd00:f0:0:7::1/64");
  lines.push("FLANNEL_MTU=1450", `FLANNEL_IPMASQ=${ipMasq}`);
  return `${lines.join("\n")}\n`;
}

/** A 0.3.x/0.4.0 ips entry carries its family; 1.0.0 dropped the key. */
function ipEntry(version: string, address: string, gateway: string, iface: number): Record<string, unknown> {
  const e: Record<string, unknown> = { address, gateway, interface: iface };
  if (version.startsWith("0.")) e.version = address.includes(":") ? "6" : "4";
  return e;
}

function baseFlannel(rng: Rng, t: FuzzTarget, version: string): BasePlan {
  const stack = rng.pick(["v4", "v4", "dual", "v6"] as const);
  const ipMasq = rng.chance(0.5);
  const conf: Record<string, unknown> = {
    cniVersion: version,
    name: t.netName,
    type: "flannel",
    subnetFile: `${t.dir}/subnet.env`,
    dataDir: `${t.dir}/flannel`,
    // kube-flannel's delegate, plus a bridge name of our own.
    delegate: { hairpinMode: true, isDefaultGateway: true, bridge: "fzf0" },
    ipam: { dataDir: `${t.dir}/ipam` },
  };
  return {
    conf,
    env: {},
    subnetEnv: subnetEnvText(stack !== "v6", stack !== "v4", ipMasq),
    variant: `flannel ${stack} FLANNEL_IPMASQ=${ipMasq}`,
  };
}

function baseBridge(rng: Rng, t: FuzzTarget, version: string): BasePlan {
  const stack = rng.pick(["v4", "v4", "dual"] as const);
  const backend = rng.pick([undefined, undefined, "iptables", "nftables"]);
  const ranges: unknown[] = [[{ subnet: "10.88.1.0/24" }]];
  const routes: unknown[] = [{ dst: "10.88.0.0/16" }];
  if (stack === "dual") {
    ranges.push([{ subnet: "fd00:88:0:1::/64" }]);
    routes.push({ dst: "fd00:88::/48" });
  }
  const conf: Record<string, unknown> = {
    cniVersion: version,
    name: t.netName,
    type: "bridge",
    bridge: "fzb0",
    isGateway: true,
    isDefaultGateway: rng.chance(0.5),
    ipMasq: true,
    hairpinMode: true,
    mtu: 1450,
    ipam: { type: "host-local", dataDir: `${t.dir}/ipam`, ranges, routes },
  };
  if (backend) conf.ipMasqBackend = backend;
  if (rng.chance(0.25)) {
    conf.capabilities = { mac: true };
    conf.runtimeConfig = { mac: "02:42:0a:58:01:09" };
  }
  return { conf, env: {}, variant: `bridge ${stack} ipMasqBackend=${backend ?? "auto"}` };
}

function baseHostLocal(rng: Rng, t: FuzzTarget, version: string): BasePlan {
  const shape = rng.pick(["ranges", "ranges", "legacy", "dual", "requested", "runtime"] as const);
  const ipam: Record<string, unknown> = { type: "host-local", dataDir: `${t.dir}/ipam` };
  const conf: Record<string, unknown> = { cniVersion: version, name: t.netName, type: "bridge", ipam };
  const env: CniEnv = {};
  let resolvConf: string | undefined;
  if (shape === "legacy") {
    Object.assign(ipam, {
      subnet: "10.99.1.0/24",
      rangeStart: "10.99.1.10",
      rangeEnd: "10.99.1.20",
      gateway: "10.99.1.1",
      routes: [{ dst: "0.0.0.0/0" }],
    });
  } else {
    const ranges: unknown[] = [
      [{ subnet: "10.99.1.0/24", rangeStart: "10.99.1.10", rangeEnd: "10.99.1.200", gateway: "10.99.1.1" }],
    ];
    if (shape === "dual") ranges.push([{ subnet: "fd00:99::/64" }]);
    ipam.ranges = ranges;
    ipam.routes = [{ dst: "0.0.0.0/0" }, { dst: "192.168.0.0/16", gw: "10.99.1.254" }];
    if (rng.chance(0.5)) {
      ipam.resolvConf = `${t.dir}/resolv.conf`;
      resolvConf =
        "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n";
    }
  }
  if (shape === "requested") {
    if (rng.chance(0.5)) env.CNI_ARGS = "IgnoreUnknown=1;IP=10.99.1.50";
    else conf.args = { cni: { ips: ["10.99.1.51"] } };
  }
  if (shape === "runtime") {
    // What containerd's CRI sends: the node's pod CIDR as ipRanges, sometimes a requested address.
    conf.capabilities = { ipRanges: true, ips: true };
    conf.runtimeConfig = { ipRanges: [[{ subnet: "10.99.3.0/24", gateway: "10.99.3.1" }]] };
    if (rng.chance(0.5)) (conf.runtimeConfig as Record<string, unknown>).ips = ["10.99.3.60/24"];
  }
  return { conf, env, ...(resolvConf ? { resolvConf } : {}), variant: `host-local ${shape}` };
}

function basePortmap(rng: Rng, t: FuzzTarget, version: string): BasePlan {
  const dual = rng.chance(0.3);
  const backend = rng.pick([undefined, undefined, "iptables", "nftables"]);
  const ips = [ipEntry(version, "10.88.1.5/24", "10.88.1.1", 2)];
  if (dual) ips.push(ipEntry(version, "fd00:88:0:1::5/64", "fd00:88:0:1::1", 2));
  const conf: Record<string, unknown> = {
    cniVersion: version,
    name: t.netName,
    type: "portmap",
    capabilities: { portMappings: true },
    snat: true,
    runtimeConfig: {
      portMappings: [
        { hostPort: 18080, containerPort: 80, protocol: "tcp" },
        { hostPort: 18053, containerPort: 53, protocol: "udp" },
        { hostPort: 18443, containerPort: 443, protocol: "tcp", hostIP: "127.0.0.1" },
      ],
    },
    prevResult: {
      cniVersion: version,
      interfaces: [
        { name: "fzb0", mac: "02:00:00:00:00:01" },
        { name: "vethfuzz0", mac: "02:00:00:00:00:02" },
        { name: "eth0", mac: "02:00:00:00:00:03", sandbox: t.podNetns },
      ],
      ips,
      routes: [{ dst: "0.0.0.0/0", gw: "10.88.1.1" }],
      dns: {},
    },
  };
  if (backend) conf.backend = backend;
  return { conf, env: {}, variant: `portmap ${dual ? "dual" : "v4"} backend=${backend ?? "auto"}` };
}

const BASES: Record<FuzzPlugin, (rng: Rng, t: FuzzTarget, version: string) => BasePlan> = {
  flannel: baseFlannel,
  bridge: baseBridge,
  "host-local": baseHostLocal,
  portmap: basePortmap,
};

/** A valid config and environment of `plugin` for `verb`, before any mutation. */
export function basePlan(rng: Rng, plugin: FuzzPlugin, verb: FuzzVerb, t: FuzzTarget): BasePlan {
  const plan = BASES[plugin](rng, t, versionFor(rng, verb));
  if (verb === "GC") {
    // Either the pod added before the GC is still valid, or only some other pod is.
    const keep = rng.chance(0.5) ? t.containerId : "fuzz-other-pod";
    plan.conf["cni.dev/valid-attachments"] = [{ containerID: keep, ifname: "eth0" }];
  }
  plan.env = {
    CNI_COMMAND: verb,
    CNI_CONTAINERID: t.containerId,
    CNI_NETNS: t.podNetns,
    CNI_IFNAME: "eth0",
    CNI_PATH: t.cniPath,
    ...plan.env,
  };
  return plan;
}

// ---- A case ------------------------------------------------------------------------------------------

export interface FuzzCase {
  seed: number;
  index: number;
  plugin: FuzzPlugin;
  verb: FuzzVerb;
  variant: string;
  /** The valid config and env the case starts from (used for the set-up ADD and the clean-up DEL). */
  base: { stdin: string; env: CniEnv; subnetEnv?: string };
  /** Whether a valid ADD runs before the mutated call (DEL, CHECK and GC cases). */
  preAdd: boolean;
  subnetEnv?: string;
  resolvConf?: string;
  /** Filled by `mutate`. */
  stdin: string;
  /** The top-level cniVersion strings of the mutated config, duplicates and other letter cases included. */
  versions: string[];
  env: CniEnv;
  mutations: string[];
}

/** The generator's state between planning a case and mutating it (CHECK needs the set-up ADD's result). */
export interface CasePlan {
  rng: Rng;
  fuzzCase: FuzzCase;
  conf: Record<string, unknown>;
}

export function planCase(
  seed: number,
  index: number,
  plugin: FuzzPlugin,
  verb: FuzzVerb,
  t: FuzzTarget,
): CasePlan {
  const rng = new Rng(caseSeed(seed, index));
  const base = basePlan(rng, plugin, verb, t);
  const preAdd = verb === "CHECK" || ((verb === "DEL" || verb === "GC") && rng.chance(0.6));
  const stdin = JSON.stringify(base.conf);
  const fuzzCase: FuzzCase = {
    seed,
    index,
    plugin,
    verb,
    variant: base.variant,
    base: {
      stdin,
      env: { ...base.env, CNI_COMMAND: "ADD" },
      ...(base.subnetEnv !== undefined ? { subnetEnv: base.subnetEnv } : {}),
    },
    preAdd,
    ...(base.subnetEnv !== undefined ? { subnetEnv: base.subnetEnv } : {}),
    ...(base.resolvConf !== undefined ? { resolvConf: base.resolvConf } : {}),
    stdin,
    versions: [],
    env: { ...base.env },
    mutations: [],
  };
  return { rng, fuzzCase, conf: base.conf };
}

const SUBNET_ENV_MUTATIONS: ReadonlyArray<(rng: Rng, lines: string[]) => string> = [
  (rng, lines) => `delete line ${lines.splice(rng.int(lines.length), 1)[0]}`,
  (rng, lines) => {
    const i = rng.int(lines.length);
    const key = lines[i]!.split("=")[0];
    lines[i] =
      `${key}=${rng.pick(["", "x", "10.0.0.0/33", "-1", "99999999999", "1450 ", '"1450"', "::", "ü"])}`;
    return `subnet.env ${lines[i]}`;
  },
  (rng, lines) => {
    const i = rng.int(lines.length);
    lines.splice(i + 1, 0, lines[i]!.replace(/=.*/, "=10.0.0.1/8"));
    return `subnet.env duplicate ${lines[i + 1]}`;
  },
  (_rng, lines) => {
    lines.length = 0;
    return "subnet.env empty";
  },
];

/**
 * Mutates the planned case: 1 to 3 changes of the config tree, sometimes the environment, sometimes the
 * text itself; about one case in 25 stays valid as a control. `prevResult` (CHECK) goes into the config
 * before mutating, so it is fuzzed too.
 */
export function mutate(plan: CasePlan, t: FuzzTarget, prevResult?: unknown): FuzzCase {
  const { rng, fuzzCase: c } = plan;
  const conf = { ...plan.conf };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  const tree = fromPlain(conf);
  const env = { ...c.env };
  const mutations: string[] = [];
  if (!rng.chance(0.04)) {
    const n = rng.weighted([
      [1, 6],
      [2, 3],
      [3, 1],
    ] as const);
    for (let i = 0; i < n; i++) mutations.push(mutateTree(rng, tree));
    // Two DELs flannel rightly treats as final for the container added before: one naming another ifname
    // (one saved config per container ID, the reference's layout) and one whose CNI_NETNS is no namespace
    // (taken as "pod gone", anchors 6.7). Either consumes the saved config, so the real DEL finds nothing.
    const keep = c.plugin === "flannel" && c.preAdd ? ["CNI_IFNAME", "CNI_NETNS"] : [];
    if (rng.chance(0.2)) mutations.push(mutateEnv(rng, env, t, keep));
    if (c.subnetEnv !== undefined && rng.chance(0.15)) {
      const lines = c.subnetEnv.trimEnd().split("\n");
      mutations.push(rng.pick(SUBNET_ENV_MUTATIONS)(rng, lines));
      c.subnetEnv = lines.length > 0 ? `${lines.join("\n")}\n` : "";
    }
  }
  let stdin = toText(tree);
  if (mutations.length > 0 && rng.chance(0.07)) {
    const m = mutateText(rng, stdin);
    stdin = m.text;
    mutations.push(m.what);
  }
  c.stdin = stdin;
  c.env = env;
  c.mutations = mutations;
  c.versions = topLevelStrings(tree, "cniVersion");
  return c;
}

// ---- The schedule ---------------------------------------------------------------------------------------

/** Cases per plugin and verb in one seed's run (the default WEFT_FUZZ_CASES is their sum times 4). */
export const VERB_SHARE: Record<FuzzVerb, number> = {
  ADD: 14,
  DEL: 6,
  CHECK: 5,
  GC: 3,
  STATUS: 3,
  VERSION: 1,
};

/**
 * The (plugin, verb) of each case: verbs in VERB_SHARE's proportions, plugins in turn, interleaved so
 * that any prefix (a smaller WEFT_FUZZ_CASES) still covers every plugin and verb early.
 */
export function schedule(total: number): Array<{ plugin: FuzzPlugin; verb: FuzzVerb }> {
  const round: FuzzVerb[] = [];
  const left = { ...VERB_SHARE };
  while (Object.values(left).some((n) => n > 0)) {
    for (const v of VERBS) {
      if (left[v] > 0) {
        round.push(v);
        left[v] -= 1;
      }
    }
  }
  const out: Array<{ plugin: FuzzPlugin; verb: FuzzVerb }> = [];
  for (let i = 0; i < total; i++) {
    const verb = round[Math.floor(i / PLUGINS.length) % round.length]!;
    out.push({ plugin: PLUGINS[i % PLUGINS.length]!, verb });
  }
  return out;
}

export const DEFAULT_CASES = Object.values(VERB_SHARE).reduce((a, b) => a + b, 0) * PLUGINS.length;

/** `KEY=value` words a shell accepts (for the replay text of a failure). */
export function shellEnv(env: CniEnv): string {
  return Object.entries(env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${shellQuote(v!)}`)
    .join(" ");
}

export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_./:=,@%+-]+$/.test(s)) return s;
  return /[\n\t\\\u0000-\u001f]/.test(s)
    ? `$'${s
        .replace(/[\\']/g, "\\$&")
        .replace(/\n/g, "\\n")
        .replace(/\t/g, "\\t")
        .replace(/[\u0000-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}'`
    : `'${s.replace(/'/g, "'\\''")}'`;
}
