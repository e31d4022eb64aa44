/**
 * A TCP relay that holds what clients send for a while before passing it on (a slow link to a server,
 * where the kernel here has no netem): run in the server's network namespace by TestEtcd.door().
 *
 *   node delay-relay.js <listen host> <listen port> <target host> <target port> <delay ms>
 *
 * Prints "listening" once it accepts connections. Every chunk a client sends reaches the server `delay`
 * ms after it arrived, in order; the answers are not held. A line "delay <ms>" on stdin changes the
 * delay for what arrives from then on (order is kept: nothing overtakes a chunk still held). It ends when
 * stdin closes.
 */
import { connect, createServer, type Socket } from "node:net";
import { createInterface } from "node:readline";

const [listenHost, listenPort, targetHost, targetPort, delayText] = process.argv.slice(2);
let delay = Number(delayText);
const sockets = new Set<Socket>();

const server = createServer((client) => {
  const upstream = connect(Number(targetPort), targetHost);
  // Held chunks in arrival order, each with when it is due; one timer passes on the head.
  const held: Array<{ due: number; chunk: Buffer }> = [];
  let timer: NodeJS.Timeout | undefined;
  let clientGone = false;
  const pump = () => {
    timer = undefined;
    while (held.length > 0 && held[0]!.due <= Date.now()) upstream.write(held.shift()!.chunk);
    if (held.length > 0) timer = setTimeout(pump, held[0]!.due - Date.now());
    else if (clientGone) upstream.end();
  };
  client.on("data", (chunk) => {
    held.push({ due: Date.now() + delay, chunk });
    if (!timer) pump();
  });
  upstream.pipe(client);
  client.on("close", () => {
    clientGone = true;
    if (!timer) pump();
  });
  upstream.on("close", () => client.destroy());
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  }
});

server.listen(Number(listenPort), listenHost, () => process.stdout.write("listening\n"));

createInterface({ input: process.stdin })
  .on("line", (line) => {
    const m = /^delay (\d+)$/.exec(line.trim());
    if (m) delay = Number(m[1]);
  })
  .on("close", () => {
    server.close();
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
