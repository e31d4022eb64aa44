/**
 * Whether a text is an address as Go's net.ParseIP / net.ParseCIDR accept it, without loading an address
 * library or node:net (several ms of start-up on the pod path, for a yes/no answer).
 * Go (1.17+) refuses IPv4 parts with leading zeros ("01.2.3.4") and zones ("fe80::1%eth0").
 */

const V4_PART = /^(0|[1-9]\d{0,2})$/;

function isV4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => V4_PART.test(p) && Number(p) <= 255);
}

function isV6(text: string): boolean {
  let s = text;
  let groups = 8;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.includes(".", lastColon)) {
    // An embedded IPv4 tail takes the place of two groups.
    if (!isV4(s.slice(lastColon + 1))) return false;
    s = `${s.slice(0, lastColon + 1)}0`;
    groups = 7;
  }
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groupsOf = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (![...head, ...tail].every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const n = head.length + tail.length;
  return halves.length === 2 ? n < groups : n === groups;
}

/** The family of an address text as net.ParseIP reads it, or undefined when it does not parse. */
export function ipTextFamily(text: string): 4 | 6 | undefined {
  if (isV4(text)) return 4;
  if (text.includes(":") && isV6(text)) return 6;
  return undefined;
}

/** net.ParseCIDR's grammar: an address, a slash, a decimal prefix no longer than the family's bits. */
export function isCidrText(text: string): boolean {
  const slash = text.indexOf("/");
  if (slash < 0) return false;
  const family = ipTextFamily(text.slice(0, slash));
  const len = text.slice(slash + 1);
  if (!family || !/^\d{1,3}$/.test(len)) return false;
  return Number(len) <= (family === 4 ? 32 : 128);
}
