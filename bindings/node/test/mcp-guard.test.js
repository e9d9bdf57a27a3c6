'use strict'

// agentriage/mcp with the real MCP TypeScript SDK: an McpServer and a Client
// over the SDK's in-memory transport (no network).

const test = require('node:test')
const assert = require('node:assert/strict')
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js')
const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { InMemoryTransport } = require('@modelcontextprotocol/sdk/inMemory.js')
const { ElicitRequestSchema } = require('@modelcontextprotocol/sdk/types.js')
const { z } = require('zod')
const agentriage = require('..')
const { guardTool, elicitApproval, principalFromAuthInfo } = require('agentriage/mcp')
const { bundleDir } = require('./helpers')

const engine = agentriage.Engine.fromBundle(bundleDir)
const T = new Date('2026-11-24T10:30:00Z')
const minutes = (m) => new Date(T.getTime() + m * 60_000)
const router = () => ({
  id: 'spiffe://acme.example/ns/logistics/sa/router',
  type: 'agent',
  trust_zone: 'cloud',
  credential: { issuer: 'spiffe://acme.example/spire', expires_at: minutes(5) },
  attestation: { status: 'verified', kind: 'tpm', verified_at: minutes(-5) },
})
const SHIPMENTS = { 'SH-1001': 12_000, 'SH-1002': 240_000 }
const context = { workflow_id: 'wf-1', incident_mode: false, site: 'dc-1' }

async function setup({ answer, principal = () => router(), authInfo, approve = 'elicit' } = {}) {
  const server = new McpServer({ name: 'logistics', version: '1.0.0' })
  const performed = []
  const decisions = []
  const common = {
    principal,
    context,
    clock: () => T,
    onDecision: ({ decision }) => decisions.push(decision),
    ...(approve === 'elicit' ? { approve: elicitApproval(server) } : {}),
  }
  server.registerTool(
    'reroute_shipment',
    { inputSchema: { shipment_id: z.string(), route: z.string() } },
    guardTool(
      engine,
      {
        ...common,
        name: 'reroute_shipment',
        action: 'shipment.reroute',
        resource: ({ shipment_id }) => ({
          type: 'shipment',
          id: shipment_id,
          attributes: { value_usd: SHIPMENTS[shipment_id] ?? 0, state: 'in_transit' },
        }),
      },
      async ({ shipment_id, route }) => {
        performed.push(`${shipment_id} ${route}`)
        return { content: [{ type: 'text', text: `${shipment_id} now travels ${route}` }] }
      },
    ),
  )
  server.registerTool(
    'release_payment',
    { inputSchema: { invoice_id: z.string() } },
    guardTool(
      engine,
      {
        ...common,
        action: 'payment.release',
        resource: ({ invoice_id }) => ({ type: 'invoice', id: invoice_id, attributes: { amount_usd: 5_000 } }),
      },
      async ({ invoice_id }) => {
        performed.push(`pay ${invoice_id}`)
        return { content: [{ type: 'text', text: 'paid' }] }
      },
    ),
  )
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  if (authInfo !== undefined) {
    const send = clientSide.send.bind(clientSide)
    clientSide.send = (message, options) => send(message, { ...options, authInfo })
  }
  const client = new Client({ name: 'router-agent', version: '1.0.0' }, { capabilities: { elicitation: {} } })
  const asked = []
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params.message)
    if (answer === undefined) return { action: 'decline' }
    return { action: 'accept', content: { approved: answer } }
  })
  await Promise.all([server.connect(serverSide), client.connect(clientSide)])
  return { client, performed, decisions, asked }
}

const text = (result) => result.content.map((c) => c.text).join(' ')

test('execute runs the tool', async () => {
  const s = await setup({ answer: true })
  const result = await s.client.callTool({ name: 'reroute_shipment', arguments: { shipment_id: 'SH-1001', route: 'dc-4' } })
  assert.ok(!result.isError, text(result))
  assert.deepEqual(s.performed, ['SH-1001 dc-4'])
  assert.deepEqual(s.asked, [])
  assert.deepEqual(s.decisions.map((d) => d.outcome), ['execute'])
  await s.client.close()
})

test('reject is a tool error naming the policies', async () => {
  const s = await setup({ answer: true })
  const result = await s.client.callTool({ name: 'release_payment', arguments: { invoice_id: 'INV-88' } })
  assert.equal(result.isError, true)
  assert.match(text(result), /refused by policy.*R3\.role_not_permitted.*R14\.intent_missing/)
  assert.deepEqual(s.performed, [])
  await s.client.close()
})

for (const [answer, runs] of [
  [true, true],
  [false, false],
  [undefined, false],
]) {
  test(`escalate elicits the user's approval (answer ${answer})`, async () => {
    const s = await setup({ answer })
    const result = await s.client.callTool({ name: 'reroute_shipment', arguments: { shipment_id: 'SH-1002', route: 'dc-5' } })
    assert.equal(s.asked.length, 1)
    assert.match(s.asked[0], /R9\.value_threshold/)
    assert.equal(result.isError === true, !runs, text(result))
    assert.deepEqual(s.performed, runs ? ['SH-1002 dc-5'] : [])
    await s.client.close()
  })
}

test('escalate without an approver is refused', async () => {
  const s = await setup({ approve: 'none' })
  const result = await s.client.callTool({ name: 'reroute_shipment', arguments: { shipment_id: 'SH-1002', route: 'dc-5' } })
  assert.equal(result.isError, true)
  assert.match(text(result), /no one can be asked/)
  assert.deepEqual(s.performed, [])
  await s.client.close()
})

test('the caller comes from authInfo by default; without it the call is refused', async () => {
  const authInfo = { token: 't', clientId: 'router-client', scopes: ['shipments'], expiresAt: 1764611100, extra: { sub: 'svc-router' } }
  assert.deepEqual(principalFromAuthInfo({ authInfo }), {
    id: 'svc-router',
    attributes: { client_id: 'router-client', scopes: ['shipments'] },
    credential: { expires_at: new Date(1764611100 * 1000) },
  })
  assert.equal(principalFromAuthInfo({}), undefined)

  const seen = []
  const s = await setup({ answer: true, authInfo, principal: (extra) => (seen.push(extra.authInfo), principalFromAuthInfo(extra)) })
  await s.client.callTool({ name: 'reroute_shipment', arguments: { shipment_id: 'SH-1001', route: 'dc-4' } })
  assert.equal(seen[0].clientId, 'router-client')
  await s.client.close()

  const anonymous = await setup({ answer: true, principal: principalFromAuthInfo })
  const result = await anonymous.client.callTool({ name: 'reroute_shipment', arguments: { shipment_id: 'SH-1001', route: 'dc-4' } })
  assert.equal(result.isError, true)
  assert.match(text(result), /not decided, so not run: .*principal/)
  assert.deepEqual(anonymous.performed, [])
  await anonymous.client.close()
})

test('the guard is exported from the package too', () => {
  assert.equal(agentriage.mcp.guardTool, guardTool)
})
