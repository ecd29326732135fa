// Proves that the real `@upstash/redis` client, running in the Workers runtime, gets from the dev
// Upstash REST bridge (dev/redis-bridge.ts) over a real Redis 7 the answers it gets from Upstash.
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Redis } from "@upstash/redis/cloudflare";

const { UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token } = env as unknown as {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
};

// The default client (base64 responses, automatic deserialization, auto-pipelining: every call
// goes to /pipeline), one that posts each command to `/` on its own, and one that returns raw strings.
const redis = new Redis({ url, token, retry: false });
const direct = new Redis({ url, token, retry: false, enableAutoPipelining: false });
const raw = new Redis({ url, token, retry: false, enableAutoPipelining: false, automaticDeserialization: false });
const plainJson = new Redis({ url, token, retry: false, enableAutoPipelining: false, responseEncoding: false });

/** A key no other test (or run) uses: the Redis logical database is shared by the whole run. */
const key = (name: string) => `bridge-test:${name}:${crypto.randomUUID()}`;

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, ...headers },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> | Record<string, unknown>[] };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("strings", () => {
  it("SET/GET round-trips, INCR returns numbers, a missing key is null, through both / and /pipeline", async () => {
    for (const client of [redis, direct]) {
      const k = key("str");
      expect(await client.set(k, "hello")).toBe("OK");
      expect(await client.get(k)).toBe("hello");
      expect(await client.set(`${k}:n`, 41)).toBe("OK");
      expect(await client.incr(`${k}:n`)).toBe(42);
      expect(await client.incrby(`${k}:n`, 8)).toBe(50);
      expect(await client.get(key("missing"))).toBeNull();
      expect(await client.set(k, { nested: [1, "two"] })).toBe("OK");
      expect(await client.get(k)).toEqual({ nested: [1, "two"] });
      expect(await client.del(k, `${k}:n`)).toBe(2);
    }
  });

  it("SET with EX/NX options and TTL behave as on Redis", async () => {
    const k = key("ex");
    expect(await redis.set(k, "v", { ex: 100, nx: true })).toBe("OK");
    expect(await redis.set(k, "w", { nx: true })).toBeNull();
    const ttl = await redis.ttl(k);
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
  });
});

describe("status replies under base64", () => {
  it("only a top-level OK stays plain: PING, TYPE and OK inside arrays decode correctly", async () => {
    const k = key("type");
    await redis.hset(k, { a: 1 });
    expect(await redis.ping()).toBe("PONG");
    expect(await direct.ping()).toBe("PONG");
    expect(await redis.type(k)).toBe("hash");
    expect(await direct.type(k)).toBe("hash");
    // A status reply nested in an array (redis.call('SET') returned from Lua) must be encoded too.
    expect(await redis.eval("return {redis.call('SET', KEYS[1], 'x'), 'OK'}", [key("s")], [])).toEqual(["OK", "OK"]);

    const set = await post("/", JSON.stringify(["SET", key("raw"), "OK"]), { "Upstash-Encoding": "base64" });
    expect(set).toEqual({ status: 200, body: { result: "OK" } });
    const ping = await post("/", JSON.stringify(["PING"]), { "Upstash-Encoding": "base64" });
    expect(ping).toEqual({ status: 200, body: { result: btoa("PONG") } });
    const plain = await post("/", JSON.stringify(["PING"]));
    expect(plain).toEqual({ status: 200, body: { result: "PONG" } });
  });
});

describe("hashes", () => {
  it("HSET/HGET/HMGET/HGETALL/HINCRBY keep field order and the client's object shape", async () => {
    const k = key("hash");
    expect(await redis.hset(k, { name: "Ada", visits: 1, meta: { vip: true } })).toBe(3);
    expect(await redis.hget(k, "name")).toBe("Ada");
    expect(await redis.hincrby(k, "visits", 2)).toBe(3);
    expect(await redis.hmget(k, "name", "nope")).toEqual({ name: "Ada", nope: null });
    expect(await redis.hgetall(k)).toEqual({ name: "Ada", visits: 3, meta: { vip: true } });
    // The wire shape is the flat RESP2 array, not a map (ioredis would turn HGETALL into an object);
    // without automatic deserialization the client hands that array through as it is.
    expect(await raw.hgetall(k)).toEqual(["name", "Ada", "visits", "3", "meta", '{"vip":true}']);
    const wire = await post("/", JSON.stringify(["HGETALL", k]));
    expect(wire.body).toEqual({ result: ["name", "Ada", "visits", "3", "meta", '{"vip":true}'] });
    expect(await redis.hgetall(key("none"))).toBeNull();
  });
});

describe("sorted sets", () => {
  it("ZADD, ZRANGE WITHSCORES, ZRANGE BYSCORE and ZRANGEBYSCORE return members in score order", async () => {
    const k = key("zset");
    expect(await redis.zadd(k, { score: 3, member: "c" }, { score: 1, member: "a" }, { score: 2.5, member: "b" })).toBe(3);
    expect(await redis.zrange(k, 0, -1)).toEqual(["a", "b", "c"]);
    expect(await redis.zrange(k, 0, -1, { withScores: true })).toEqual(["a", 1, "b", 2.5, "c", 3]);
    expect(await redis.zrange(k, 2, 3, { byScore: true })).toEqual(["b", "c"]);
    expect(await redis.exec(["ZRANGEBYSCORE", k, "(1", "+inf", "WITHSCORES"])).toEqual(["b", 2.5, "c", 3]);
    expect(await redis.zscore(k, "b")).toBe(2.5);
    expect(await redis.zrem(k, "a")).toBe(1);
    expect(await redis.zcard(k)).toBe(2);
  });
});

describe("streams with a consumer group", () => {
  it("XGROUP CREATE MKSTREAM, XADD, XREADGROUP COUNT >, XACK, XPENDING (both forms), XAUTOCLAIM, XLEN, XTRIM", async () => {
    const stream = key("stream");
    const group = "workers";
    expect(await redis.xgroup(stream, { type: "CREATE", group, id: "$", options: { MKSTREAM: true } })).toBe("OK");
    expect(await redis.xlen(stream)).toBe(0);

    const ids: string[] = [];
    for (let i = 1; i <= 4; i++) ids.push(await redis.xadd(stream, "*", { job: `job-${i}`, attempt: i }));
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    expect(await redis.xlen(stream)).toBe(4);

    const batch = (await redis.xreadgroup(group, "c1", stream, ">", { count: 3 })) as [string, [string, unknown[]][]][];
    expect(batch).toEqual([
      [stream, [
        [ids[0], ["job", "job-1", "attempt", 1]],
        [ids[1], ["job", "job-2", "attempt", 2]],
        [ids[2], ["job", "job-3", "attempt", 3]],
      ]],
    ]);

    expect(await redis.xack(stream, group, [ids[0]!, ids[1]!])).toBe(2);

    // Summary form: [count, smallest id, greatest id, [[consumer, count]]].
    expect(await redis.exec(["XPENDING", stream, group])).toEqual([1, ids[2], ids[2], [["c1", 1]]]);
    // Extended form: [[id, consumer, idle ms, deliveries]].
    const pending = (await redis.xpending(stream, group, "-", "+", 10)) as [string, string, number, number][];
    expect(pending).toHaveLength(1);
    expect(pending[0]![0]).toBe(ids[2]);
    expect(pending[0]![1]).toBe("c1");
    expect(typeof pending[0]![2]).toBe("number");
    expect(pending[0]![3]).toBe(1);

    // Another consumer claims what c1 left pending: [next cursor, [[id, fields]], [deleted ids]].
    const claimed = await redis.xautoclaim(stream, group, "c2", 0, "0-0", { count: 10 });
    expect(claimed).toEqual(["0-0", [[ids[2], ["job", "job-3", "attempt", 3]]], []]);
    const afterClaim = (await redis.xpending(stream, group, "-", "+", 10)) as [string, string, number, number][];
    expect(afterClaim.map(([id, consumer, , deliveries]) => [id, consumer, deliveries])).toEqual([[ids[2], "c2", 2]]);

    // XRANGE is turned into an object keyed by id by the client.
    expect(await redis.xrange(stream, "-", "+", 1)).toEqual({ [ids[0]!]: { job: "job-1", attempt: 1 } });

    expect(await redis.xtrim(stream, { strategy: "MAXLEN", threshold: 3, exactness: "=" })).toBe(1);
    expect(await redis.xlen(stream)).toBe(3);
    expect(await redis.xtrim(stream, { strategy: "MINID", threshold: ids[3]!, exactness: "=" })).toBe(2);
    expect(await redis.xlen(stream)).toBe(1);

    // The entry COUNT 3 left undelivered comes next; after it, XREADGROUP answers nil (null).
    expect(await redis.xreadgroup(group, "c1", stream, ">", { count: 10 })).toEqual([
      [stream, [[ids[3], ["job", "job-4", "attempt", 4]]]],
    ]);
    expect(await redis.xreadgroup(group, "c1", stream, ">", { count: 10 })).toBeNull();
  });

  it("XREADGROUP reaches the client as the RESP2 array [[stream, [[id, [field, value]]]]], not a map (the wrong-reply guard)", async () => {
    // If the bridge answered RESP3-style maps ({stream: {id: {...}}}), destructuring below fails.
    const stream = key("guard");
    await redis.xgroup(stream, { type: "CREATE", group: "g", id: "0", options: { MKSTREAM: true } });
    const id = await redis.xadd(stream, "*", { payload: '{"to":"+15550001111"}', kind: "sms" });

    // First delivery through the default client, then each client re-reads the consumer's pending
    // history (id 0), which has the same shape.
    const reads = [
      { client: redis, from: ">" },
      { client: redis, from: "0" },
      { client: direct, from: "0" },
      { client: raw, from: "0" },
    ];
    for (const { client, from } of reads) {
      const reply = await client.xreadgroup("g", "c", stream, from, { count: 1 });
      expect(Array.isArray(reply)).toBe(true);
      const [[streamName, entries]] = reply as [[string, [string, unknown[]][]]];
      expect(streamName).toBe(stream);
      expect(Array.isArray(entries)).toBe(true);
      const [[entryId, fields]] = entries as [[string, unknown[]]];
      expect(entryId).toBe(id);
      expect(Array.isArray(fields)).toBe(true);
      expect(fields[0]).toBe("payload");
      expect(fields[2]).toBe("kind");
      expect(fields[3]).toBe("sms");
      // With automatic deserialization the JSON field value is parsed; without, it stays a string.
      expect(fields[1]).toEqual(client === raw ? '{"to":"+15550001111"}' : { to: "+15550001111" });
    }

    const wire = await post("/", JSON.stringify(["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", stream, "0"]));
    expect(wire.body).toEqual({ result: [[stream, [[id, ["payload", '{"to":"+15550001111"}', "kind", "sms"]]]]] });
  });

  it("XREADGROUP with BLOCK waits on its own connection and does not stall other requests", async () => {
    const stream = key("block");
    await redis.xgroup(stream, { type: "CREATE", group: "g", id: "$", options: { MKSTREAM: true } });
    const started = Date.now();
    const blocked = direct.xreadgroup("g", "c", stream, ">", { count: 1, blockMS: 1500 });
    // While that request waits inside Redis, other requests are answered at once.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const pingStarted = Date.now();
    expect(await direct.ping()).toBe("PONG");
    expect(Date.now() - pingStarted).toBeLessThan(500);
    const id = await direct.xadd(stream, "*", { n: "1" });
    const reply = await blocked;
    expect(reply).toEqual([[stream, [[id, ["n", 1]]]]]);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe("Lua", () => {
  it("EVAL gets KEYS and ARGV and returns a nested array with strings, integers and nil-terminated tables", async () => {
    const counter = key("lua");
    const script = `
      local n = redis.call('INCRBY', KEYS[1], ARGV[1])
      return {KEYS[1], ARGV[2], n, {1, 'nested'}, tostring(n * 2)}
    `;
    expect(await redis.eval(script, [counter], ["5", "label"])).toEqual([counter, "label", 5, [1, "nested"], 10]);
    expect(await raw.eval(script, [counter], ["5", "label"])).toEqual([counter, "label", 10, [1, "nested"], "20"]);
    expect(await direct.eval("return nil", [], [])).toBeNull();
  });
});

describe("pipeline and multi-exec", () => {
  it("a pipeline is one HTTP request, answers in order, and a failing command fails only its own item", async () => {
    const k = key("pipe");
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const results = await direct
      .pipeline()
      .set(k, "1")
      .incr(k)
      .hget(k, "wrongtype")
      .get(k)
      .exec({ keepErrors: true });
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(String(fetchSpy.mock.calls[0]![0])).toBe(`${url}/pipeline`);
    expect(results.map((r) => r.result)).toEqual(["OK", 2, undefined, 2]);
    expect(results[2]!.error).toMatch(/^WRONGTYPE/);
    // Without keepErrors the client throws for the failed item.
    await expect(direct.pipeline().get(k).hget(k, "x").exec()).rejects.toThrow(/Command 2 \[ hget \] failed: WRONGTYPE/);
  });

  it("MULTI/EXEC runs atomically: results in order, per-command runtime errors, a queue-time error discards all", async () => {
    const k = key("multi");
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const results = await direct.multi().set(k, "10").incrby(k, 5).get(k).exec();
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(String(fetchSpy.mock.calls[0]![0])).toBe(`${url}/multi-exec`);
    expect(results).toEqual(["OK", 15, 15]);

    const mixed = await post("/multi-exec", JSON.stringify([["SET", k, "x"], ["INCR", k], ["GET", k]]));
    expect(mixed.status).toBe(200);
    expect(mixed.body).toEqual([{ result: "OK" }, { error: "ERR value is not an integer or out of range" }, { result: "x" }]);

    const aborted = await post("/multi-exec", JSON.stringify([["SET", k, "never"], ["NO-SUCH-COMMAND"]]));
    expect(aborted.status).toBe(400);
    expect((aborted.body as { error: string }).error).toMatch(/^EXECABORT/);
    expect(await redis.get(k)).toBe("x");
  });

  it("auto-pipelining batches concurrent calls into one /pipeline request", async () => {
    const k = key("auto");
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const [a, b, c] = await Promise.all([redis.get(`${k}:a`), redis.get(`${k}:b`), redis.get(`${k}:c`)]);
    expect([a, b, c]).toEqual([null, null, null]);
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(String(fetchSpy.mock.calls[0]![0])).toBe(`${url}/pipeline`);
  });
});

describe("binary and unicode values", () => {
  const samples = ["emoji 👋🏽🚀", "中文 日本語 한국어", "nul\u0000inside", "quote \" backslash \\ newline \n", "ünïcödé", "0123", "   "];

  it("round-trip unchanged through base64 responses, plain JSON responses and raw mode", async () => {
    for (const value of samples) {
      const k = key("uni");
      await redis.set(k, value);
      expect(await redis.get(k)).toBe(value);
      expect(await raw.get(k)).toBe(value);
      expect(await plainJson.get(k)).toBe(value);
      await redis.hset(`${k}:h`, { [value]: value });
      expect(await raw.hget(`${k}:h`, value)).toBe(value);
      await redis.xadd(`${k}:s`, "*", { [value]: value });
      const entries = (await redis.xrange(`${k}:s`, "-", "+")) as Record<string, Record<string, unknown>>;
      expect(Object.values(entries)[0]).toEqual({ [value]: value });
    }
  });

  it("arbitrary bytes come back exact with Upstash-Encoding: base64", async () => {
    const k = key("bytes");
    const script = "redis.call('SET', KEYS[1], string.char(0, 1, 127, 128, 254, 255)); return redis.call('GET', KEYS[1])";
    const reply = await post("/", JSON.stringify(["EVAL", script, "1", k]), { "Upstash-Encoding": "base64" });
    expect(reply).toEqual({ status: 200, body: { result: "AAF/gP7/" } });
    const nested = await post("/", JSON.stringify(["MGET", k, key("none")]), { "Upstash-Encoding": "base64" });
    expect(nested.body).toEqual({ result: ["AAF/gP7/", null] });
    // Without base64 the invalid UTF-8 is replaced with U+FFFD, as Upstash documents.
    const plain = await post("/", JSON.stringify(["GET", k]));
    expect(plain.body).toEqual({ result: "\u0000\u0001\u007f\ufffd\ufffd\ufffd" });
  });

  it("a 2 MB value (multi-byte characters) survives the trip", async () => {
    const k = key("big");
    const big = "x€".repeat(512 * 1024);
    await direct.set(k, big);
    expect(await direct.strlen(k)).toBe(512 * 1024 * 4);
    expect(await direct.get(k)).toBe(big);
  });
});

describe("errors", () => {
  it("WRONGTYPE surfaces with Redis' own text through the client (direct: HTTP 400, auto-pipelined: item error)", async () => {
    const k = key("wrong");
    await redis.set(k, "a string");
    await expect(direct.hget(k, "field")).rejects.toThrow(/^WRONGTYPE Operation against a key holding the wrong kind of value/);
    await expect(redis.hget(k, "field")).rejects.toThrow(/WRONGTYPE Operation against a key holding the wrong kind of value/);
    const wire = await post("/", JSON.stringify(["HGET", k, "field"]));
    expect(wire).toEqual({ status: 400, body: { error: "WRONGTYPE Operation against a key holding the wrong kind of value" } });
  });

  it("an unknown command is HTTP 400 with Redis' ERR text, also from Lua", async () => {
    const wire = await post("/", JSON.stringify(["NO-SUCH-COMMAND", "x"]));
    expect(wire.status).toBe(400);
    expect((wire.body as { error: string }).error).toMatch(/^ERR unknown command 'NO-SUCH-COMMAND'/);
    await expect(direct.exec(["NO-SUCH-COMMAND"])).rejects.toThrow(/ERR unknown command/);
    await expect(direct.eval("return redis.call('NO-SUCH-COMMAND')", [], [])).rejects.toThrow(/Unknown Redis command/);
  });

  it("malformed bodies, refused commands and oversized bodies are 400/413 with a JSON error", async () => {
    const parse = await post("/", "{not json");
    expect(parse.status).toBe(400);
    expect((parse.body as { error: string }).error).toMatch(/^ERR invalid JSON body/);
    const notArray = await post("/", JSON.stringify({ command: "GET" }));
    expect(notArray.status).toBe(400);
    const emptyPipeline = await post("/pipeline", "[]");
    expect(emptyPipeline.status).toBe(400);
    // SELECT would switch the database of the bridge's shared connection for every other caller.
    const select = await post("/", JSON.stringify(["SELECT", "0"]));
    expect(select.status).toBe(400);
    expect((select.body as { error: string }).error).toMatch(/not supported/);
    const huge = await post("/", JSON.stringify(["SET", key("huge"), "x".repeat(11 * 1024 * 1024)]));
    expect(huge.status).toBe(413);
    expect(await direct.ping()).toBe("PONG");
  });

  it("a missing or wrong bearer token is 401 Unauthorized, and the client reports it", async () => {
    for (const authorization of ["Bearer wrong-token", "", `Basic ${btoa(`x:${token}`)}`]) {
      const response = await fetch(url, { method: "POST", headers: authorization ? { authorization } : {}, body: '["PING"]' });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: "Unauthorized" });
    }
    const intruder = new Redis({ url, token: "wrong-token", retry: false, enableAutoPipelining: false });
    await expect(intruder.ping()).rejects.toThrow(/Unauthorized/);
  });
});

describe("path form", () => {
  it("/set/key/value?EX=… and /get/key work like the JSON body form", async () => {
    const k = key("path");
    const set = await post(`/set/${encodeURIComponent(k)}/v%2F1?EX=60`, "");
    expect(set).toEqual({ status: 200, body: { result: "OK" } });
    expect(await direct.get(k)).toBe("v/1");
    expect(await direct.ttl(k)).toBeGreaterThan(50);
    const posted = await post(`/set/${encodeURIComponent(k)}`, "body value");
    expect(posted.status).toBe(200);
    expect((await post(`/get/${encodeURIComponent(k)}`, "")).body).toEqual({ result: "body value" });
  });
});
