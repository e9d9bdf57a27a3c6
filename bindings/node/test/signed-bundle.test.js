'use strict'

// Signed bundles from Node: Engine.fromBundle(dir, { trustedKeys }).
//
// The bundles here are signed by a signer written in bundle-signing.js from
// the format in docs/bundle.md (DSSE envelope, node:crypto's Ed25519), not by the
// engine: a bundle a third-party pipeline signs loads, and one altered after
// signing does not.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Engine, BundleError } = require('..')
const { bundleDir, decisionCases } = require('./helpers')
const { bundleFiles, digest, publisher, sign } = require('./bundle-signing')

function signedCopy(key) {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agentriage-node-')), 'pack')
  fs.cpSync(bundleDir, dir, { recursive: true })
  sign(dir, key)
  return dir
}

function signatureError(fn) {
  let caught
  assert.throws(fn, (e) => {
    caught = e
    return e instanceof BundleError && e.kind === 'signature'
  })
  return caught
}

const request = decisionCases()[0].request

test('a signed bundle loads with its key, as a string or a Buffer', () => {
  const key = publisher()
  const dir = signedCopy(key)
  for (const trustedKeys of [[key.pem], [Buffer.from(key.pem)], [publisher().pem, key.pem]]) {
    const engine = Engine.fromBundle(dir, { trustedKeys })
    assert.equal(engine.requiresSignature, true)
    // The signature file is hidden: it does not change the bundle's digest.
    assert.equal(engine.bundle.digest, Engine.fromBundle(bundleDir).bundle.digest)
    assert.equal(engine.bundle.digest, digest(bundleFiles(dir)))
    assert.ok(['execute', 'reject', 'escalate'].includes(engine.decideSync(request).outcome))
  }
})

test('an unsigned bundle, or one signed by another key, is refused', () => {
  const key = publisher()
  const unsigned = signatureError(() => Engine.fromBundle(bundleDir, { trustedKeys: [key.pem] }))
  assert.match(unsigned.message, /not signed/)
  assert.ok(unsigned.file.endsWith('.signature.json'))
  const dir = signedCopy(publisher())
  assert.match(
    signatureError(() => Engine.fromBundle(dir, { trustedKeys: [key.pem] })).message,
    /no signature by a trusted key/,
  )
})

test('a file changed, added or removed after signing is named', () => {
  const key = publisher()
  const cases = [
    ['data/pack.json', (dir) => fs.writeFileSync(path.join(dir, 'data', 'pack.json'), '{}'), /changed/],
    ['rego/extra.rego', (dir) => fs.writeFileSync(path.join(dir, 'rego', 'extra.rego'), 'package x\n'), /added/],
    ['tests/r01.yaml', (dir) => fs.rmSync(path.join(dir, 'tests', 'r01.yaml')), /removed/],
  ]
  for (const [file, change, says] of cases) {
    const dir = signedCopy(key)
    change(dir)
    const e = signatureError(() => Engine.fromBundle(dir, { trustedKeys: [key.pem] }))
    assert.ok(e.file.split(path.sep).join('/').endsWith(file), e.message)
    assert.match(e.message, says)
  }
})

test('reload keeps the live bundle when the new one is not signed by a trusted key', () => {
  const key = publisher()
  const dir = signedCopy(key)
  const engine = Engine.fromBundle(dir, { trustedKeys: [key.pem] })
  const live = engine.bundle
  const before = engine.decideSync(request).outcome

  const manifest = path.join(dir, 'bundle.toml')
  fs.writeFileSync(manifest, fs.readFileSync(manifest, 'utf8').replace('2026.11.0', '2026.11.1'))
  assert.match(signatureError(() => engine.reload(dir)).message, /changed/)
  assert.deepEqual(engine.bundle, live)
  const after = engine.decideSync(request)
  assert.equal(after.outcome, before)
  assert.equal(after.bundle.revision, '2026.11.0')
  assert.match(engine.metricsText(), /^agentriage_reload_failures_total 1$/m)

  sign(dir, publisher(), '2026.11.1')
  signatureError(() => engine.reload(dir))
  assert.equal(engine.bundle.revision, '2026.11.0')

  sign(dir, key, '2026.11.1')
  assert.deepEqual(engine.reload(dir), live)
  assert.equal(engine.bundle.revision, '2026.11.1')
  assert.match(engine.metricsText(), /^agentriage_reload_failures_total 2$/m)
})

test('an engine without trusted keys loads unsigned bundles', () => {
  const engine = Engine.fromBundle(bundleDir)
  assert.equal(engine.requiresSignature, false)
  engine.reload(bundleDir)
})

test('bad trusted keys are refused with the index at fault', () => {
  const key = publisher()
  const dir = signedCopy(key)
  const invalid = (trustedKeys, pattern) =>
    assert.throws(
      () => Engine.fromBundle(dir, { trustedKeys }),
      (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_VALUE' && pattern.test(e.message),
    )
  invalid([key.pem, 'not a key'], /trustedKeys\[1\]/)
  invalid([], /empty/)
  invalid(key.pem, /array/)
  invalid([42], /trustedKeys\[0\].*number/)
  const privatePem = key.privateKey.export({ format: 'pem', type: 'pkcs8' })
  invalid([privatePem], /trustedKeys\[0\]/)
})
