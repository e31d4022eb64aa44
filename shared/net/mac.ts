import { isIP } from "node:net";
import { randomBytes } from "./random.js";

/** MAC (link-layer) addresses as ip and bridge print them: six lower-case hex pairs joined by colons. */

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/** The MAC in ip's form, or undefined when `text` is not a 6-byte MAC (Go's ParseMAC forms with colons). */
export function normalizeMac(text: string): string | undefined {
  return MAC.test(text) ? text.toLowerCase() : undefined;
}

/** A MAC for a batch line; throws on anything ip or bridge would reject mid-batch. */
export function macWord(text: string): string {
  const mac = normalizeMac(text);
  if (!mac) throw new Error(`invalid MAC address ${JSON.stringify(text)}`);
  return mac;
}

/** An IP address for a batch line; throws on anything else. */
export function ipWord(text: string): string {
  if (isIP(text) === 0) throw new Error(`invalid IP address ${JSON.stringify(text)}`);
  return text;
}

/** Whether the MAC is unicast (the group bit of the first byte clear). */
export function isUnicastMac(mac: string): boolean {
  return (Number.parseInt(mac.slice(0, 2), 16) & 1) === 0;
}

/** A random locally administered unicast MAC (flannel's mac.NewHardwareAddr, the kernel's eth_random_addr). */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}
