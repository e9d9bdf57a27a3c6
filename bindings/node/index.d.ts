// Type definitions of the `agentriage` Node module (the public API of
// index.js). Checked by test/types.test.js with `tsc --noEmit`.

/** Largest request accepted, in bytes of JSON text (1 MiB). */
export declare const MAX_REQUEST_BYTES: number
/** Deepest nesting of arrays and objects accepted in a request. */
export declare const MAX_DEPTH: number

/** What the agent may do. */
export type Outcome = 'execute' | 'reject' | 'escalate'

/** Which part of the engine produced a reason or obligation. */
export type Source = 'rego' | 'cedar' | 'agentriage'

/** One policy (or engine rule) that fired. */
export interface Reason {
  /** Which engine produced it. */
  engine: Source
  /** The policy or rule id, e.g. `R7.quarantined_site`. */
  policy: string
  /** A message for the operator. */
  message: string
  /** What it asks for. */
  effect: 'reject' | 'escalate' | 'permit'
}

/** Something the host must do along with the outcome (notify, log, redact, …). */
export interface Obligation {
  /** What to do, e.g. `notify-security`. */
  id: string
  /** Which engine produced it. */
  engine: Source
  /** The policy or rule that produced it. */
  policy: string
  /** Further parameters given by the policy (absent when there are none). */
  params?: Record<string, unknown>
}

/** Which bundle decided. */
export interface BundleInfo {
  /** The bundle's name from its manifest. */
  readonly name: string
  /** The bundle's revision from its manifest. */
  readonly revision: string
  /** `sha256:` digest over the bundle's files. */
  readonly digest: string
}

/**
 * A JSON value as a request may carry it. A `Date` becomes its ISO 8601
 * text; a `Map` with string keys becomes the object it holds; an `undefined`
 * member is a missing member. Anything else (a Set, binary data, a BigInt, a
 * class instance without `toJSON`, an invalid Date, a hole or `undefined` in
 * an array) throws an InvalidRequestError naming its path.
 */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | Date
  | JsonValue[]
  | JsonObject

/** A JSON object as a request may carry it: a plain object or a `Map` with string keys. */
export type JsonObject = { [key: string]: JsonValue } | Map<string, JsonValue>

/** The request contract (only `principal.id` and `action.name` are required). */
export interface Request {
  /** W3C trace id (32 lowercase hex digits); a new one is made when absent. */
  trace_id?: string
  /** RFC 3339 evaluation time (or a Date); the engine uses now when absent. */
  time?: string | Date
  /** The agent asking. */
  principal: {
    id: string
    type?: string
    trust_zone?: string
    roles?: string[]
    delegation?: string[]
    credential?: { issuer?: string; expires_at?: string | Date }
    attestation?: { status?: string; kind?: string; verified_at?: string | Date }
    /** The person or upstream service it acts for. */
    on_behalf_of?: { id: string; type: 'user' | 'service'; roles?: string[]; scopes?: string[] }
    attributes?: JsonObject
  }
  /** What it wants to do. */
  action: { name: string; attributes?: JsonObject }
  /** What it wants to do it on. */
  resource?: { type: string; id?: string; attributes?: JsonObject }
  /** Free-form context (workflow, site, incident mode, …); `facts` is reserved. */
  context?: JsonObject
  /** The anomaly score in [0, 1], if one was computed. */
  anomaly?: { score?: number }
  /** A signed intent (compact JWS). */
  intent?: string
  /** A signed approval of this exact action (compact JWS, `typ` `approval+jwt`; docs/escalation.md). */
  approval?: string
}

/** Options of the asynchronous calls. */
export interface DecideOptions {
  /** Abandons the wait: the Promise rejects with the signal's reason (an `AbortError`). */
  signal?: AbortSignal
}

/** The answer to a request. */
export declare class Decision {
  private constructor()
  /** What the agent may do. */
  readonly outcome: Outcome
  /** Every reason that fired: rejects, then escalations; for `execute`, the permits. */
  readonly reasons: Reason[]
  /** What the host must do along with the outcome. */
  readonly obligations: Obligation[]
  /** The request's trace id, or a new one. */
  readonly traceId: string
  /** A new, time-ordered id for this decision (UUID v7). */
  readonly decisionId: string
  /** Which bundle decided. */
  readonly bundle: BundleInfo
  /** Time spent deciding inside the engine, in microseconds. */
  readonly durationUs: number
  /** For an `escalate` an approval can settle: what the approver needs; else `null`. */
  readonly approvalRequest: {
    readonly action_digest: string
    readonly reasons: ReadonlyArray<{ readonly policy: string; readonly roles: ReadonlyArray<string> }>
    readonly audience: string
    readonly expires_at: string
  } | null
  /** The approval the request carried, and what became of it; else `null`. */
  readonly approval: {
    readonly status: 'used' | 'refused' | 'unused'
    readonly approver?: string
    readonly jti?: string
    readonly settled?: ReadonlyArray<string>
    readonly refused?: string
  } | null
  /** Whether the action may run automatically. */
  readonly isExecute: boolean
  /** The policy ids of all reasons, in order. */
  readonly policyIds: string[]
  /** The decision in the public JSON contract's shape (snake_case keys), as `JSON.stringify` writes it. */
  toJSON(): DecisionJson
}

/** A decision as the public JSON contract (and the CLI, and Python) writes it. */
export interface DecisionJson {
  outcome: Outcome
  reasons: Reason[]
  obligations: Obligation[]
  trace_id: string
  decision_id: string
  bundle: BundleInfo
  duration_us: number
}

/** Options of {@link Engine.fromBundle}. */
export interface EngineOptions {
  /** Ed25519 public keys (PEM) of the bundle's publishers: require a signed bundle. */
  trustedKeys?: Array<string | Uint8Array>
  /** `false` turns off the replay check of signed intents (test suites only). */
  replayCheck?: boolean
  /**
   * Where used intents and approvals and quota counters are kept: `'memory'`
   * (default), `'memory:CAPACITY'` or `'redis://[user:password@]host:port/db'`
   * (shared by every engine and process using that Redis).
   */
  state?: string
}

/** Options of {@link Engine.fromSource}. */
export interface SourceOptions {
  /**
   * Ed25519 public keys (PEM) of the bundle's publishers: every bundle, the
   * first and the local copy included, must be signed by one of them.
   */
  trustedKeys?: Array<string | Uint8Array>
  /** Seconds between two looks at the source (default 30), with jitter for URLs. */
  intervalSeconds?: number
  /** Time limit of one HTTP request, in seconds (default 30). */
  timeoutSeconds?: number
  /** Largest bundle archive downloaded, in bytes (default 64 MiB). */
  maxBytes?: number
  /** Sent as `Authorization: Bearer …`. */
  bearerToken?: string
  /** File keeping the last good bundle (and its ETag, beside it in `<cache>.etag.json`). */
  cache?: string
  /**
   * Start from `cache` when it loads (and verifies), then follow the
   * source; the kept ETag makes an unchanged bundle cost a `304`.
   */
  startFromCache?: boolean
  /** How long to wait for the first bundle, in seconds (default 60). */
  startupTimeoutSeconds?: number
  /** PEM file of the certificate authorities trusted for `https://`, instead of the Mozilla roots. */
  caFile?: string
}

/**
 * Where an engine's bundle came from and how its delivery goes. Frozen;
 * `JSON.stringify` gives snake_case keys (`last_success_unix`, …).
 */
export declare class BundleStatus {
  private constructor()
  /** Name of the live bundle. */
  readonly name: string
  /** Revision of the live bundle. */
  readonly revision: string
  /** Digest of the live bundle (the digest every decision carries). */
  readonly digest: string
  /** A path, a URL, an `oci://` reference, or `'host'` (a bundle the host loaded). */
  readonly source: string
  /** When a fetch or load last succeeded (Unix seconds; a `304` counts), or `null`. */
  readonly lastSuccessUnix: number | null
  /** When a fetch or load last failed (Unix seconds), or `null`. */
  readonly lastFailureUnix: number | null
  /** Why it failed then, or `null`. */
  readonly lastError: string | null
  /** Failed fetches and loads so far (the live bundle stayed each time). */
  readonly failures: number
  /** Bundles swapped in by the source so far. */
  readonly updates: number
  /** The status with snake_case keys. */
  toJSON(): BundleStatusJson
}

/** {@link BundleStatus} as JSON (the keys the CLI and the Python module use). */
export interface BundleStatusJson {
  name: string
  revision: string
  digest: string
  source: string
  last_success_unix: number | null
  last_failure_unix: number | null
  last_error: string | null
  failures: number
  updates: number
}

/** Decides requests against one policy bundle; share one per bundle. */
export declare class Engine {
  private constructor()
  /**
   * Loads and compiles the bundle in `dir`; throws {@link BundleError}.
   * `trustedKeys` (Ed25519 public keys, PEM) makes the engine require a bundle
   * one of them signed, now and on every reload (`kind: 'signature'` errors);
   * a key that does not parse throws a TypeError (`ERR_INVALID_ARG_VALUE`).
   * `replayCheck: false` turns off the replay check of signed intents (test suites only).
   */
  static fromBundle(dir: string, options?: EngineOptions): Engine
  /**
   * Loads the bundle at `source` (an `http(s)://` URL of an archive, an
   * `oci://HOST/REPOSITORY:TAG` or `@sha256:…` reference, or a directory or
   * archive path) and keeps following it: updates load off the event loop
   * and swap in atomically; a broken or unsigned update is refused and the
   * live bundle stays. Rejects with {@link BundleError} (arrived, does not
   * load), {@link BundleFetchError} (none arrived) or a TypeError
   * (`ERR_INVALID_ARG_VALUE`: options or a source not understood).
   */
  static fromSource(source: string, options?: SourceOptions): Promise<Engine>
  /** The live bundle and its delivery. */
  bundleStatus(): BundleStatus
  /** Stops following the source given to `fromSource` (the engine keeps its bundle). */
  stopFollowing(): void
  /** Name, revision and digest of the bundle deciding now. */
  readonly bundle: BundleInfo
  /** Whether every bundle this engine loads must be signed by a trusted key. */
  readonly requiresSignature: boolean
  /**
   * Loads the bundle in `dir` and swaps it in atomically; returns the
   * replaced bundle's info; an engine with `trustedKeys` loads only a signed
   * bundle. Throws {@link BundleError} (the engine keeps its bundle).
   */
  reload(dir: string): BundleInfo
  /**
   * {@link Engine.reload} on a worker thread (the event loop does not wait
   * while the bundle compiles); rejects with {@link BundleError}.
   */
  reloadAsync(dir: string): Promise<BundleInfo>
  /** The engine's metrics in the Prometheus text exposition format. */
  metricsText(): string
  /** Logs every decision to a tamper-evident decision log in `dir`; throws {@link DecisionLogError}. */
  enableDecisionLog(dir: string, options?: DecisionLogOptions): void
  /**
   * Writes a final signed checkpoint and stops logging; `false` when no open
   * log was enabled. A mandatory log stays attached, closed: every later
   * decision is a `reject` with reason `decision-log`.
   */
  closeDecisionLog(): boolean
  /**
   * Decides a request (an object or JSON text) on the calling thread.
   * Throws {@link InvalidRequestError} for a request that breaks the contract.
   */
  decideSync(request: Request | string): Decision
  /** Decides a request on a worker thread. */
  decide(request: Request | string, options?: DecideOptions): Promise<Decision>
  /** Decides every request, in order, on the calling thread. */
  decideBatchSync(requests: ReadonlyArray<Request | string>): Decision[]
  /** Decides every request, in order, on one worker thread. */
  decideBatch(
    requests: ReadonlyArray<Request | string>,
    options?: DecideOptions,
  ): Promise<Decision[]>
}

/** Base class of every error agentriage throws; `code` says which kind. */
export declare class AgentriageError extends Error {
  readonly code:
    | 'AGENTRIAGE_INVALID_REQUEST'
    | 'AGENTRIAGE_BUNDLE'
    | 'AGENTRIAGE_INTERNAL'
    | 'AGENTRIAGE_DECISION_LOG'
    | 'AGENTRIAGE_BUNDLE_FETCH'
}

/** What is wrong with a request. */
export type RequestErrorKind =
  | 'syntax'
  | 'too_large'
  | 'too_deep'
  | 'missing'
  | 'type'
  | 'value'
  | 'unknown_field'

/** The request breaks the contract; `path` names the offending field. */
export declare class InvalidRequestError extends AgentriageError {
  readonly code: 'AGENTRIAGE_INVALID_REQUEST'
  /** What kind of problem this is. */
  readonly kind: RequestErrorKind
  /** JSON path of the offending field, e.g. `principal.credential.expires_at` (`$`: the whole request). */
  readonly path: string
  /** The problem, without the path. */
  readonly reason: string
  /** In a batch: the position of the offending request. */
  readonly index?: number
}

/** What is wrong with a bundle. */
export type BundleErrorKind = 'io' | 'manifest' | 'rego' | 'cedar' | 'validation' | 'data' | 'model' | 'signature' | 'limit'

/** The bundle could not be loaded; `file` and `line` say where. */
export declare class BundleError extends AgentriageError {
  readonly code: 'AGENTRIAGE_BUNDLE'
  /** What kind of problem this is. */
  readonly kind: BundleErrorKind
  /** The file at fault. */
  readonly file: string
  /** The 1-based line in `file`, or `null` where none is known. */
  readonly line: number | null
  /** The problem, without file and line. */
  readonly reason: string
}

/** Why a bundle source gave no bundle. */
export type BundleFetchErrorKind =
  | 'transport'
  | 'tls'
  | 'status'
  | 'too_large'
  | 'digest'
  | 'protocol'
  | 'startup_timeout'
  | 'cache'
  | 'other'

/** A bundle source gave no bundle (see {@link Engine.fromSource}). */
export declare class BundleFetchError extends AgentriageError {
  readonly code: 'AGENTRIAGE_BUNDLE_FETCH'
  /** Why. */
  readonly kind: BundleFetchErrorKind
  /** The problem, naming the source. */
  readonly reason: string
}

/** The engine failed internally (e.g. a Rust panic caught at the boundary). */
export declare class InternalError extends AgentriageError {
  readonly code: 'AGENTRIAGE_INTERNAL'
}

/** What policies see as `facts.intent`. */
export type IntentFact =
  | { status: 'absent' }
  | {
      status: 'verified'
      iss: string
      kid: string
      alg: 'EdDSA' | 'ES256'
      jti: string
      purpose: string
      scope: string[]
      iat: number
      exp: number
    }
  | { status: 'invalid'; error: string; message: string }

/** A public JWK bound to one issuer (`iss`). */
export interface IntentJwk {
  kty: 'OKP' | 'EC'
  crv: 'Ed25519' | 'P-256'
  x: string
  y?: string
  kid: string
  alg: 'EdDSA' | 'ES256'
  use: 'sig'
  iss: string
}

/** Approvals of escalated actions: the action digest, signing (docs/escalation.md). */
export declare const approval: {
  /** The `sha256:` digest of the request's action, as the engine computes it. */
  digest(request: object | string, options?: { contextFields?: string[] }): string
  /**
   * Signs an approval; returns the compact JWS for the request's `approval`
   * field. Either `request` (an escalated Decision, or its `approvalRequest`),
   * or `actionDigest`, `aud` and `reasons`. `iat` defaults to now.
   */
  sign(
    privateKeyPem: string,
    claims: {
      alg?: 'EdDSA' | 'ES256'
      kid: string
      iss: string
      request?: Decision | NonNullable<Decision['approvalRequest']>
      actionDigest?: string
      aud?: string
      reasons?: string[]
      iat?: Date | number
      lifetimeS?: number
      jti?: string
    },
  ): string
}

/** An identity a helper cannot turn into a principal. */
export declare class IdentityError extends Error {
  readonly code: 'AGENTRIAGE_INVALID_IDENTITY'
  /** `missing`, `type`, `value` or `certificate`. */
  readonly kind: string
  /** The claim or field that was wrong, e.g. `act.sub`. */
  readonly field: string
  /** What is wrong, without the field. */
  readonly reason: string
}

/** Identity helpers (docs/identity.md): each reads an identity the host already verified. */
export declare const identity: {
  readonly IdentityError: typeof IdentityError
  /** Verified JWT / OAuth claims (RFC 8693 `act` → the agent acting for `sub`). */
  fromTokenClaims(claims: object): Request['principal']
  /** A verified user-delegated token: the client (`client_id`/`azp`) acts for `sub`. */
  fromUserTokenClaims(claims: object): Request['principal']
  /** MCP `authInfo` (`clientId`, `scopes`, `expiresAt`, `extra.sub`). */
  fromMcpAuthInfo(authInfo: object): Request['principal']
  /** A verified X.509-SVID, PEM text or DER bytes. */
  fromX509Svid(certificate: string | Uint8Array): Request['principal']
}

/** Signed intents: generate keys, sign, verify (docs/intents.md). */
export declare const intent: {
  /** A new key: the PKCS#8 PEM private key and the public JWK. */
  keygen(options: { alg?: 'EdDSA' | 'ES256'; kid: string; iss: string }): {
    privateKeyPem: string
    publicJwk: IntentJwk
  }
  /** Signs an intent; returns the compact JWS. `iat` defaults to now, `jti` to a fresh UUID. */
  sign(
    privateKeyPem: string,
    claims: {
      alg?: 'EdDSA' | 'ES256'
      kid: string
      iss: string
      aud: string | string[]
      act: string
      res: string
      purpose: string
      iat?: Date | number
      lifetimeS?: number
      jti?: string
      nbf?: Date | number
      scope?: string[]
    },
  ): string
  /** Verifies a token (its `jti` is not recorded); returns the intent fact. */
  verify(
    token: string,
    options: {
      keys: string | { keys: object[] }
      audience: string
      principal: string
      action: string
      resource?: string | null
      time?: Date
      clockSkewS?: number
      maxLifetimeS?: number
    },
  ): Exclude<IntentFact, { status: 'absent' }>
}
/** Options of {@link Engine.enableDecisionLog}. */
export interface DecisionLogOptions {
  /** PKCS#8 Ed25519 private key (DER; a Buffer or Uint8Array) that signs checkpoints. */
  key?: Uint8Array
  /** Reject decisions that cannot be logged. */
  mandatory?: boolean
  /** Flush interval in milliseconds; 0 flushes after every record (default 10). */
  flushMs?: number
  /** Records that may wait for the writer before a decision waits (default 4096). */
  queueCapacity?: number
  /** A signed checkpoint after this many records (default 1000). */
  checkpointEvery?: number
  /** Segment size at which a new file starts (default 64 MiB). */
  maxSegmentBytes?: number
  /** Secret keying the hashes of redacted fields. */
  salt?: string
}

/** What is wrong with a decision log. */
export type DecisionLogErrorKind = 'io' | 'full' | 'config' | 'key' | 'corrupt' | 'closed'

/** The decision log could not be opened, written or verified. */
export declare class DecisionLogError extends AgentriageError {
  readonly code: 'AGENTRIAGE_DECISION_LOG'
  /** What kind of problem this is. */
  readonly kind: DecisionLogErrorKind
  /** The file at fault, or `null`. */
  readonly file: string | null
  /** The problem, without the file. */
  readonly reason: string
}

/** The first problem {@link verifyLog} found. */
export interface LogProblem {
  /** `modified`, `deleted`, `inserted`, `reordered`, `bad_signature`, `wrong_key`, `not_json`, `malformed`, `future_version`, `missing_file`, `truncated`, `duplicate_member`, `unsigned_tail` or `unsigned_segment`. */
  kind: string
  file: string
  line: number
  seq: number | null
  message: string
}

/** What {@link verifyLog} found. */
export interface LogReport {
  /**
   * No problem, no torn line, and every record covered by a checkpoint
   * signed with `options.key` (all but an accepted unsigned tail). Always
   * `false` without a key.
   */
  intact: boolean
  /** What the verification proves. */
  integrity: 'proven' | 'proven_except_tail' | 'unproven' | 'broken'
  /** `integrity` is `proven` or `proven_except_tail`. */
  proven: boolean
  /** No problem and no torn line: the chain links up (proves nothing without a key). */
  chainVerifies: boolean
  problem: LogProblem | null
  /** A last line cut short by a crash (not tampering). */
  torn: { file: string; line: number; bytes: number } | null
  files: number
  records: number
  decisions: number
  checkpoints: number
  keyChecked: boolean
  /** Records after the last verified checkpoint. */
  unsignedTail: number
  /** The first and last `seq` of those records, or `null`. */
  unsignedTailSeq: { first: number; last: number } | null
  closed: boolean
  lastHash: string | null
}

/**
 * Verifies decision log segment files, in order; `options.key` is the host's
 * public key (hex); `options.allowUnsignedTail` accepts records after the
 * last signed checkpoint (a log still being written).
 */
export declare function verifyLog(
  files: string[],
  options?: { key?: string; allowUnsignedTail?: boolean },
): LogReport

/** A new checkpoint signing key. */
export declare function generateSigningKey(): { privateKey: Uint8Array; publicKey: string }

/** Guards for the tools of an MCP TypeScript SDK server (also importable as `agentriage/mcp`). */
export declare const mcp: typeof import('./mcp')
