import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  readEnv,
  splitPath,
  validateAttachment,
  validateContainerId,
  validateIfname,
  validateNetworkName,
} from "../../shared/cni/env.js";
import { expectCniError } from "../helpers/cni-error.js";

const expectError = expectCniError;

const FULL = {
  CNI_CONTAINERID: "c0ffee",
  CNI_NETNS: "/var/run/netns/pod",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
};

const missing = suite("readEnv: missing variables, in skel's order");

missing("no CNI_COMMAND is the about case, whatever else is set", () => {
  assert.is(readEnv({}), undefined);
  assert.is(readEnv({ ...FULL, CNI_COMMAND: "" }), undefined);
});

missing("ADD needs CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH", () => {
  expectError(
    () => readEnv({ CNI_COMMAND: "ADD" }),
    4,
    "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing",
  );
  expectError(
    () => readEnv({ CNI_COMMAND: "ADD", CNI_NETNS: "/x", CNI_PATH: "/p" }),
    4,
    "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing",
  );
});

missing("CHECK needs the same as ADD", () => {
  expectError(
    () => readEnv({ CNI_COMMAND: "CHECK", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0" }),
    4,
    "required env variables [CNI_NETNS,CNI_PATH] missing",
  );
});

missing("DEL does not need CNI_NETNS", () => {
  expectError(
    () => readEnv({ CNI_COMMAND: "DEL" }),
    4,
    "required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing",
  );
  const env = readEnv({ ...FULL, CNI_COMMAND: "DEL", CNI_NETNS: "" });
  assert.is(env?.command, "DEL");
  assert.is(env?.netns, "");
});

missing("an empty variable counts as missing", () => {
  expectError(
    () => readEnv({ ...FULL, CNI_COMMAND: "ADD", CNI_CONTAINERID: "" }),
    4,
    "required env variables [CNI_CONTAINERID] missing",
  );
});

missing("GC and STATUS need only CNI_COMMAND and CNI_PATH", () => {
  for (const verb of ["GC", "STATUS"]) {
    expectError(() => readEnv({ CNI_COMMAND: verb }), 4, "required env variables [CNI_PATH] missing");
    const env = readEnv({ CNI_COMMAND: verb, CNI_PATH: "/p" });
    assert.equal(env, {
      command: verb,
      containerId: "",
      netns: "",
      ifname: "",
      args: "",
      path: "/p",
      netnsOverride: "",
      delegation: [],
    });
  }
});

missing("GC and STATUS do not validate a container ID or ifname they do not need", () => {
  const env = readEnv({ CNI_COMMAND: "GC", CNI_PATH: "/p", CNI_CONTAINERID: "bad id", CNI_IFNAME: "a/b" });
  assert.is(env?.command, "GC");
  validateAttachment({ command: "STATUS", containerId: "bad id", ifname: "a:b" });
});

missing("VERSION needs only CNI_COMMAND and validates nothing else", () => {
  assert.is(readEnv({ CNI_COMMAND: "VERSION" })?.command, "VERSION");
  // libcni sends "dummy" values; anything goes.
  const env = readEnv({
    CNI_COMMAND: "VERSION",
    CNI_CONTAINERID: "a b",
    CNI_IFNAME: "a/b",
    CNI_PATH: "dummy",
  });
  assert.is(env?.ifname, "a/b");
});

missing("every variable is carried over", () => {
  const env = readEnv({
    ...FULL,
    CNI_COMMAND: "ADD",
    CNI_ARGS: "IgnoreUnknown=1",
    CNI_NETNS_OVERRIDE: "1",
    WEFT_DELEGATION: "flannel/bridge",
    OTHER: "x",
  });
  assert.equal(env, {
    command: "ADD",
    containerId: "c0ffee",
    netns: "/var/run/netns/pod",
    ifname: "eth0",
    args: "IgnoreUnknown=1",
    path: "/opt/cni/bin",
    netnsOverride: "1",
    delegation: ["flannel", "bridge"],
  });
});

missing("an unknown command is code 4", () => {
  expectError(() => readEnv({ ...FULL, CNI_COMMAND: "FOO" }), 4, "unknown CNI_COMMAND: FOO");
  // Verbs are case-sensitive in skel.
  expectError(() => readEnv({ ...FULL, CNI_COMMAND: "add" }), 4, "unknown CNI_COMMAND: add");
});

missing("a present but invalid variable is reported before missing ones (skel returns at once)", () => {
  expectError(
    () => readEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "bad id" }),
    4,
    "invalid characters in containerID",
    "bad id",
  );
  // CNI_CONTAINERID is missing, but the invalid ifname comes first because skel stops at it.
  expectError(
    () => readEnv({ CNI_COMMAND: "DEL", CNI_IFNAME: "a/b" }),
    4,
    "interface name contains / or : or whitespace characters",
  );
});

missing.run();

const cid = suite("container ID");

cid("valid IDs", () => {
  for (const id of ["a", "0", "abc-DEF_1.2", "a..b", "9f86d081884c7d659a2feaa0c55ad015", "x-"]) {
    validateContainerId(id);
  }
});

cid("invalid characters: code 4 with the ID as details", () => {
  for (const id of ["-a", "_a", ".a", "a b", "a/b", "a:b", "é", "a\n", "a;b", "a*"]) {
    expectError(() => validateContainerId(id), 4, "invalid characters in containerID", id);
  }
});

cid("an empty ID is code 3 when validated directly (utils.ValidateContainerID)", () => {
  expectError(() => validateContainerId(""), 3, "missing containerID");
});

cid("readEnv checks it for ADD, CHECK and DEL", () => {
  for (const verb of ["ADD", "CHECK", "DEL"]) {
    expectError(
      () => readEnv({ ...FULL, CNI_COMMAND: verb, CNI_CONTAINERID: "a b" }),
      4,
      "invalid characters in containerID",
      "a b",
    );
  }
});

cid.run();

const ifname = suite("interface name");

ifname("valid names", () => {
  for (const n of ["eth0", "a", "net1.100", "x".repeat(15), "veth-ab_cd", "é".repeat(7), "a\ufeffb"]) {
    validateIfname(n);
  }
});

ifname("empty", () => {
  expectError(() => validateIfname(""), 4, "interface name is empty");
});

ifname("longer than 15 bytes (not characters)", () => {
  const tooLong = ["x".repeat(16), "é".repeat(8)];
  for (const n of tooLong) {
    expectError(
      () => validateIfname(n),
      4,
      "interface name is too long",
      "interface name should be less than 16 characters",
    );
  }
});

ifname(". and ..", () => {
  expectError(() => validateIfname("."), 4, "interface name is . or ..");
  expectError(() => validateIfname(".."), 4, "interface name is . or ..");
  validateIfname("...");
});

ifname("/, : and whitespace, including Go's unicode.IsSpace set", () => {
  const bad = [
    "a/b",
    "a:b",
    "a b",
    "a\tb",
    "a\nb",
    "a\rb",
    "a\vb",
    "a\fb",
    "a\u0085b", // NEL: space to Go, not to JavaScript's \s
    "a\u00a0b",
    "a\u1680b",
    "a\u2003b",
    "a\u2028b",
    "a\u202fb",
    "a\u3000b",
  ];
  for (const n of bad) {
    expectError(() => validateIfname(n), 4, "interface name contains / or : or whitespace characters");
  }
});

ifname("readEnv checks it for ADD, CHECK and DEL", () => {
  for (const verb of ["ADD", "CHECK", "DEL"]) {
    expectError(
      () => readEnv({ ...FULL, CNI_COMMAND: verb, CNI_IFNAME: "eth 0" }),
      4,
      "interface name contains / or : or whitespace characters",
    );
  }
});

ifname("validateAttachment checks ADD, CHECK and DEL arguments", () => {
  expectError(
    () => validateAttachment({ command: "ADD", containerId: "c", ifname: "" }),
    4,
    "interface name is empty",
  );
  expectError(
    () => validateAttachment({ command: "DEL", containerId: "a b", ifname: "eth0" }),
    4,
    "invalid characters in containerID",
    "a b",
  );
  validateAttachment({ command: "CHECK", containerId: "c", ifname: "eth0" });
  validateAttachment({ command: "VERSION", containerId: "", ifname: "" });
});

ifname.run();

const names = suite("network name");

names("valid and invalid network names (code 7)", () => {
  validateNetworkName("cbr0");
  validateNetworkName("k8s-pod-network.1_a");
  expectError(() => validateNetworkName("a b"), 7, "invalid characters found in network name", "a b");
  expectError(() => validateNetworkName("-a"), 7, "invalid characters found in network name", "-a");
  expectError(() => validateNetworkName(""), 7, "missing network name:");
});

names.run();

const paths = suite("splitPath");

paths("CNI_PATH splits on ':' and drops empty entries", () => {
  assert.equal(splitPath("/a:/b"), ["/a", "/b"]);
  assert.equal(splitPath("/a::/b:"), ["/a", "/b"]);
  assert.equal(splitPath(""), []);
});

paths.run();
