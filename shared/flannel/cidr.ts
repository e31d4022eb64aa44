import { Address4, Address6 } from "ip-address";
import { firstHost } from "../net/ipnet.js";

/** A CIDR in network form (host bits cleared), as Go's `net.ParseCIDR` returns it in its `*IPNet`. */
export interface Network {
  /** "10.1.17.0/24", "fc00::/64": what `IPNet.String()` prints. */
  cidr: string;
  family: 4 | 6;
}

function cidrError(text: string): Error {
  return new Error(`invalid CIDR address: ${text}`);
}

/** `net.ParseCIDR(text)`: the address as written (normalised) and the network, both with the prefix. */
export interface Cidr extends Network {
  /** "10.96.0.1/12": the address keeps its host bits, as CNI's `types.IPNet` does. */
  address: string;
  bits: number;
}

/**
 * `net.ParseCIDR(text)`: the prefix length is required and must be plain decimal, IPv4 is dotted quad
 * without leading zeros, IPv6 has no zone. Errors carry Go's message.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  if (slash < 0) throw cidrError(text);
  const ip = text.slice(0, slash);
  const len = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(len) || ip.includes("%")) throw cidrError(text);
  const bits = Number(len);
  const family = ip.includes(":") ? 6 : 4;
  if (bits > (family === 4 ? 32 : 128)) throw cidrError(text);
  try {
    const a = family === 4 ? new Address4(`${ip}/${bits}`) : new Address6(`${ip}/${bits}`);
    return {
      address: `${a.correctForm()}/${bits}`,
      cidr: `${a.startAddress().correctForm()}/${bits}`,
      family,
      bits,
    };
  } catch {
    throw cidrError(text);
  }
}

/** `net.ParseCIDR(text)` reduced to the network (host bits cleared), as the reference keeps subnets. */
export function parseNetwork(text: string): Network {
  const { cidr, family } = parseCidr(text);
  return { cidr, family };
}

/** `net.ParseIP(text)` normalised, or an error with Go's text for a bad `gw`. */
export function parseIp(text: string): string {
  try {
    if (!text.includes("/") && !text.includes("%")) {
      return text.includes(":") ? new Address6(text).correctForm() : new Address4(text).correctForm();
    }
  } catch {
    // fall through to the error
  }
  throw new Error(`invalid IP address: ${text}`);
}

/** The first address after the network address with its prefix ("10.244.3.0/24" -> "10.244.3.1/24"). */
export function firstHostCidr(network: string): string {
  const n = parseCidr(network);
  return `${firstHost(n.cidr)}/${n.bits}`;
}
