import { test } from "uvu";
import * as assert from "uvu/assert";
import { RateLimitedLog } from "../../daemon/log-limit.js";
import { captureLog } from "../helpers/capture-log.js";
import { FakeClock } from "../helpers/fake-clock.js";

test("a line identical to one written within the window is dropped, and counted when next written", async () => {
  const { log, lines } = captureLog();
  const clock = new FakeClock();
  const r = new RateLimitedLog(log, 60_000, clock);
  r.warn("etcd is down");
  await clock.advance(1000);
  r.warn("etcd is down");
  r.warn("etcd is down");
  r.error("etcd is down"); // another level: its own line
  r.warn("something else");
  await clock.advance(60_000);
  r.warn("etcd is down");
  assert.equal(lines, [
    "warn etcd is down",
    "error etcd is down",
    "warn something else",
    'warn etcd is down {"repeated":2}',
  ]);
});

test("the retries of one outage are one line a window although each quotes its own durations", async () => {
  // What the etcd store reports while etcd is down: the watch's backoff doubles, and each failed call
  // says how long it took. Keyed on the whole text, none of these was ever identical to the one before,
  // so an outage wrote a line per retry.
  const { log, lines } = captureLog();
  const clock = new FakeClock();
  const r = new RateLimitedLog(log, 60_000, clock);
  for (const backoff of [100, 200, 400, 800, 1600, 3200, 5000, 5000]) {
    r.warn(
      `Watch of etcd http://192.168.77.254:2379: the watch of /coreos.com/network/subnets/ broke (14 UNAVAILABLE: connect ECONNREFUSED 192.168.77.254:2379); resuming from revision 5 in ${backoff} ms`,
    );
    await clock.advance(backoff);
  }
  for (const took of [3, 12, 2]) {
    r.warn(
      `failed to acquire lease: etcd http://192.168.77.254:2379 unavailable (list of /coreos.com/network/subnets/, failed after ${took} ms of the 5000 ms deadline): ECONNREFUSED (retrying)`,
    );
    await clock.advance(1000);
  }
  assert.is(lines.length, 2, lines.join("\n"));
  assert.match(lines[0]!, "resuming from revision 5 in 100 ms");
  assert.match(lines[1]!, "failed after 3 ms of the 5000 ms deadline");
  // Another revision, another address: other events, written.
  r.warn(
    "Watch of etcd http://192.168.77.254:2379: the watch of /coreos.com/network/subnets/ broke (14 UNAVAILABLE: connect ECONNREFUSED 192.168.77.254:2379); resuming from revision 6 in 100 ms",
  );
  r.warn(
    "failed to acquire lease: etcd http://192.168.77.253:2379 unavailable (list of /coreos.com/network/subnets/, failed after 3 ms of the 5000 ms deadline): ECONNREFUSED (retrying)",
  );
  assert.is(lines.length, 4);
  // After the window, the next one is written with the count of those dropped.
  await clock.advance(60_000);
  r.warn(
    "failed to acquire lease: etcd http://192.168.77.254:2379 unavailable (list of /coreos.com/network/subnets/, failed after 7 ms of the 5000 ms deadline): ECONNREFUSED (retrying)",
  );
  assert.match(lines[4]!, /failed after 7 ms of the 5000 ms deadline.*\{"repeated":2\}$/);
});

test.run();
