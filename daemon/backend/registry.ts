import type { Backend } from "./backend.js";
import type { BackendOptions } from "./common.js";
import { HostGwBackend } from "./host-gw.js";
import { VxlanBackend } from "./vxlan.js";

/** The backend of a network config's `Backend.Type` (flannel's backend.Register / NewManager, in one place). */
export function createBackend(type: Backend["type"], opts: BackendOptions = {}): Backend {
  switch (type) {
    case "vxlan":
      return new VxlanBackend(opts);
    case "host-gw":
      return new HostGwBackend(opts);
  }
}

export type { BackendOptions };
