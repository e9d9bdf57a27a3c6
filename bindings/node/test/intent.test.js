'use strict'

// Signed intents through Node: the shared vectors, `jose` interop both
// ways, and the replay check inside Engine#decideSync.

const test = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { Engine, intent } = require('..')
const { baseRequest, bundleDir, readJson } = require('./helpers')

const repo = join(__dirname, '..', '..', '..')
const vectors = readJson(join('intents', 'vectors.json'))
const keys = JSON.parse(readFileSync(join(repo, vectors.keys), 'utf8'))
const AUDIENCE = vectors.audience
const TIME = new Date(vectors.time)
const PAYMENTS = 'spiffe://acme.example/ns/finance/sa/payments'
const CUSTOMS = 'spiffe://acme.example/ns/compliance/sa/customs'
const privateKey = (name) => readFileSync(join(repo, 'testdata', 'intents', 'keys', `${name}.pem`), 'utf8')
const jwk = (kid) => keys.keys.find((k) => k.kid === kid)

function check(v) {
  return intent.verify(v.token, {
    keys,
    audience: AUDIENCE,
    principal: v.principal,
    action: v.action,
    resource: v.resource,
    time: TIME,
    clockSkewS: vectors.clock_skew_s,
    maxLifetimeS: vectors.max_lifetime_s,
  })
}

test('valid vectors verify', () => {
  for (const v of vectors.valid) assert.equal(check(v).status, 'verified', v.name)
})

test('every broken vector fails its check', () => {
  assert.ok(vectors.invalid.length >= 20)
  for (const v of vectors.invalid) {
    const fact = check(v)
    assert.equal(fact.status, 'invalid', v.name)
    assert.equal(fact.error, v.check, `${v.name}: ${fact.message}`)
  }
})

const unix = Math.floor(TIME.getTime() / 1000)

function paymentRequest(token) {
  const request = structuredClone(baseRequest('payment'))
  if (token !== undefined) request.intent = token
  return request
}

test('intents signed by jose verify in decide, once', async () => {
  const jose = await import('jose')
  for (const [alg, name, iss, act, res, kid] of [
    ['EdDSA', 'payments', PAYMENTS, 'payment.release', 'invoice:INV-88', 'payments-2026-11'],
    ['ES256', 'customs', CUSTOMS, 'customs.declare', 'declaration:CD-7', 'customs-2026-11'],
  ]) {
    const key = await jose.importPKCS8(privateKey(name), alg)
    const token = await new jose.SignJWT({ act, res, purpose: 'made by jose', scope: 'a b' })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setIssuer(iss)
      .setAudience(AUDIENCE)
      .setJti(`jose-${alg}`)
      .setIssuedAt(unix - 60)
      .setExpirationTime(unix + 540)
      .sign(key)
    const fact = intent.verify(token, { keys, audience: AUDIENCE, principal: iss, action: act, resource: res, time: TIME })
    assert.equal(fact.status, 'verified', JSON.stringify(fact))
    assert.deepEqual(fact.scope, ['a', 'b'])
    if (alg === 'EdDSA') {
      const engine = Engine.fromBundle(bundleDir)
      assert.equal(engine.decideSync(paymentRequest(token)).outcome, 'execute')
      const again = engine.decideSync(paymentRequest(token))
      assert.equal(again.outcome, 'reject')
      assert.deepEqual(again.policyIds, ['R14.intent_invalid'])
      assert.match(again.reasons[0].message, /`replay`/)
      const none = engine.decideSync(paymentRequest())
      assert.equal(none.outcome, 'escalate')
      assert.deepEqual(none.policyIds, ['R14.intent_missing'])
    }
  }
})

test('vectors signed here verify with jose', async () => {
  const jose = await import('jose')
  const set = jose.createLocalJWKSet(keys)
  for (const v of vectors.valid) {
    const { payload, protectedHeader } = await jose.jwtVerify(v.token, set, {
      audience: AUDIENCE,
      issuer: v.principal,
      algorithms: ['EdDSA', 'ES256'],
      currentDate: TIME,
    })
    assert.equal(payload.act, v.action, v.name)
    assert.ok(['EdDSA', 'ES256'].includes(protectedHeader.alg))
  }
})

test('keygen, sign and verify round-trip; jose agrees', async () => {
  const jose = await import('jose')
  for (const alg of ['EdDSA', 'ES256']) {
    const { privateKeyPem, publicJwk } = intent.keygen({ alg, kid: 'k1', iss: PAYMENTS })
    assert.equal(publicJwk.iss, PAYMENTS)
    assert.equal(publicJwk.d, undefined)
    const token = intent.sign(privateKeyPem, {
      alg,
      kid: 'k1',
      iss: PAYMENTS,
      aud: AUDIENCE,
      act: 'payment.release',
      res: 'invoice:INV-88',
      purpose: 'settle',
      iat: TIME,
      lifetimeS: 300,
    })
    const fact = intent.verify(token, {
      keys: { keys: [publicJwk] },
      audience: AUDIENCE,
      principal: PAYMENTS,
      action: 'payment.release',
      resource: 'invoice:INV-88',
      time: TIME,
    })
    assert.equal(fact.status, 'verified')
    assert.equal(fact.exp - fact.iat, 300)
    const { payload } = await jose.jwtVerify(token, await jose.importJWK(publicJwk, alg), {
      audience: AUDIENCE,
      currentDate: TIME,
    })
    assert.equal(payload.purpose, 'settle')
    // jose reads the private key too.
    await jose.importPKCS8(privateKeyPem, alg)
  }
})

test('bad keys and claims throw', () => {
  assert.throws(() => intent.keygen({ alg: 'RS256', kid: 'k', iss: PAYMENTS }), /not a supported algorithm/)
  assert.throws(
    () =>
      intent.sign(privateKey('payments'), {
        kid: 'k',
        iss: PAYMENTS,
        aud: AUDIENCE,
        act: 'a',
        res: 't:i',
        purpose: 'p',
        iat: TIME,
        lifetimeS: 0,
      }),
    /exp/,
  )
  assert.throws(
    () => intent.verify('a.b.c', { keys: { keys: [{ kty: 'RSA' }] }, audience: AUDIENCE, principal: PAYMENTS, action: 'a' }),
    /keys\[0\]\.kty/,
  )
  assert.throws(() => Engine.fromBundle(bundleDir, { replayCheck: 'no' }), TypeError)
})
