import { readFileSync } from "node:fs";
import type { CallOptions, Metadata } from "@grpc/grpc-js";
import {
  Etcd3,
  GRPCDeadlineExceededError,
  type ICompare,
  type IDuplexStream,
  type IKeyValue,
  type IOptions,
  type IRequestOp,
  type IWatchRequest,
  type IWatchResponse,
  isRecoverableError,
} from "etcd3";
import { StoreUnavailableError } from "./store.js";

/**
 * The etcd v3 connection of the etcd store: the etcd3 client (on @grpc/grpc-js) set up once, and every
 * call made under a deadline. flanneld's client has neither a dial timeout nor call deadlines, so an
 * unreachable or silent etcd hangs it without a word (anchors 10.1 item 3); here every operation ends
 * within `timeoutMs`, and fails with a StoreUnavailableError that names the endpoints, the deadline and
 * the cause, with a hint at the usual fix. Configuration mistakes (unreadable certificate files, a
 * certificate without its key, malformed endpoints) throw a plain Error naming the flag, at once.
 */
export interface EtcdClientOptions {
  endpoints: string[];
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  timeoutMs: number;
}

export interface KeepAlive {
  /** Seconds the lease now has (its granted TTL), or 0 when etcd no longer knows the lease. */
  ttl: number;
}

export interface LeaseTtl {
  /** Seconds left, or -1 when etcd no longer knows the lease (etcd answers so for lease 0 too). */
  ttl: number;
  granted: number;
}

export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** The part of etcd3's connection pool used to open a stream with metadata of our own. */
interface Pool {
  withConnection<T>(
    service: "Watch",
    fn: (args: { resource: unknown; client: unknown; metadata: Metadata }) => T | Promise<T>,
  ): Promise<T>;
  markFailed(resource: unknown, error: Error): void;
}

/** Reconnection follows the store's retry rhythm: gRPC's own default backs off up to two minutes. */
const GRPC_OPTIONS = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 5000,
  // A connection that died without a word (a partition) is noticed on the watch stream within ~15 s.
  // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time) or with no call open.
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5000,
  "grpc.keepalive_permit_without_calls": 0,
  // A node's http_proxy/https_proxy (set for image pulls) must not capture the cluster's etcd traffic.
  "grpc.enable_http_proxy": 0,
};

/** How long after the deadline an operation is abandoned if its calls have not failed by themselves. */
const BACKSTOP_MS = 250;

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;
const NEVER = new AbortController().signal;

/**
 * etcd3's default fault handling retries 3 times and opens a per-endpoint circuit breaker for 5 s after
 * 3 failures, answering "circuit breaker is open" instead of the cause. The store retries at its own
 * level (the lease manager, the watch's backoff), so here a call goes straight through...
 */
const passThrough = {
  execute: (fn: (ctx: { signal: AbortSignal }) => unknown) =>
    Promise.resolve().then(() => fn({ signal: NEVER })),
} as unknown as Policy;

/** ...and moves on to the next endpoint when one fails with a connection error, once per endpoint. */
function failover(endpoints: number): Policy {
  return {
    async execute(fn: (ctx: { signal: AbortSignal }) => unknown) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn({ signal: NEVER });
        } catch (err) {
          if (attempt >= endpoints || !(err instanceof Error) || !isRecoverableError(err)) throw err;
        }
      }
    },
  } as unknown as Policy;
}

function readPem(what: string, flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read the etcd ${what} ${path} (${flag}): ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * TLS as flanneld sets it up, less its trap: flanneld uses TLS only when both --etcd-certfile and
 * --etcd-keyfile are given and then silently ignores --etcd-cafile otherwise (anchors 10.2). Here a CA
 * alone verifies the server (https endpoints without a client certificate), a certificate needs its key
 * and the reverse, and https endpoints with no files use the system's roots.
 */
function credentialsOf(o: EtcdClientOptions): IOptions["credentials"] {
  if (Boolean(o.certFile) !== Boolean(o.keyFile)) {
    throw new Error(
      o.certFile
        ? `--etcd-certfile ${o.certFile} needs its key: --etcd-keyfile is not set`
        : `--etcd-keyfile ${o.keyFile} needs its certificate: --etcd-certfile is not set`,
    );
  }
  if (!o.caFile && !o.certFile) return undefined;
  return {
    // null: grpc-js verifies the server against Node's bundled roots.
    rootCertificate: o.caFile ? readPem("CA", "--etcd-cafile", o.caFile) : (null as unknown as Buffer),
    ...(o.certFile ? { certChain: readPem("certificate", "--etcd-certfile", o.certFile) } : {}),
    ...(o.keyFile ? { privateKey: readPem("key", "--etcd-keyfile", o.keyFile) } : {}),
  };
}

let quietIpServername = false;

/**
 * grpc-js gives Node's TLS the endpoint's host as the server name, for most etcd endpoints an IP
 * address, and Node then prints a DeprecationWarning (DEP0123, grpc/grpc-node#1919) on stderr, which is
 * weftd's log: two lines out of the log's format, one telling the operator to run
 * `weftd --trace-deprecation`. Only that warning is dropped (every other one goes through); the
 * connection is unchanged, the server's certificate still checked against that address.
 */
function dropIpServernameWarning(): void {
  if (quietIpServername) return;
  quietIpServername = true;
  const emit = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const o = rest[0];
    const code = o !== null && typeof o === "object" ? (o as { code?: unknown }).code : rest[1];
    if (code === "DEP0123") return;
    return (emit as (...a: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
}

function checkEndpoints(endpoints: string[]): void {
  if (endpoints.length === 0) throw new Error("no etcd endpoints given (--etcd-endpoints)");
  for (const e of endpoints) {
    if (!/^(https?:\/\/)?[^/\s]+\/?$/.test(e)) {
      throw new Error(
        `invalid etcd endpoint ${JSON.stringify(e)} (--etcd-endpoints): expected http://host:port or https://host:port`,
      );
    }
  }
  const secure = endpoints.filter((e) => e.startsWith("https://")).length;
  if (secure > 0 && secure < endpoints.length) {
    throw new Error(
      `etcd endpoints mix http and https (${endpoints.join(",")}): use one scheme for all of them`,
    );
  }
}

export class EtcdClient {
  readonly endpoints: string[];
  readonly timeoutMs: number;
  /** Things the operator should hear about the set-up, logged by the store. */
  readonly warnings: string[] = [];
  private readonly etcd: Etcd3;

  constructor(o: EtcdClientOptions) {
    this.endpoints = o.endpoints;
    this.timeoutMs = o.timeoutMs;
    checkEndpoints(o.endpoints);
    let credentials = credentialsOf(o);
    if (credentials && o.endpoints.every((e) => e.startsWith("http://"))) {
      // clientv3 (flanneld) dials http:// endpoints in plain text whatever TLS files it was given.
      this.warnings.push(
        `TLS files given but every etcd endpoint is http:// (${o.endpoints.join(",")}): connecting without TLS; use https:// endpoints for TLS`,
      );
      credentials = undefined;
    }
    if (credentials || o.endpoints.some((e) => e.startsWith("https://"))) dropIpServernameWarning();
    const deadline = (): CallOptions => ({ deadline: Date.now() + o.timeoutMs });
    this.etcd = new Etcd3({
      hosts: o.endpoints,
      ...(credentials ? { credentials } : {}),
      ...(o.username
        ? { auth: { username: o.username, password: o.password ?? "", callOptions: deadline } }
        : {}),
      grpcOptions: GRPC_OPTIONS,
      faultHandling: { host: () => passThrough, global: failover(o.endpoints.length) },
    });
  }

  /** "http://10.0.0.5:2379,http://10.0.0.6:2379" */
  get where(): string {
    return this.endpoints.join(",");
  }

  /**
   * Runs `fn` (one store operation, maybe several RPCs) under one deadline: every RPC gets it as its gRPC
   * deadline, and a backstop timer abandons the whole shortly after (an authentication round has no
   * deadline of its own). Any failure becomes a StoreUnavailableError, except the errors the operation
   * itself answers with (`isAnswer`: LeaseLostError).
   */
  async op<T>(
    what: string,
    fn: (call: CallOptions) => Promise<T>,
    isAnswer?: (err: unknown) => boolean,
  ): Promise<T> {
    const started = Date.now();
    const call: CallOptions = { deadline: started + this.timeoutMs };
    let timer: NodeJS.Timeout | undefined;
    const work = fn(call);
    // The backstop comes after the gRPC deadline, so a call that hits the deadline fails with its own
    // cause (and etcd3 resets its connection) before the operation is declared over.
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GRPCDeadlineExceededError("no answer")),
        this.timeoutMs + BACKSTOP_MS,
      );
    });
    try {
      return await Promise.race([work, backstop]);
    } catch (err) {
      if (err instanceof StoreUnavailableError || isAnswer?.(err)) throw err;
      if (err instanceof GRPCDeadlineExceededError) {
        throw new StoreUnavailableError(
          `etcd ${this.where} did not answer within the ${this.timeoutMs} ms deadline (${what}): ${explain(err, this.endpoints)}`,
          { cause: err },
        );
      }
      throw new StoreUnavailableError(
        `etcd ${this.where} unavailable (${what}, failed after ${Date.now() - started} ms of the ${this.timeoutMs} ms deadline): ${explain(err, this.endpoints)}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      work.catch(() => undefined); // abandoned after the backstop: its late failure is not news
    }
  }

  range(key: Buffer, rangeEnd: Buffer | undefined, call: CallOptions) {
    return this.etcd.kv.range({ key, ...(rangeEnd ? { range_end: rangeEnd } : {}) }, call);
  }

  txn(compare: ICompare[], success: IRequestOp[], failure: IRequestOp[], call: CallOptions) {
    return this.etcd.kv.txn({ compare, success, failure }, call);
  }

  grant(ttlSeconds: number, call: CallOptions) {
    return this.etcd.leaseClient.leaseGrant({ TTL: ttlSeconds }, call);
  }

  revoke(id: string, call: CallOptions) {
    return this.etcd.leaseClient.leaseRevoke({ ID: id }, call);
  }

  async timeToLive(id: string, call: CallOptions, keys = false): Promise<LeaseTtl & { keys: Buffer[] }> {
    const r = await this.etcd.leaseClient.leaseTimeToLive({ ID: id, keys }, call);
    return { ttl: Number(r.TTL), granted: Number(r.grantedTTL), keys: r.keys ?? [] };
  }

  /**
   * clientv3's KeepAliveOnce: one request on a LeaseKeepAlive stream, one answer. etcd answers TTL 0 for a
   * lease it does not know (expired or revoked).
   */
  async keepAliveOnce(id: string, call: CallOptions): Promise<KeepAlive> {
    const stream = await this.etcd.leaseClient.leaseKeepAlive(call);
    try {
      return await new Promise<KeepAlive>((resolve, reject) => {
        stream.on("data", (r) => resolve({ ttl: Number(r.TTL) }));
        stream.on("error", reject);
        stream.on("end", () => reject(new Error("the keep-alive stream ended without an answer")));
        stream.write({ ID: id });
      });
    } finally {
      stream.end();
      stream.cancel();
    }
  }

  /**
   * A Watch stream (no deadline: it lives as long as the watch), opened as clientv3's WithRequireLeader
   * opens flanneld's: with `hasleader` in its metadata, etcd cancels the stream ("no leader") when its
   * member loses the cluster's leader, instead of leaving it silent on a partitioned member; the watch
   * then reconnects, to another member when there are several endpoints. etcd3 has no option for it, so
   * this is its WatchClient.watch with that one header added.
   */
  watchStream(): Promise<WatchStream> {
    const pool = (this.etcd as unknown as { pool: Pool }).pool;
    return pool.withConnection("Watch", ({ resource, client, metadata }) => {
      const md = metadata.clone();
      md.set("hasleader", "true");
      const stream = (
        client as unknown as { watch(md: Metadata): WatchStream & { writable: boolean } }
      ).watch(md);
      // As etcd3's own: a stream failing while still open marks its host failed (its clients are reset).
      stream.on("error", (err) => stream.writable && pool.markFailed(resource, err));
      return stream;
    });
  }

  /**
   * Forgets the auth token, so the next call or stream logs in again. etcd3 does that by itself for a
   * unary call refused with "invalid auth token", but never for a stream: a watch reconnecting after the
   * token expired (etcd's --auth-token-ttl, 5 min by default; or a restart of etcd) would be refused
   * forever with the same token.
   */
  invalidateAuth(): void {
    const pool = (this.etcd as unknown as { pool: { authenticator?: { invalidateMetadata(): void } } }).pool;
    pool.authenticator?.invalidateMetadata();
  }

  close(): void {
    this.etcd.close();
  }
}

/** The message of an etcd3/gRPC error with its kind ("GRPCUnavailableError: 14 UNAVAILABLE: ..."). */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const name = err.constructor?.name && err.constructor.name !== "Error" ? `${err.constructor.name}: ` : "";
  // grpc-js decorates connection errors with a timestamp and an empty "Resolution note".
  const message = err.message
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, "")
    .replace(/\.?\s*Resolution note:\s*$/, "")
    .replace(/\s+/g, " ")
    .trim();
  return `${name}${message}`;
}

/**
 * The causes operators meet most, in words that point at the fix; flanneld shows none of them (it
 * hangs, anchors 10.1 item 3). Appended to gRPC's own message, which stays for the details.
 */
const HINTS: Array<[RegExp, (endpoints: string[]) => string]> = [
  [
    /ECONNREFUSED/,
    () => "nothing listens there: is etcd running, and is this its client URL (--etcd-endpoints)?",
  ],
  [/Name resolution failed|ENOTFOUND|EAI_AGAIN/, () => "the host name does not resolve"],
  [/EHOSTUNREACH|ENETUNREACH/, () => "no route to that address"],
  [
    /alert bad certificate|certificate required|alert unknown ca|alert handshake failure/,
    () =>
      "etcd refused this client's certificate: check --etcd-certfile/--etcd-keyfile and that etcd trusts their CA",
  ],
  [
    /unable to verify|self[- ]signed certificate|unable to get local issuer|certificate has expired|altnames/,
    () =>
      "the server's certificate is not trusted: check --etcd-cafile (and that the certificate names this address)",
  ],
  [
    /no leader/,
    () =>
      "this etcd member has lost its cluster's leader (no quorum, or it is cut off): list several endpoints",
  ],
  [/authentication failed|invalid user ID or password/, () => "check --etcd-username/--etcd-password"],
  [/user name is empty/, () => "etcd has authentication on: give --etcd-username/--etcd-password"],
  [/Connection dropped/, () => "the connection to etcd was cut (etcd stopped or restarting, or the network)"],
  [/invalid auth token/, () => "the auth token expired or etcd restarted: logging in again"],
  [
    /Failed to connect|Waiting for LB pick/,
    (endpoints) =>
      endpoints.some((e) => !e.startsWith("https://"))
        ? "the address accepts connections but does not answer as etcd: if etcd serves TLS, use https:// endpoints"
        : "the address accepts connections but does not answer as etcd",
  ],
];

/** describe() plus a hint at the likely fix. */
export function explain(err: unknown, endpoints: string[]): string {
  const text = describe(err);
  const hint = HINTS.find(([re]) => re.test(text));
  return hint ? `${text} (${hint[1](endpoints)})` : text;
}

export type { IKeyValue };
