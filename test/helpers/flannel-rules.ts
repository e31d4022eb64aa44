/**
 * flanneld's jump from the filter table's FORWARD to FLANNEL-FWD (flanneld's forward rules, iptables.go),
 * as iptables arguments after the operation: `iptables -D ...FORWARD_JUMP` takes away the rule weftd
 * installs, as an operator's flush or another tool's rewrite can.
 */
export const FORWARD_JUMP = [
  "FORWARD",
  "-m",
  "comment",
  "--comment",
  "flanneld forward",
  "-j",
  "FLANNEL-FWD",
];
