import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type DoctorFlags, parseDoctorFlags } from "../../cli/doctor/flags.js";
import { NodeState } from "../../cli/doctor/node.js";
import { weftdChecks } from "../../cli/doctor/weftd.js";

/** A stand-in for weftd's health server answering /healthz and /readyz as given. */
async function serve(readyz: [number, string]): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const [code, body] = req.url === "/healthz" ? [200, "weftd is running"] : readyz;
    res.writeHead(code).end(`${body}\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const node = (url: string) => new NodeState(parseDoctorFlags([`--healthz-url=${url}`]) as DoctorFlags);

test("weftd alive and ready", async () => {
  const { url, server } = await serve([200, "weftd is ready"]);
  try {
    const [c] = await weftdChecks(node(url));
    assert.is(c!.status, "ok");
    assert.is(c!.message, `alive and ready (${url})`);
  } finally {
    server.close();
  }
});

test("weftd alive but not ready: the problem quotes /readyz's reason", async () => {
  const why = "weftd is not ready: not ready yet: acquiring a lease: out of subnets (3 used, 0 free)";
  const { url, server } = await serve([503, why]);
  try {
    const [c] = await weftdChecks(node(url));
    assert.is(c!.status, "problem");
    assert.is(c!.message, `weftd is alive but not ready (${url}/readyz 503): ${why}`);
    assert.ok(c!.fix);
  } finally {
    server.close();
  }
});

test("nothing answers at the URL: the transport error, and how to point doctor at weftd", async () => {
  const { url, server } = await serve([200, ""]);
  await new Promise((r) => server.close(r));
  const [c] = await weftdChecks(node(url));
  assert.is(c!.status, "problem");
  assert.match(c!.message, new RegExp(`^weftd does not answer at ${url}/healthz: connect ECONNREFUSED`));
  assert.match(c!.fix!, /--healthz-ip and --healthz-port/);
});

test.run();
