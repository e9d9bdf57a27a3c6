'use strict'

// Bundle delivery from Node: Engine.fromSource, bundleStatus, stopFollowing,
// against real servers started here on 127.0.0.1 (node:http, node:https
// with the test certificates of testdata/tls). The archives and signatures
// are written by test/bundle-signing.js, not by the engine.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const https = require('node:https')
const os = require('node:os')
const path = require('node:path')
const { Engine, BundleError, BundleFetchError, BundleStatus } = require('..')
const { bundleDir, decisionCases } = require('./helpers')
const { bundleFiles, digest, publisher, sign, archive } = require('./bundle-signing')

const tlsDir = path.join(__dirname, '..', '..', '..', 'testdata', 'tls')
const request = decisionCases()[0].request

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'agentriage-delivery-'))
}

/** A copy of the reference pack in `dir` with revision `revision`, signed by `key` when given. */
function pack(dir, revision, key) {
  fs.cpSync(bundleDir, dir, { recursive: true })
  const manifest = path.join(dir, 'bundle.toml')
  const text = fs.readFileSync(manifest, 'utf8')
  const changed = text.replace('revision = "2026.11.0"', `revision = "${revision}"`)
  assert.notEqual(changed, text)
  fs.writeFileSync(manifest, changed)
  if (key) sign(dir, key, revision)
  return dir
}

/** The archive of a pack with `revision`, and the bundle digest of its files. */
function bundle(revision, key) {
  const dir = pack(path.join(tmpdir(), 'pack'), revision, key)
  return { body: archive(dir), digest: digest(bundleFiles(dir)), dir }
}

/** Waits until `done()` holds: a generous watchdog against hangs, not a speed check. */
async function eventually(what, done) {
  const deadline = Date.now() + 20000
  while (!(await done())) {
    if (Date.now() > deadline) assert.fail(`never: ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/**
 * Serves one archive with an ETag on 127.0.0.1 (a free port), over TLS when
 * `cert` names a certificate of testdata/tls; counts full answers and 304s.
 */
async function serve(body, cert) {
  const state = { body, etag: '"1"', version: 1, status: 200, full: 0, notModified: 0, requests: 0 }
  const handler = (req, res) => {
    state.requests++
    if (state.status !== 200) {
      res.writeHead(state.status, { 'content-length': 0 })
      res.end()
      return
    }
    if (req.headers['if-none-match'] === state.etag) {
      state.notModified++
      res.writeHead(304, { etag: state.etag })
      res.end()
      return
    }
    state.full++
    res.writeHead(200, {
      'content-type': 'application/gzip',
      'content-length': state.body.length,
      etag: state.etag,
    })
    res.end(state.body)
  }
  const server = cert
    ? https.createServer(
        {
          cert: fs.readFileSync(path.join(tlsDir, `${cert}.pem`)),
          key: fs.readFileSync(path.join(tlsDir, `${cert}.key`)),
        },
        handler,
      )
    : http.createServer(handler)
  server.keepAliveTimeout = 100
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address()
  return {
    url: `${cert ? 'https' : 'http'}://127.0.0.1:${port}/bundle.tar.gz`,
    state,
    publish(next) {
      state.body = next
      state.version++
      state.etag = `"${state.version}"`
    },
    close() {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

test('an HTTP source loads, polls with ETag, swaps in signed updates and refuses the rest', async (t) => {
  const key = publisher()
  const first = bundle('n-1', key)
  const server = await serve(first.body)
  t.after(() => server.close())
  const engine = await Engine.fromSource(server.url, { trustedKeys: [key.pem], intervalSeconds: 0.03 })
  t.after(() => engine.stopFollowing())
  assert.equal(engine.requiresSignature, true)

  const st = engine.bundleStatus()
  assert.ok(st instanceof BundleStatus)
  assert.ok(Object.isFrozen(st))
  assert.equal(st.name, 'a2a-supply-chain')
  assert.equal(st.revision, 'n-1')
  assert.equal(st.digest, first.digest)
  assert.equal(st.source, server.url)
  assert.equal(typeof st.lastSuccessUnix, 'number')
  assert.ok(Math.abs(st.lastSuccessUnix - Date.now() / 1000) < 600)
  assert.equal(st.lastFailureUnix, null)
  assert.equal(st.lastError, null)
  assert.equal(st.failures, 0)
  assert.equal(st.updates, 0)
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(st))), [
    'name',
    'revision',
    'digest',
    'source',
    'last_success_unix',
    'last_failure_unix',
    'last_error',
    'failures',
    'updates',
  ])
  assert.equal((await engine.decide(request)).bundle.digest, first.digest)

  // Unchanged: 304s only.
  await eventually('304s', () => server.state.notModified >= 3)
  assert.equal(server.state.full, 1)

  // A signed update swaps in; decisions carry its digest.
  const second = bundle('n-2', key)
  server.publish(second.body)
  await eventually('n-2 live', () => engine.bundle.revision === 'n-2')
  assert.equal(engine.decideSync(request).bundle.digest, second.digest)
  assert.equal(engine.bundleStatus().updates, 1)

  // Tampered after signing: refused, the live bundle stays.
  const tampered = bundle('n-3', key)
  fs.appendFileSync(path.join(tampered.dir, 'bundle.toml'), '\n# changed after signing\n')
  server.publish(archive(tampered.dir))
  await eventually('tampered refused', () => engine.bundleStatus().failures >= 1)
  let now = engine.bundleStatus()
  assert.equal(now.revision, 'n-2')
  assert.equal(now.digest, second.digest)
  assert.match(now.lastError, /changed/)
  assert.equal(typeof now.lastFailureUnix, 'number')
  assert.equal(engine.decideSync(request).bundle.digest, second.digest)

  // Unsigned: refused too.
  const failures = now.failures
  server.publish(bundle('n-4').body)
  await eventually('unsigned refused', () => engine.bundleStatus().failures > failures)
  now = engine.bundleStatus()
  assert.equal(now.revision, 'n-2')
  assert.match(now.lastError, /not signed/)

  // The server fails: recorded, the live bundle stays.
  server.state.status = 500
  const before = now.failures
  await eventually('500 recorded', () => engine.bundleStatus().failures > before)
  assert.match(engine.bundleStatus().lastError, /HTTP 500/)
  assert.equal(engine.bundle.revision, 'n-2')
  assert.match(engine.metricsText(), /agentriage_bundle_fetch_failures_total [1-9]/)

  // Recovers, then stops following: no more requests.
  server.state.status = 200
  const third = bundle('n-5', key)
  server.publish(third.body)
  await eventually('n-5 live', () => engine.bundle.revision === 'n-5')
  engine.stopFollowing()
  // At most a poll already under way completes after the stop.
  const asked = server.state.requests
  await new Promise((r) => setTimeout(r, 300))
  assert.ok(server.state.requests <= asked + 1, `${asked} then ${server.state.requests}`)
  assert.equal(engine.bundle.revision, 'n-5')
})

test('a local copy and its ETag survive a restart: a 304 instead of a download', async (t) => {
  const key = publisher()
  const server = await serve(bundle('c-1', key).body)
  t.after(() => server.close())
  const cache = path.join(tmpdir(), 'kept', 'last.tar.gz')
  const options = { trustedKeys: [key.pem], intervalSeconds: 0.03, cache, startFromCache: true }

  const one = await Engine.fromSource(server.url, options)
  await eventually('a 304', () => server.state.notModified >= 1)
  one.stopFollowing()
  assert.equal(server.state.full, 1)
  assert.ok(fs.existsSync(cache))
  const kept = JSON.parse(fs.readFileSync(`${cache}.etag.json`, 'utf8'))
  assert.equal(kept.url, server.url)
  assert.equal(kept.etag, server.state.etag)

  const before = server.state.notModified
  const two = await Engine.fromSource(server.url, options)
  t.after(() => two.stopFollowing())
  assert.equal(two.bundle.revision, 'c-1')
  await eventually('a 304 after the restart', () => server.state.notModified > before)
  assert.equal(server.state.full, 1, 'the restart downloaded the bundle again')
  await eventually('source confirmed', () => two.bundleStatus().source === server.url)
})

test('HTTPS trusts the caFile authority only, and fails closed otherwise', async (t) => {
  const key = publisher()
  const first = bundle('s-1', key)
  const server = await serve(first.body, 'server')
  const wrong = await serve(first.body, 'wrong-name')
  t.after(() => Promise.all([server.close(), wrong.close()]))
  const caFile = path.join(tlsDir, 'ca.pem')

  const engine = await Engine.fromSource(server.url, { trustedKeys: [key.pem], caFile, intervalSeconds: 0.03 })
  t.after(() => engine.stopFollowing())
  assert.equal(engine.bundleStatus().digest, first.digest)
  server.publish(bundle('s-2', key).body)
  await eventually('s-2 live over TLS', () => engine.bundle.revision === 's-2')

  const fetchError = (kind, says) => (e) => {
    assert.ok(e instanceof BundleFetchError, String(e))
    assert.equal(e.code, 'AGENTRIAGE_BUNDLE_FETCH')
    assert.equal(e.kind, kind)
    assert.match(e.message, says)
    return true
  }
  // The Mozilla roots do not know the test authority.
  await assert.rejects(
    Engine.fromSource(server.url, { startupTimeoutSeconds: 0.3 }),
    fetchError('startup_timeout', /UnknownIssuer/),
  )
  // A certificate for another name, though its authority is trusted.
  await assert.rejects(
    Engine.fromSource(wrong.url, { caFile, startupTimeoutSeconds: 0.3 }),
    fetchError('startup_timeout', /not valid for name/),
  )
  // A caFile that holds no certificate.
  await assert.rejects(
    Engine.fromSource(server.url, { caFile: path.join(tlsDir, 'make.sh') }),
    fetchError('tls', /no PEM/),
  )
  await assert.rejects(Engine.fromSource(server.url, { caFile: path.join(tlsDir, 'missing.pem') }), {
    code: 'ERR_INVALID_ARG_VALUE',
  })
})

test('a watched directory follows signed changes and refuses unsigned ones', async (t) => {
  const key = publisher()
  const dir = pack(path.join(tmpdir(), 'watched'), 'w-1', key)
  const engine = await Engine.fromSource(dir, { trustedKeys: [key.pem], intervalSeconds: 0.02 })
  t.after(() => engine.stopFollowing())
  let st = engine.bundleStatus()
  assert.equal(st.revision, 'w-1')
  assert.equal(st.source, dir)
  assert.equal(st.digest, digest(bundleFiles(dir)))

  // A signed change: rewritten and re-signed.
  const manifest = path.join(dir, 'bundle.toml')
  const text = fs.readFileSync(manifest, 'utf8').replace('revision = "w-1"', 'revision = "w-2"')
  fs.writeFileSync(manifest, text)
  sign(dir, key, 'w-2')
  await eventually('w-2 live', () => engine.bundle.revision === 'w-2')
  assert.equal(engine.bundleStatus().updates, 1)
  assert.equal(engine.decideSync(request).bundle.revision, 'w-2')

  // An unsigned change: refused, the live bundle stays.
  fs.writeFileSync(manifest, text.replace('revision = "w-2"', 'revision = "w-3"'))
  await eventually('unsigned change refused', () => engine.bundleStatus().failures >= 1)
  st = engine.bundleStatus()
  assert.equal(st.revision, 'w-2')
  assert.equal(engine.decideSync(request).bundle.revision, 'w-2')
  assert.match(st.lastError, /signature|changed/)
})

test('fromSource refuses what it cannot follow with typed errors', async () => {
  const invalid = { code: 'ERR_INVALID_ARG_VALUE' }
  await assert.rejects(Engine.fromSource('ftp://example/b.tar.gz'), invalid)
  await assert.rejects(Engine.fromSource(bundleDir, { intervalSeconds: -1 }), invalid)
  await assert.rejects(Engine.fromSource(bundleDir, { trustedKeys: [] }), invalid)
  await assert.rejects(Engine.fromSource(bundleDir, { pollEvery: 1 }), TypeError)
  await assert.rejects(Engine.fromSource(42), TypeError)
  // A directory that is not signed, with trusted keys: BundleError at once.
  await assert.rejects(Engine.fromSource(bundleDir, { trustedKeys: [publisher().pem] }), (e) => {
    assert.ok(e instanceof BundleError, String(e))
    assert.equal(e.kind, 'signature')
    return true
  })
  await assert.rejects(Engine.fromSource(path.join(tmpdir(), 'missing')), BundleError)
  // Nothing listens: no engine, once the start-up time is over.
  const server = await serve(Buffer.alloc(0))
  const url = server.url
  await server.close()
  await assert.rejects(
    Engine.fromSource(url, { startupTimeoutSeconds: 0.3, timeoutSeconds: 0.2 }),
    (e) => e instanceof BundleFetchError && e.kind === 'startup_timeout',
  )
  // An engine from fromBundle has nothing to stop and reports the host as its source.
  const plain = Engine.fromBundle(bundleDir)
  plain.stopFollowing()
  assert.equal(plain.bundleStatus().source, 'host')
})
