'use strict'

// agentriage for Node.js: the policy decision point AI agents embed.
//
// This file is the module's public API. The native addon (src/lib.rs) takes
// and returns JSON text; here requests are checked and serialized, decisions
// become `Decision` objects, and native errors become typed `Error`
// subclasses (all in `translate`).

const { resolve } = require('node:path')

const ERROR_PREFIX = 'agentriage:'

function loadNative() {
  const file = `./agentriage.${process.platform}-${process.arch}.node`
  try {
    return require(file)
  } catch (e) {
    const error = new Error(
      `the agentriage native addon ${file} could not be loaded (${e.message}); ` +
        'build it with `npm run build` in bindings/node',
    )
    error.code = 'AGENTRIAGE_ADDON_MISSING'
    error.cause = e
    throw error
  }
}

const native = loadNative()

/** Largest request accepted, in bytes of JSON text (1 MiB): the core's limit. */
const MAX_REQUEST_BYTES = native.MAX_REQUEST_BYTES
/** Deepest nesting of arrays and objects accepted in a request: the core's limit. */
const MAX_DEPTH = native.MAX_DEPTH

/** Base class of every error agentriage throws; `code` says which kind. */
class AgentriageError extends Error {
  constructor(message, code, options) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/**
 * The request breaks the contract. `kind` is `syntax`, `too_large`,
 * `too_deep`, `missing`, `type`, `value` or `unknown_field`; `path` is the
 * JSON path of the offending field (`$` for the request as a whole); in a
 * batch, `index` is the position of the offending request.
 */
class InvalidRequestError extends AgentriageError {
  constructor(kind, path, reason, index) {
    const where = index === undefined ? '' : `request ${index}: `
    super(`${where}invalid request at \`${path}\`: ${reason}`, 'AGENTRIAGE_INVALID_REQUEST')
    this.kind = kind
    this.path = path
    this.reason = reason
    if (index !== undefined) this.index = index
  }
}

/**
 * The bundle could not be loaded. `kind` is `io`, `manifest`, `rego`,
 * `cedar`, `validation`, `data`, `model` or `signature` (a signature required
 * by `trustedKeys` is missing or fails); `file` is the file at fault and
 * `line` its 1-based line, or `null` where none is known.
 */
class BundleError extends AgentriageError {
  constructor(kind, file, line, reason) {
    super(`${file}${line == null ? '' : `:${line}`}: ${reason}`, 'AGENTRIAGE_BUNDLE')
    this.kind = kind
    this.file = file
    this.line = line ?? null
    this.reason = reason
  }
}

/** The engine failed internally (e.g. a Rust panic, caught at the boundary). */
class InternalError extends AgentriageError {
  constructor(reason) {
    super(reason, 'AGENTRIAGE_INTERNAL')
  }
}

/**
 * The decision log could not be opened, written or verified. `kind` is
 * `io`, `full`, `config`, `key`, `corrupt` or `closed`; `file` is the file
 * at fault, or `null`.
 */
class DecisionLogError extends AgentriageError {
  constructor(kind, file, reason) {
    super(`${file == null ? '' : `${file}: `}decision log ${kind}: ${reason}`, 'AGENTRIAGE_DECISION_LOG')
    this.kind = kind
    this.file = file ?? null
    this.reason = reason
  }
}

/**
 * A bundle source gave no bundle: `kind` is `transport` (unreachable,
 * broken or timed out), `tls` (the server's certificate is not trusted, or
 * `caFile` holds no certificate), `status` (an unexpected HTTP status),
 * `too_large`, `digest`, `protocol`, `startup_timeout` (no bundle within
 * `startupTimeoutSeconds`; the message says the last failure) or `cache`.
 * A bundle that arrived but does not load is a BundleError instead.
 */
class BundleFetchError extends AgentriageError {
  constructor(kind, reason) {
    super(reason, 'AGENTRIAGE_BUNDLE_FETCH')
    this.kind = kind
    this.reason = reason
  }
}

/** A TypeError as Node's own APIs throw for a bad argument value. */
function invalidArgValue(message) {
  const e = new TypeError(message)
  e.code = 'ERR_INVALID_ARG_VALUE'
  return e
}

/** `options.trustedKeys` as PEM strings for the addon, or undefined. */
function trustedKeysOf(keys) {
  if (keys === undefined || keys === null) return undefined
  if (!Array.isArray(keys)) {
    throw invalidArgValue('options.trustedKeys must be an array of PEM public keys (strings or Buffers)')
  }
  if (keys.length === 0) {
    throw invalidArgValue('options.trustedKeys is empty: no bundle could ever load (omit it to load unsigned bundles)')
  }
  return keys.map((key, i) => {
    if (typeof key === 'string') return key
    if (Buffer.isBuffer(key) || key instanceof Uint8Array) return Buffer.from(key).toString('utf8')
    throw invalidArgValue(`options.trustedKeys[${i}] must be PEM text (a string or Buffer), not ${typeof key}`)
  })
}

/** Turns an error thrown by the addon into the typed error it describes. */
function translate(error) {
  const message = error?.message
  if (typeof message !== 'string' || !message.startsWith(ERROR_PREFIX)) return error
  let f
  try {
    f = JSON.parse(message.slice(ERROR_PREFIX.length))
  } catch {
    return new InternalError(message)
  }
  switch (f.code) {
    case 'AGENTRIAGE_INVALID_REQUEST':
      return new InvalidRequestError(f.kind, f.path, f.message, f.index)
    case 'AGENTRIAGE_BUNDLE':
      return new BundleError(f.kind, f.file, f.line, f.message)
    case 'AGENTRIAGE_DECISION_LOG':
      return new DecisionLogError(f.kind, f.file, f.message)
    case 'AGENTRIAGE_BUNDLE_FETCH':
      return new BundleFetchError(f.kind, f.message)
    default:
      return new InternalError(f.message)
  }
}

// One frozen bundle object per digest, shared by the decisions it made.
const bundles = new Map()

function bundleOf(info) {
  let bundle = bundles.get(info.digest)
  if (bundle === undefined) {
    if (bundles.size >= 64) bundles.clear()
    bundle = Object.freeze({ name: info.name, revision: info.revision, digest: info.digest })
    bundles.set(info.digest, bundle)
  }
  return bundle
}

/** The answer to a request. */
class Decision {
  constructor(d, bundle) {
    /** `'execute'`, `'reject'` or `'escalate'`. */
    this.outcome = d.outcome
    /** Every policy that fired: `{ engine, policy, message, effect }`. */
    this.reasons = d.reasons
    /** What the host must do along with the outcome: `{ id, engine, policy, params? }`. */
    this.obligations = d.obligations
    /** The request's trace id, or a new one. */
    this.traceId = d.traceId
    /** A new, time-ordered id for this decision (UUID v7). */
    this.decisionId = d.decisionId
    /** Which bundle decided: `{ name, revision, digest }` (after a reload, the new one). */
    this.bundle = d.bundle === undefined ? bundle : bundleOf(d.bundle)
    /** Time spent deciding inside the engine, in microseconds. */
    this.durationUs = d.durationUs
    /**
     * For an `escalate` an approval can settle: `{ action_digest, reasons: [{ policy, roles }],
     * audience, expires_at }`; else `null`.
     */
    this.approvalRequest = d.approvalRequest ?? null
    /** The approval the request carried: `{ status, approver?, jti?, settled?, refused? }`; else `null`. */
    this.approval = d.approval ?? null
  }

  /** Whether the action may run automatically. */
  get isExecute() {
    return this.outcome === 'execute'
  }

  /** The policy ids of all reasons, in order. */
  get policyIds() {
    return this.reasons.map((r) => r.policy)
  }

  /**
   * The decision in the public JSON contract's shape, with snake_case keys
   * as the CLI and the Python module write it: `JSON.stringify(decision)`
   * gives `{"outcome":…,"reasons":[…],"obligations":[…],"trace_id":…,
   * "decision_id":…,"bundle":{…},"duration_us":…}`.
   */
  toJSON() {
    return {
      outcome: this.outcome,
      reasons: this.reasons.map((r) => ({ engine: r.engine, policy: r.policy, message: r.message, effect: r.effect })),
      obligations: this.obligations.map((o) => {
        const out = { id: o.id, engine: o.engine, policy: o.policy }
        if (o.params !== undefined && Object.keys(o.params).length > 0) out.params = o.params
        return out
      }),
      trace_id: this.traceId,
      decision_id: this.decisionId,
      bundle: { name: this.bundle.name, revision: this.bundle.revision, digest: this.bundle.digest },
      duration_us: this.durationUs,
      ...(this.approvalRequest === null ? {} : { approval_request: this.approvalRequest }),
      ...(this.approval === null ? {} : { approval: this.approval }),
    }
  }
}

function toDecisions(text, bundle) {
  const list = JSON.parse(text)
  for (let i = 0; i < list.length; i++) list[i] = new Decision(list[i], bundle)
  return list
}

function pathOf(keys) {
  let path = ''
  for (const key of keys) {
    if (typeof key === 'number') path += `[${key}]`
    else path += path === '' ? key : `.${key}`
  }
  return path === '' ? '$' : path
}

function tooLarge(units) {
  return new InvalidRequestError(
    'too_large',
    '$',
    `request is at least ${units} bytes, more than the limit of ${MAX_REQUEST_BYTES}`,
  )
}

/** The name of a value's class, for an error message. */
function className(value) {
  const tag = Object.prototype.toString.call(value).slice(8, -1)
  const name = value?.constructor?.name
  return typeof name === 'string' && name !== '' ? name : tag
}

const TYPED_ARRAY = Object.getPrototypeOf(Uint8Array)

/** What is wrong with a value no JSON form carries faithfully, or null. */
function unsupported(value) {
  if (value instanceof Set || value instanceof WeakSet) return 'a Set has no JSON form; pass an array ([...set])'
  if (value instanceof WeakMap) return 'a WeakMap has no JSON form'
  if (value instanceof ArrayBuffer || value instanceof TYPED_ARRAY || value instanceof DataView) {
    return `binary data (\`${className(value)}\`) has no JSON form; pass a string (e.g. buf.toString('utf8') or 'base64') or an array of numbers`
  }
  if (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer) {
    return 'a SharedArrayBuffer has no JSON form'
  }
  if (value instanceof String || value instanceof Number || value instanceof Boolean) {
    return `a boxed primitive (\`${className(value)}\`) has no JSON form; pass the primitive (value.valueOf())`
  }
  if (value instanceof Promise) return 'a Promise has no JSON form; await it first'
  return null
}

/**
 * Writes `request` as JSON text in one pass, refusing what JSON cannot carry
 * faithfully instead of letting JSON.stringify turn it into `{}`, `null` or
 * nothing: a Map with a non-string key, a Set, binary data, a BigInt, a
 * function or symbol, a non-finite number, an invalid Date, a hole or
 * `undefined` in an array, a lone surrogate, a class instance. Each value is
 * read once (a getter cannot show the check one value and the text another).
 * Stops with the errors JSON text gets as soon as the text passes
 * MAX_REQUEST_BYTES (counted in UTF-16 code units, never more than its UTF-8
 * bytes; the core counts the bytes) or nests deeper than MAX_DEPTH (which also
 * stops circular objects).
 */
class Writer {
  constructor() {
    this.out = ''
    this.keys = []
  }

  fail(kind, message) {
    return new InvalidRequestError(kind, pathOf(this.keys), message)
  }

  /** Fails before writing `units` more code units that would pass the limit. */
  room(units) {
    const total = this.out.length + units
    if (total > MAX_REQUEST_BYTES) throw tooLarge(total)
  }

  push(text) {
    this.room(text.length)
    this.out += text
  }

  string(s) {
    this.room(s.length + 2)
    if (!s.isWellFormed()) {
      throw this.fail('value', 'string is not valid Unicode (it holds a lone surrogate)')
    }
    this.push(JSON.stringify(s))
  }

  enter(depth) {
    if (depth >= MAX_DEPTH) {
      throw this.fail('too_deep', `request nests deeper than ${MAX_DEPTH} levels (is it circular?)`)
    }
  }

  /** Writes one member of an object; `undefined` members are left out, as missing. */
  member(key, value, first, depth) {
    if (value === undefined) return first
    this.keys.push(key)
    if (!first) this.push(',')
    this.string(key)
    this.push(':')
    this.value(value, depth)
    this.keys.pop()
    return false
  }

  value(value, depth) {
    switch (typeof value) {
      case 'string':
        return this.string(value)
      case 'boolean':
        return this.push(value ? 'true' : 'false')
      case 'number':
        if (!Number.isFinite(value)) throw this.fail('value', `${value} is not a finite number`)
        return this.push(JSON.stringify(value))
      case 'bigint':
        throw this.fail('type', 'a BigInt has no JSON form; pass a number (Number(value)) or a string')
      case 'undefined':
        throw this.fail('type', 'undefined has no JSON form in an array; use null or leave the element out')
      case 'function':
      case 'symbol':
        throw this.fail('type', `a ${typeof value} has no JSON form`)
      default:
        if (value === null) return this.push('null')
        return this.object(value, depth)
    }
  }

  object(value, depth) {
    const proto = Object.getPrototypeOf(value)
    if (proto === Object.prototype || proto === null) {
      this.enter(depth)
      return this.plain(value, depth + 1)
    }
    if (proto === Array.prototype && Array.isArray(value)) {
      this.enter(depth)
      return this.array(value, depth + 1)
    }
    if (value instanceof Date) {
      const time = value.getTime()
      if (Number.isNaN(time)) throw this.fail('value', 'an invalid Date names no instant')
      return this.string(value.toISOString())
    }
    this.enter(depth)
    if (value instanceof Map) return this.map(value, depth + 1)
    if (Array.isArray(value)) {
      throw this.fail(
        'type',
        `an instance of \`${className(value)}\` (an Array subclass) has no JSON form; pass a plain array`,
      )
    }
    const problem = unsupported(value)
    if (problem !== null) throw this.fail('type', problem)
    if (typeof value.toJSON === 'function') {
      // A class that defines its JSON form: what toJSON returns, by these rules.
      return this.value(value.toJSON(pathOf(this.keys)), depth + 1)
    }
    throw this.fail(
      'type',
      `an instance of \`${className(value)}\` has no JSON form; pass a plain object, an array, a Map, a Date or a primitive`,
    )
  }

  plain(value, depth) {
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw this.fail('type', 'an object with symbol keys has no JSON form; symbol-keyed data would be lost')
    }
    const keys = Object.keys(value)
    // Smallest form: `{"":0,...}`, 4 units a member and a comma between two.
    this.room(keys.length * 5 + 1)
    this.out += '{'
    let first = true
    for (let i = 0; i < keys.length; i++) first = this.member(keys[i], value[keys[i]], first, depth)
    this.push('}')
  }

  array(value, depth) {
    const n = value.length
    // Smallest form: `[0,0,...]`.
    this.room(2 * n + 1)
    if (Object.keys(value).length !== n) {
      throw this.fail(
        'type',
        'an array with holes or extra properties has no JSON form; holes would become null and properties be lost',
      )
    }
    this.push('[')
    for (let i = 0; i < n; i++) {
      if (i > 0) this.push(',')
      this.keys.push(i)
      this.value(value[i], depth)
      this.keys.pop()
    }
    this.push(']')
  }

  /** A Map with string keys is an object with the same members in the same order. */
  map(value, depth) {
    this.room(value.size * 5 + 1)
    this.push('{')
    let first = true
    for (const [key, item] of value) {
      if (typeof key !== 'string') {
        const shown = typeof key === 'symbol' ? key.toString() : typeof key === 'bigint' ? `${key}n` : String(key)
        throw this.fail('type', `a Map key must be a string; found ${typeof key} \`${shown}\``)
      }
      first = this.member(key, item, first, depth)
    }
    this.push('}')
  }
}

/**
 * A request as JSON text: a string is taken as JSON text; an object is
 * converted by Writer. Throws InvalidRequestError for anything else.
 */
function toJson(request) {
  if (typeof request === 'string') {
    // UTF-8 never takes fewer bytes than UTF-16 code units: longer is too large.
    if (request.length > MAX_REQUEST_BYTES) throw tooLarge(request.length)
    return request
  }
  if (typeof request !== 'object' || request === null) {
    const what = request === null ? 'null' : typeof request
    throw new InvalidRequestError('type', '$', `a request must be an object or JSON text, not ${what}`)
  }
  const writer = new Writer()
  writer.value(request, 0)
  return writer.out
}

function toJsonList(requests) {
  if (!Array.isArray(requests)) {
    throw new TypeError('requests must be an array')
  }
  const texts = new Array(requests.length)
  for (let i = 0; i < requests.length; i++) {
    try {
      texts[i] = toJson(requests[i])
    } catch (e) {
      if (e instanceof InvalidRequestError) throw new InvalidRequestError(e.kind, e.path, e.reason, i)
      throw e
    }
  }
  return texts
}

function abortError(signal) {
  if (signal.reason !== undefined) return signal.reason
  const e = new Error('the decision was aborted')
  e.name = 'AbortError'
  e.code = 'ABORT_ERR'
  return e
}

/**
 * Runs `start(nativeSignal)` (a native Promise) and settles with its result,
 * or rejects as soon as `signal` aborts. A native computation not yet started
 * is cancelled; one already running finishes and its result is dropped.
 *
 * The addon gets a signal of our own, never the caller's: napi-rs installs
 * its handler as the signal's `onabort` property, which would replace the
 * caller's own `onabort`.
 */
function withSignal(signal, start, convert) {
  if (signal == null) {
    return start(undefined).then(convert, (e) => {
      throw translate(e)
    })
  }
  if (signal.aborted) return Promise.reject(abortError(signal))
  return new Promise((resolvePromise, rejectPromise) => {
    const inner = new AbortController()
    const onAbort = () => {
      inner.abort()
      rejectPromise(abortError(signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    start(inner.signal).then(
      (text) => {
        signal.removeEventListener('abort', onAbort)
        try {
          resolvePromise(convert(text))
        } catch (e) {
          rejectPromise(e)
        }
      },
      (e) => {
        signal.removeEventListener('abort', onAbort)
        rejectPromise(signal.aborted ? abortError(signal) : translate(e))
      },
    )
  })
}

/**
 * Where an engine's bundle came from and how its delivery goes
 * (`engine.bundleStatus()`). Times are Unix seconds, or `null`.
 * `JSON.stringify(status)` gives the snake_case keys the CLI and the Python
 * module use (`last_success_unix`, …).
 */
class BundleStatus {
  constructor(s) {
    /** Name of the live bundle. */
    this.name = s.name
    /** Revision of the live bundle. */
    this.revision = s.revision
    /** Digest of the live bundle (the digest every decision carries). */
    this.digest = s.digest
    /** Where the live bundle came from: a path, a URL, an `oci://` reference, or `'host'`. */
    this.source = s.source
    /** When a fetch or load last succeeded (a `304 Not Modified` counts), or `null`. */
    this.lastSuccessUnix = s.last_success_unix ?? null
    /** When a fetch or load last failed, or `null`. */
    this.lastFailureUnix = s.last_failure_unix ?? null
    /** Why it failed then, or `null`. */
    this.lastError = s.last_error ?? null
    /** Failed fetches and loads so far (the live bundle stayed each time). */
    this.failures = s.failures
    /** Bundles swapped in by the source so far. */
    this.updates = s.updates
    Object.freeze(this)
  }

  /** The status with snake_case keys. */
  toJSON() {
    return {
      name: this.name,
      revision: this.revision,
      digest: this.digest,
      source: this.source,
      last_success_unix: this.lastSuccessUnix,
      last_failure_unix: this.lastFailureUnix,
      last_error: this.lastError,
      failures: this.failures,
      updates: this.updates,
    }
  }
}

/** Options of `Engine.fromSource` and their checks: the JSON the addon takes. */
function sourceOptionsOf(options) {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
  const o = {}
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue
    switch (name) {
      case 'trustedKeys':
        break
      case 'intervalSeconds':
      case 'timeoutSeconds':
      case 'startupTimeoutSeconds':
        if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
          throw invalidArgValue(`options.${name} must be a positive number of seconds`)
        }
        o[name] = value
        break
      case 'maxBytes':
        if (!Number.isSafeInteger(value) || value <= 0) {
          throw invalidArgValue('options.maxBytes must be a positive integer')
        }
        o.maxBytes = value
        break
      case 'startFromCache':
        if (typeof value !== 'boolean') throw new TypeError('options.startFromCache must be a boolean')
        o.startFromCache = value
        break
      case 'bearerToken':
        if (typeof value !== 'string') throw new TypeError('options.bearerToken must be a string')
        o.bearerToken = value
        break
      case 'cache':
      case 'caFile':
        if (typeof value !== 'string') throw new TypeError(`options.${name} must be a path (string)`)
        o[name] = resolve(value)
        break
      default:
        throw new TypeError(`unknown fromSource option \`${name}\``)
    }
  }
  return JSON.stringify(o)
}

const CONSTRUCT = Symbol('agentriage.Engine')

/**
 * Decides requests against one policy bundle. Load one with
 * `Engine.fromBundle(dir)` and share it: deciding never blocks another call.
 */
class Engine {
  #native
  #bundle

  /** @private use Engine.fromBundle */
  constructor(token, handle) {
    if (token !== CONSTRUCT) throw new TypeError('use Engine.fromBundle(dir) to create an Engine')
    this.#native = handle
    this.#bundle = Object.freeze({ ...handle.bundleInfo })
  }

  /**
   * Loads and compiles the bundle in directory `dir`; throws BundleError.
   *
   * `options.trustedKeys` (Ed25519 public keys, PEM text as strings or
   * Buffers) makes the engine require a signed bundle, now and on every
   * `reload`: an unsigned or altered bundle throws BundleError with `kind`
   * `signature`. A key that does not parse throws a TypeError with code
   * `ERR_INVALID_ARG_VALUE`.
   *
   * `options.replayCheck: false` turns off everything the engine remembers
   * between decisions (intents' replay check, approvals' one-time use, quota
   * counting): only for test suites that decide a request many times.
   *
   * `options.state` names where used intents and approvals and quota
   * counters are kept: `'memory'` (default, this process only),
   * `'memory:CAPACITY'`, or `'redis://[user:password@]host:port/db'` (query
   * options `namespace`, `timeout_ms`, `pool`) to share them with every
   * engine and process using that Redis. A URL that does not parse throws a
   * TypeError with code `ERR_INVALID_ARG_VALUE`; while the store cannot
   * answer, decisions that need it fail closed.
   */
  static fromBundle(dir, options = {}) {
    if (typeof dir !== 'string') throw new TypeError('the bundle directory must be a string')
    const replayCheck = options.replayCheck ?? true
    if (typeof replayCheck !== 'boolean') throw new TypeError('options.replayCheck must be a boolean')
    const trustedKeys = trustedKeysOf(options.trustedKeys)
    const state = options.state ?? undefined
    if (state !== undefined && typeof state !== 'string') throw new TypeError('options.state must be a string such as \'memory\' or \'redis://host:port/0\'')
    let handle
    try {
      handle = native.NativeEngine.load(resolve(dir), replayCheck, trustedKeys, state)
    } catch (e) {
      if (e?.code === 'InvalidArg') throw invalidArgValue(e.message)
      throw translate(e)
    }
    return new Engine(CONSTRUCT, handle)
  }

  /**
   * Loads the bundle at `source` and keeps following it; the Promise of an
   * Engine. `source` is an `http://` or `https://` URL of a bundle archive,
   * an `oci://HOST/REPOSITORY:TAG` (or `@sha256:…`) reference, or a
   * directory or archive path (watched). Updates load off the event loop
   * and swap in atomically; a broken or unsigned update is refused and the
   * live bundle stays (see `bundleStatus()`).
   *
   * Options: `trustedKeys` (as for `fromBundle`: every bundle, the first and
   * the local copy included, must be signed), `intervalSeconds` (between
   * polls, default 30), `timeoutSeconds` (per request, default 30),
   * `maxBytes` (largest archive, default 64 MiB), `bearerToken`, `cache` (a
   * file keeping the last good bundle and its ETag), `startFromCache`
   * (start from `cache` when it loads; a restart then costs a `304`),
   * `startupTimeoutSeconds` (wait for the first bundle, default 60),
   * `caFile` (PEM: trust only these certificate authorities for `https://`
   * instead of the Mozilla roots).
   *
   * Rejects with BundleError when the bundle arrived but does not load,
   * BundleFetchError when none arrived (`kind` says why), a TypeError
   * (code `ERR_INVALID_ARG_VALUE`) for options or a source not understood.
   */
  static async fromSource(source, options = {}) {
    if (typeof source !== 'string') throw new TypeError('the bundle source must be a string')
    const json = sourceOptionsOf(options)
    const trustedKeys = trustedKeysOf(options.trustedKeys)
    const where = source.includes('://') ? source : resolve(source)
    let handle
    try {
      handle = await native.NativeEngine.fromSource(where, json, trustedKeys)
    } catch (e) {
      if (e?.code === 'InvalidArg') throw invalidArgValue(e.message)
      throw translate(e)
    }
    return new Engine(CONSTRUCT, handle)
  }

  /**
   * The live bundle and its delivery: a frozen BundleStatus (`name`,
   * `revision`, `digest`, `source`, `lastSuccessUnix`, `lastFailureUnix`,
   * `lastError`, `failures`, `updates`).
   */
  bundleStatus() {
    return new BundleStatus(JSON.parse(this.#native.bundleStatusJson()))
  }

  /**
   * Stops following the source given to `fromSource` (the engine keeps its
   * bundle; a fetch under way may still finish). Nothing for other engines.
   */
  stopFollowing() {
    this.#native.stopFollowing()
  }

  /** Whether every bundle this engine loads must be signed by a trusted key. */
  get requiresSignature() {
    return this.#native.requiresSignature
  }

  /** Name, revision and digest of the bundle deciding now: `{ name, revision, digest }`. */
  get bundle() {
    return bundleOf(this.#native.bundleInfo)
  }

  /**
   * Loads the bundle in `dir` and swaps it in atomically; returns the
   * replaced bundle's info. Decisions under way finish with the old bundle.
   * An engine made with `trustedKeys` loads only a bundle one of them signed.
   * Throws BundleError (the engine then keeps its bundle).
   */
  reload(dir) {
    if (typeof dir !== 'string') throw new TypeError('the bundle directory must be a string')
    try {
      return bundleOf(this.#native.reload(resolve(dir)))
    } catch (e) {
      throw translate(e)
    }
  }

  /**
   * `reload` on a worker thread, so the event loop does not wait while the
   * bundle loads and compiles: a promise of the replaced bundle's info,
   * rejected with BundleError (the engine then keeps its bundle).
   */
  async reloadAsync(dir) {
    if (typeof dir !== 'string') throw new TypeError('the bundle directory must be a string')
    try {
      return bundleOf(await this.#native.reloadAsync(resolve(dir)))
    } catch (e) {
      throw translate(e)
    }
  }

  /** The engine's metrics in the Prometheus text exposition format. */
  metricsText() {
    return this.#native.metricsText()
  }

  /**
   * Logs every decision to a tamper-evident decision log in `dir` (see
   * docs/audit.md). Options: `key` (a PKCS#8 Ed25519 private key, Buffer,
   * that signs checkpoints), `mandatory` (reject decisions that cannot be
   * logged), `flushMs` (0: after every record; default 10),
   * `queueCapacity`, `checkpointEvery`, `maxSegmentBytes`, `salt` (string
   * keying the hashes of redacted fields). Throws DecisionLogError.
   */
  enableDecisionLog(dir, options = {}) {
    if (typeof dir !== 'string') throw new TypeError('the log directory must be a string')
    const o = {}
    for (const [name, value] of Object.entries(options)) {
      switch (name) {
        case 'key':
          if (!(value instanceof Uint8Array)) {
            throw new TypeError('`key` must be a Buffer or Uint8Array (PKCS#8 DER)')
          }
          o.keyPkcs8Hex = Buffer.from(value).toString('hex')
          break
        case 'mandatory':
          if (typeof value !== 'boolean') throw new TypeError('`mandatory` must be a boolean')
          o.mandatory = value
          break
        case 'salt':
          if (typeof value !== 'string') throw new TypeError('`salt` must be a string')
          o.salt = value
          break
        case 'flushMs':
        case 'queueCapacity':
        case 'checkpointEvery':
        case 'maxSegmentBytes':
          if (!Number.isSafeInteger(value) || value < 0) {
            throw new TypeError(`\`${name}\` must be a non-negative integer`)
          }
          o[name] = value
          break
        default:
          throw new TypeError(`unknown decision log option \`${name}\``)
      }
    }
    try {
      this.#native.enableDecisionLog(resolve(dir), JSON.stringify(o))
    } catch (e) {
      throw translate(e)
    }
  }

  /** Writes a final signed checkpoint and stops logging; false when no log was enabled. */
  closeDecisionLog() {
    try {
      return this.#native.closeDecisionLog()
    } catch (e) {
      throw translate(e)
    }
  }

  /** Decides `request` (an object or JSON text) on the calling thread. */
  decideSync(request) {
    const text = toJson(request)
    let out
    try {
      out = this.#native.decideJson(text)
    } catch (e) {
      throw translate(e)
    }
    return new Decision(JSON.parse(out), this.#bundle)
  }

  /**
   * Decides `request` on a worker thread; the Promise of a Decision.
   * `options.signal` (an AbortSignal) abandons the wait.
   */
  decide(request, options) {
    let text
    try {
      text = toJson(request)
    } catch (e) {
      return Promise.reject(e)
    }
    const handle = this.#native
    const bundle = this.#bundle
    return withSignal(
      options?.signal,
      (signal) => handle.decideJsonAsync(text, signal),
      (out) => new Decision(JSON.parse(out), bundle),
    )
  }

  /**
   * Decides every request, in order, on the calling thread. Throws the first
   * InvalidRequestError, with `index` naming the request.
   */
  decideBatchSync(requests) {
    const texts = toJsonList(requests)
    let out
    try {
      out = this.#native.decideBatchJson(texts)
    } catch (e) {
      throw translate(e)
    }
    return toDecisions(out, this.#bundle)
  }

  /**
   * Decides every request, in order, on one worker thread; the Promise of
   * an array of Decisions. Rejects with the first InvalidRequestError, with
   * `index` naming the request.
   */
  decideBatch(requests, options) {
    let texts
    try {
      texts = toJsonList(requests)
    } catch (e) {
      return Promise.reject(e)
    }
    const handle = this.#native
    const bundle = this.#bundle
    return withSignal(
      options?.signal,
      (signal) => handle.decideBatchJsonAsync(texts, signal),
      (out) => toDecisions(out, bundle),
    )
  }
}

/** Seconds since the epoch of a Date, a number of seconds, or now. */
function unixSeconds(t, name) {
  if (t === undefined || t === null) return Math.floor(Date.now() / 1000)
  if (t instanceof Date) return Math.floor(t.getTime() / 1000)
  if (typeof t === 'number' && Number.isFinite(t)) return Math.floor(t)
  throw new TypeError(`${name} must be a Date or a number of seconds`)
}

/**
 * Approvals of escalated actions (see docs/escalation.md): the digest of a
 * request's action, and signing. An `escalate` decision an approval can
 * settle carries `approvalRequest`; the host decides again with the token in
 * the request's `approval` field.
 */
const approval = Object.freeze({
  /** The `sha256:` digest of the request's action, as the engine computes it. */
  digest(request, { contextFields = [] } = {}) {
    return native.approvalDigest(typeof request === 'string' ? request : JSON.stringify(request), contextFields)
  },

  /**
   * Signs an approval; returns the compact JWS. Either `request` (an escalated
   * Decision, or its `approvalRequest`) or `actionDigest`, `aud` and `reasons`.
   */
  sign(privateKeyPem, { alg = 'EdDSA', kid, iss, request, actionDigest, aud, reasons, iat, lifetimeS = 900, jti }) {
    let decisionId
    let requestExp
    if (request !== undefined && request !== null) {
      const ask = request instanceof Decision ? request.approvalRequest : (request.approvalRequest ?? request)
      if (!ask || typeof ask.action_digest !== 'string') {
        throw new TypeError('the decision carries no approvalRequest: it cannot be approved')
      }
      if (request instanceof Decision) decisionId = request.decisionId
      actionDigest = ask.action_digest
      aud = ask.audience
      reasons = ask.reasons.map((r) => r.policy)
      requestExp = Math.floor(new Date(ask.expires_at).getTime() / 1000)
    }
    if (typeof actionDigest !== 'string' || typeof aud !== 'string' || !Array.isArray(reasons) || reasons.length === 0) {
      throw new TypeError('give request, or actionDigest, aud and reasons')
    }
    return native.approvalSign(
      JSON.stringify({
        privateKeyPem,
        alg,
        kid,
        iss,
        aud,
        actionDigest,
        reasons,
        iat: unixSeconds(iat, 'iat'),
        lifetimeS,
        jti,
        decisionId,
        requestExp,
      }),
    )
  },
})

/**
 * Signed intents: generate keys, sign, verify (see docs/intents.md). The
 * engine verifies a request's `intent` itself, replay check included;
 * `intent.verify` runs the same checks without recording the `jti`.
 */
const intent = Object.freeze({
  /** A new key: `{ privateKeyPem, publicJwk }` (alg `EdDSA` or `ES256`). */
  keygen({ alg = 'EdDSA', kid, iss }) {
    const key = native.intentKeygen(alg, kid, iss)
    return { privateKeyPem: key.privateKeyPem, publicJwk: JSON.parse(key.publicJwk) }
  },

  /** Signs an intent; returns the compact JWS. Throws on an unusable key or claim. */
  sign(privateKeyPem, { alg = 'EdDSA', kid, iss, aud, act, res, purpose, iat, lifetimeS = 300, jti, nbf, scope = [] }) {
    return native.intentSign(
      JSON.stringify({
        privateKeyPem,
        alg,
        kid,
        iss,
        aud: Array.isArray(aud) ? aud : [aud],
        act,
        res,
        purpose,
        iat: unixSeconds(iat, 'iat'),
        lifetimeS,
        jti,
        nbf: nbf === undefined ? undefined : unixSeconds(nbf, 'nbf'),
        scope,
      }),
    )
  },

  /**
   * Verifies `token` for a request by `principal` for `action` on `resource`
   * (`type:id`) at `time` (a Date; default now). Returns the intent fact:
   * `{ status: 'verified', iss, purpose, … }` or `{ status: 'invalid', error, message }`.
   */
  verify(token, { keys, audience, principal, action, resource = null, time, clockSkewS = 60, maxLifetimeS = 900 }) {
    let timeMs
    if (time instanceof Date) timeMs = time.getTime()
    else if (time !== undefined && time !== null) throw new TypeError('time must be a Date')
    const fact = native.intentVerify(
      token,
      JSON.stringify({
        keys: typeof keys === 'string' ? keys : JSON.stringify(keys),
        audience,
        principal,
        action,
        resource,
        timeMs,
        clockSkewS,
        maxLifetimeS,
      }),
    )
    return JSON.parse(fact)
  },
})
/**
 * Verifies decision log segment files, in order. `options.key` is the
 * host's public key (64 hex digits); `options.allowUnsignedTail` accepts
 * records after the last signed checkpoint (a log still being written).
 * Returns the report: `{ intact, integrity, proven, chainVerifies,
 * problem: { kind, file, line, seq, message } | null, torn, files, records,
 * decisions, checkpoints, keyChecked, unsignedTail, unsignedTailSeq, closed,
 * lastHash }`. `intact` is true only when every record is covered by a
 * checkpoint signed with the key: never without a key (`integrity` is then
 * `'unproven'`).
 */
function verifyLog(files, options = {}) {
  if (!Array.isArray(files) || !files.every((f) => typeof f === 'string')) {
    throw new TypeError('`files` must be an array of paths')
  }
  const key = options.key
  if (key !== undefined && typeof key !== 'string') throw new TypeError('`key` must be a hex string')
  const allowUnsignedTail = options.allowUnsignedTail
  if (allowUnsignedTail !== undefined && typeof allowUnsignedTail !== 'boolean') {
    throw new TypeError('`allowUnsignedTail` must be a boolean')
  }
  try {
    return JSON.parse(
      native.verifyLogJson(
        files.map((f) => resolve(f)),
        key ?? null,
        allowUnsignedTail ?? false,
      ),
    )
  } catch (e) {
    throw translate(e)
  }
}

/** A new checkpoint signing key: `{ privateKey: Buffer (PKCS#8 DER, a Uint8Array), publicKey: hex }`. */
function generateSigningKey() {
  let k
  try {
    k = JSON.parse(native.generateSigningKeyJson())
  } catch (e) {
    throw translate(e)
  }
  return { privateKey: Buffer.from(k.pkcs8Hex, 'hex'), publicKey: k.publicKey }
}

/** Identity helpers: a `principal` from verified tokens, MCP authInfo, X.509-SVIDs. */
const identity = require('./identity.js').makeIdentity(native)

module.exports = {
  Engine,
  approval,
  mcp: require('./mcp.js'),
  identity,
  intent,
  Decision,
  BundleStatus,
  AgentriageError,
  InvalidRequestError,
  BundleError,
  InternalError,
  DecisionLogError,
  BundleFetchError,
  IdentityError: identity.IdentityError,
  verifyLog,
  generateSigningKey,
  MAX_REQUEST_BYTES,
  MAX_DEPTH,
}

// Test hooks exist only in an addon built with `--features test-hooks`.
if (typeof native.__panicForTest === 'function') {
  Object.defineProperty(module.exports, '__testHooks', {
    enumerable: false,
    value: {
      panic: (message) => {
        try {
          return native.__panicForTest(message)
        } catch (e) {
          throw translate(e)
        }
      },
      panicAsync: (message) =>
        native.__panicForTestAsync(message).catch((e) => {
          throw translate(e)
        }),
    },
  })
}
