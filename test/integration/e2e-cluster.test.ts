/**
 * Issue 9's "must show", on the embedded file store: three nodes, the packaged weftd on each with the
 * vxlan and then the host-gw backend, pods through libcni (test/integration/e2e-suites.ts).
 */
import { clusterSuite } from "./e2e-suites.js";

clusterSuite("vxlan", { kind: "file" });
clusterSuite("host-gw", { kind: "file" });
