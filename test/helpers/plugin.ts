import { spawnSync } from "node:child_process";
import { fastpathEnv, noteFallbacks } from "./fastpath.js";

export interface PluginRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined when it is empty or not JSON. */
  json: Record<string, unknown> | undefined;
}

export interface PluginCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
  extraEnv?: Record<string, string>;
  /** Replaces the whole environment (no PATH, no node) when set. */
  cleanEnv?: boolean;
}

/** Runs a plugin executable the way a runtime does: CNI_* in the environment, the config on stdin. */
export function runPlugin(exe: string, call: PluginCall, stdin: string | object = ""): PluginRun {
  const env: Record<string, string> = call.cleanEnv
    ? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }
    : { ...(process.env as Record<string, string>), ...fastpathEnv() };
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined) env[k] = v;
  };
  set("CNI_COMMAND", call.command);
  set("CNI_CONTAINERID", call.containerId);
  set("CNI_NETNS", call.netns);
  set("CNI_IFNAME", call.ifname);
  set("CNI_ARGS", call.args);
  set("CNI_PATH", call.path);
  Object.assign(env, call.extraEnv ?? {});
  const input = typeof stdin === "string" ? stdin : JSON.stringify(stdin);
  const r = spawnSync(exe, [], { env, input, encoding: "utf8" });
  return pluginRunOf(r);
}

/** stdout parsed as a JSON object, or undefined when it is empty or not JSON. */
export function jsonOf(stdout: string): Record<string, unknown> | undefined {
  try {
    return stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A finished process's exit status and output, stdout also as JSON. */
export function pluginRunOf(r: { status: number | null; stdout: string; stderr: string }): PluginRun {
  noteFallbacks(r.stderr ?? "");
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: jsonOf(r.stdout) };
}
