'use strict'

// Identity helpers through Node: the shared cases (same answers as Rust and
// Python), typed errors, and a subject deciding in the reference pack.

const test = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { Engine, identity } = require('..')
const { bundleDir } = require('./helpers')

const dir = join(__dirname, '..', '..', '..', 'testdata', 'identity')
const { cases } = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'))

function run(c) {
  switch (c.source) {
    case 'token':
      return identity.fromTokenClaims(c.input)
    case 'user_token':
      return identity.fromUserTokenClaims(c.input)
    case 'mcp':
      return identity.fromMcpAuthInfo(c.input)
    case 'svid': {
      const file = join(dir, c.input)
      return identity.fromX509Svid(c.input.endsWith('.pem') ? readFileSync(file, 'utf8') : readFileSync(file))
    }
    default:
      throw new Error(`unknown source ${c.source}`)
  }
}

for (const c of cases) {
  test(`shared case: ${c.name}`, () => {
    if (c.principal) {
      assert.deepEqual(run(c), c.principal)
    } else {
      assert.throws(
        () => run(c),
        (e) =>
          e instanceof identity.IdentityError &&
          e.code === 'AGENTRIAGE_INVALID_IDENTITY' &&
          e.kind === c.error.kind &&
          e.field === c.error.field &&
          e.message.startsWith(`invalid identity at \`${c.error.field}\`: `),
      )
    }
  })
}

test('non-objects are refused with a typed error', () => {
  for (const bad of [null, 'sub', ['sub'], 3]) {
    assert.throws(() => identity.fromTokenClaims(bad), identity.IdentityError)
  }
  assert.throws(() => identity.fromX509Svid(42), identity.IdentityError)
})

test('MCP authInfo with a URL resource and the token never copied', () => {
  const p = identity.fromMcpAuthInfo({
    token: 'secret-bearer-token',
    clientId: 'spiffe://acme.example/ns/logistics/sa/router',
    scopes: ['shipments:read'],
    resource: new URL('https://mcp.acme.example/'),
  })
  assert.equal(p.id, 'spiffe://acme.example/ns/logistics/sa/router')
  assert.ok(!JSON.stringify(p).includes('secret-bearer-token'))
})

test('the subject decides in the reference pack', () => {
  const engine = Engine.fromBundle(bundleDir)
  const agent = 'spiffe://acme.example/ns/finance/sa/payments'
  const readFor = (claims) =>
    engine.decideSync({
      time: '2026-11-21T14:05:00Z',
      principal: identity.fromTokenClaims(claims),
      action: { name: 'invoice.read' },
      resource: { type: 'invoice', id: 'INV-88' },
    })
  assert.equal(readFor({ sub: 'alice@acme.example', scope: 'invoices:read', act: { sub: agent } }).outcome, 'execute')
  const refused = readFor({ sub: 'mallory@acme.example', scope: 'shipments:read', act: { sub: agent } })
  assert.equal(refused.outcome, 'reject')
  assert.deepEqual(
    refused.reasons.map((r) => r.policy),
    ['R15.subject_not_permitted'],
  )
})
