'use strict'

// The shared state store through Node: two engines and two processes
// sharing a real redis-server refuse a replayed intent; bad `state` URLs
// are TypeErrors.

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { spawn, spawnSync, execFileSync } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { Engine, intent } = require('..')
const { baseRequest, bundleDir } = require('./helpers')

const repo = join(__dirname, '..', '..', '..')
const AUDIENCE = 'spiffe://acme.example/ns/platform/sa/agentriage'
const PAYMENTS = 'spiffe://acme.example/ns/finance/sa/payments'
const TIME = new Date('2026-11-21T14:05:00Z')
const pem = readFileSync(join(repo, 'testdata', 'intents', 'keys', 'payments.pem'), 'utf8')

function request(jti) {
  const token = intent.sign(pem, {
    kid: 'payments-2026-11',
    iss: PAYMENTS,
    aud: AUDIENCE,
    act: 'payment.release',
    res: 'invoice:INV-88',
    purpose: 'settle invoice INV-88',
    iat: new Date(TIME.getTime() - 60_000),
    lifetimeS: 600,
    jti,
  })
  return { ...structuredClone(baseRequest('payment')), intent: token }
}

function redisServer() {
  const bin = process.env.AGENTRIAGE_REDIS_SERVER || 'redis-server'
  const found = spawnSync(bin, ['--version'], { stdio: 'ignore' })
  if (found.status === 0) return bin
  const why = `\`${bin}\` not found: install the Debian package redis-server`
  if (process.env.AGENTRIAGE_REQUIRE_SERVERS === '1') throw new Error(`${why} (AGENTRIAGE_REQUIRE_SERVERS=1)`)
  return { skip: why }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function answers(port) {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1' })
    let got = ''
    c.setTimeout(500, () => { c.destroy(); resolve(false) })
    c.on('error', () => resolve(false))
    c.on('connect', () => c.write('PING\r\n'))
    c.on('data', (d) => {
      got += d
      if (got.includes('\r\n')) { c.destroy(); resolve(got === '+PONG\r\n') }
    })
  })
}

/** Starts redis-server on a free port and waits until it answers PING. */
async function startRedis(t) {
  const bin = redisServer()
  if (bin.skip) { t.skip(bin.skip); return null }
  const port = await freePort()
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.after(() => child.kill('SIGKILL'))
  const deadline = Date.now() + 20_000 // a watchdog: it answers in milliseconds
  while (!(await answers(port))) {
    assert.equal(child.exitCode, null, 'redis-server exited')
    assert.ok(Date.now() < deadline, 'redis-server never answered')
    await new Promise((r) => setTimeout(r, 5))
  }
  return `redis://127.0.0.1:${port}/0`
}

test('two engines sharing redis refuse a replayed intent', async (t) => {
  const url = await startRedis(t)
  if (!url) return
  const state = `${url}?namespace=node-engines:`
  const a = Engine.fromBundle(bundleDir, { state })
  const b = Engine.fromBundle(bundleDir, { state })
  const r = request('node-shared-1')
  assert.equal(a.decideSync(r).outcome, 'execute')
  const again = b.decideSync(r)
  assert.equal(again.outcome, 'reject')
  assert.match(again.reasons[0].message, /`replay`/)
  assert.equal(Engine.fromBundle(bundleDir, { state: 'memory' }).decideSync(r).outcome, 'execute')
})

test('another process refuses the intent this one used', async (t) => {
  const url = await startRedis(t)
  if (!url) return
  const state = `${url}?namespace=node-procs:`
  const r = request('node-proc-1')
  assert.equal(Engine.fromBundle(bundleDir, { state }).decideSync(r).outcome, 'execute')
  const script =
    "const { Engine } = require(process.argv[1]);" +
    "const e = Engine.fromBundle(process.argv[2], { state: process.argv[3] });" +
    "const d = e.decideSync(JSON.parse(require('node:fs').readFileSync(0, 'utf8')));" +
    "process.stdout.write(d.outcome + ' ' + (d.reasons[0]?.message ?? ''))"
  const out = execFileSync(process.execPath, ['-e', script, join(__dirname, '..'), bundleDir, state], {
    input: JSON.stringify(r),
    encoding: 'utf8',
  })
  assert.match(out, /^reject .*`replay`/)
})

test('an unreachable redis fails closed', async () => {
  const port = await freePort()
  const e = Engine.fromBundle(bundleDir, { state: `redis://127.0.0.1:${port}/0?timeout_ms=100` })
  const d = e.decideSync(request('node-down-1'))
  assert.equal(d.outcome, 'reject')
  assert.match(d.reasons[0].message, /`replay_store`/)
})

test('bad state URLs are TypeErrors', () => {
  for (const [state, want] of [['memory:0', /`0`/], ['redis://h:1?bogus=1', /`bogus`/], ['rediss://h:1', /TLS/]]) {
    assert.throws(() => Engine.fromBundle(bundleDir, { state }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_VALUE' && want.test(e.message))
  }
  assert.throws(() => Engine.fromBundle(bundleDir, { state: 42 }), TypeError)
})
