import type { Backend } from "./backend/backend.js";

/**
 * The backends by net-conf `Backend.Type`, as flannel registers its backends by name: the daemon asks
 * for a type and never branches on it. Each is loaded only when chosen.
 */
export type BackendFactory = () => Backend | Promise<Backend>;

const factories = new Map<string, BackendFactory>();

/** Adds (or replaces) the backend for a type: the built-in ones below, or a test's stand-in. */
export function registerBackend(type: string, factory: BackendFactory): void {
  factories.set(type, factory);
}

export function backendTypes(): string[] {
  return [...factories.keys()].sort();
}

export async function createBackend(type: string): Promise<Backend> {
  const factory = factories.get(type);
  if (!factory) {
    const known = backendTypes();
    throw new Error(
      `unknown backend type: ${type} (this build has ${known.length > 0 ? known.join(", ") : "no backends"})`,
    );
  }
  return factory();
}

// The built-in backends (daemon/backend/*.ts), one line each.
registerBackend("vxlan", async () => new (await import("./backend/vxlan.js")).VxlanBackend());
registerBackend("host-gw", async () => new (await import("./backend/host-gw.js")).HostGwBackend());
