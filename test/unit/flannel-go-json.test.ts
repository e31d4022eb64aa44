import { test } from "uvu";
import * as assert from "uvu/assert";
import { goMarshal, inStructOrder } from "../../plugins/flannel/go-json.js";

test("goMarshal: Go's escaping and sorting; struct order on request", () => {
  assert.is(
    goMarshal({ b: "<a&b>", a: "\u2028" }).toString(),
    '{"a":"\\u2028","b":"\\u003ca\\u0026b\\u003e"}',
  );
  assert.is(
    goMarshal({ z: { y: 1, x: [2, { d: 1, c: 2 }] } }).toString(),
    '{"z":{"x":[2,{"c":2,"d":1}],"y":1}}',
  );
  assert.is(goMarshal(inStructOrder({ dst: "a", advmss: 1 })).toString(), '{"dst":"a","advmss":1}');
});

test.run();
