import { readFileSync, writeFileSync } from "node:fs";

/**
 * Kernel parameters under /proc/sys. In the host they are plain file writes (no process). /proc/sys/net
 * is per network namespace (it shows the namespace of the process that opens it), so a pod's values are
 * written by a process inside the pod: `sysctlShellPrelude` produces a shell prefix that runs in the same
 * nsenter'ed process as the pod's `ip -batch`.
 */
export interface SysctlWrite {
  /** Slash form relative to /proc/sys, e.g. "net/ipv4/conf/eth0/arp_notify". */
  key: string;
  value: string;
}

const path = (key: string) => `/proc/sys/${key.replace(/^\/+/, "")}`;

export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(path(key), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Writes a host sysctl; throws the I/O error. */
export function writeSysctl(key: string, value: string): void {
  writeFileSync(path(key), value);
}

/** Writes a host sysctl only when it differs (the reference's EnableIP4Forward reads first, too). */
export function ensureSysctl(key: string, value: string): void {
  if (readSysctl(key) !== value) writeSysctl(key, value);
}

/** Writes a host sysctl and ignores failures, for the reference's `_, _ = sysctl.Sysctl(...)` calls. */
export function trySysctl(key: string, value: string): void {
  try {
    writeSysctl(key, value);
  } catch {
    // ignored as in the reference (for example no IPv6 in this kernel)
  }
}

/**
 * A POSIX sh fragment writing the given sysctls, failures ignored, with the keys and values passed as
 * positional arguments so no value is ever parsed by the shell. Append the real command after it.
 */
export function sysctlShellPrelude(writes: SysctlWrite[]): { script: string; args: string[] } {
  const args = writes.flatMap((w) => [path(w.key), w.value]);
  const script = 'while [ $# -gt 1 ]; do printf %s "$2" 2>/dev/null >"$1"; shift 2; done; ';
  return { script, args };
}

/** The per-interface key for a family ("net/ipv6/conf/eth0/accept_dad"). */
export function ifaceKey(family: 4 | 6, ifname: string, name: string): string {
  return `net/ipv${family}/conf/${ifname}/${name}`;
}
