import { WEFT_COMMIT, WEFT_VERSION } from "../shared/version.js";
import { PLUGINS, runBuiltinPlugin } from "./plugins.js";

const USAGE = `usage: weft <command>

commands:
  version            print the version
  plugin <name>      run a CNI plugin by name (${Object.keys(PLUGINS).join(", ")}), as if invoked as it
  etcd-check         reach etcd as weftd does and show its network config and leases (--help for flags)
  install            put weft's executables and the flannel conflist on this node (--help for flags)
  uninstall          remove what install wrote; --restore, --purge (--help for flags)
  doctor             diagnose this node, one line per check; --fix repairs leaks (--help for flags)
`;

/** The admin CLI. Each command's module is loaded only when it is the one run. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "version":
    case "--version":
      process.stdout.write(`weft v${WEFT_VERSION} commit ${WEFT_COMMIT}\n`);
      return 0;
    case "plugin": {
      const load = PLUGINS[rest[0] ?? ""];
      if (!load) break;
      return runBuiltinPlugin(load);
    }
    case "etcd-check": {
      // Loaded only here: the etcd client (gRPC, protobuf) stays out of every other command's start-up.
      const { main: etcdCheck } = await import("./etcd-check.js");
      return etcdCheck(rest);
    }
    case "install": {
      const { main: install } = await import("./install.js");
      return install(rest);
    }
    case "uninstall": {
      const { main: uninstall } = await import("./uninstall.js");
      return uninstall(rest);
    }
    case "doctor": {
      const { main: doctor } = await import("./doctor.js");
      return doctor(rest);
    }
    case undefined:
    case "help":
    case "--help":
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
  }
  process.stderr.write(USAGE);
  return 2;
}
