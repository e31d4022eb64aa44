/**
 * Issue 9's faults on the embedded file store, end to end (test/integration/e2e-suites.ts): lease
 * exhaustion and the race for the last subnet, an invalid net-conf at a restart. The lease deleted by
 * hand, the route and the vxlan device deleted by hand are in e2e-cluster.test.ts (they need the
 * three-node cluster with pods).
 */
import { faultSuite } from "./e2e-suites.js";

faultSuite({ kind: "file" });
