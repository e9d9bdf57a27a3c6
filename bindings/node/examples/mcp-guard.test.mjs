// The MCP example runs in the test suite, in-process, without network.

import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Engine } from 'agentriage'
import {
  REFERENCE_BUNDLE,
  connect,
  createLogisticsServer,
  demoApprover,
  routerAgent,
  sampleShipments,
} from './mcp-guard.mjs'

const engine = Engine.fromBundle(REFERENCE_BUNDLE)

async function setup({ answer = ({ decision }) => demoApprover(decision), agent = () => routerAgent() } = {}) {
  const shipments = sampleShipments()
  const asked = []
  const decisions = []
  const server = createLogisticsServer({
    engine,
    agent,
    shipments,
    approve: async (request) => {
      asked.push(request)
      return answer(request)
    },
    audit: ({ decision }) => decisions.push(decision),
  })
  const client = await connect(server)
  const call = (shipment_id, route = 'dc-1 → dc-9') =>
    client.callTool({ name: 'reroute_shipment', arguments: { shipment_id, route } })
  return { client, call, shipments, asked, decisions }
}

test('execute: the tool runs without asking anyone', async () => {
  const { client, call, shipments, asked, decisions } = await setup()
  const result = await call('SH-1001')
  assert.equal(result.isError, undefined)
  assert.equal(shipments.get('SH-1001').route, 'dc-1 → dc-9')
  assert.equal(asked.length, 0)
  assert.equal(decisions[0].outcome, 'execute')
  await client.close()
})

test('escalate: the call waits for a human, whose signed approval the engine accepts', async () => {
  const { client, call, shipments, asked, decisions } = await setup()
  const result = await call('SH-1002')
  assert.equal(decisions[0].outcome, 'escalate')
  assert.ok(decisions[0].policyIds.includes('R9.value_threshold'))
  assert.ok(decisions[0].approvalRequest.action_digest.startsWith('sha256:'))
  assert.equal(asked.length, 1)
  assert.equal(asked[0].args.shipment_id, 'SH-1002')
  assert.equal(decisions[1].outcome, 'execute')
  assert.equal(decisions[1].approval.status, 'used')
  assert.equal(result.isError, undefined)
  assert.equal(shipments.get('SH-1002').route, 'dc-1 → dc-9')
  await client.close()
})

test('escalate: an approval replayed for the same call is refused', async () => {
  let first
  const { client, call, shipments, decisions } = await setup({
    answer: ({ decision }) => (first ??= demoApprover(decision)),
  })
  assert.equal((await call('SH-1002')).isError, undefined)
  const again = await call('SH-1002', 'dc-1 → dc-7')
  assert.equal(again.isError, true)
  assert.match(again.content[0].text, /approval\.reused/)
  assert.equal(decisions.at(-1).outcome, 'reject')
  assert.equal(shipments.get('SH-1002').route, 'dc-1 → dc-9')
  await client.close()
})

test('escalate: "yes" without a signed approval does not run the tool', async () => {
  const { client, call, shipments } = await setup({ answer: () => 'yes' })
  const result = await call('SH-1002')
  assert.equal(result.isError, true)
  assert.match(result.content[0].text, /the approval was refused.*approval\.token/)
  assert.equal(shipments.get('SH-1002').route, 'dc-1 → dc-3')
  await client.close()
})

test('escalate: a human who denies stops the call', async () => {
  const { client, call, shipments } = await setup({ answer: () => null })
  const result = await call('SH-1002')
  assert.equal(result.isError, true)
  assert.match(result.content[0].text, /a human refused/)
  assert.equal(shipments.get('SH-1002').route, 'dc-1 → dc-3')
  await client.close()
})

test('reject: the call is refused and the tool never runs', async () => {
  const { client, call, shipments, asked } = await setup()
  const result = await call('SH-1003')
  assert.equal(result.isError, true)
  assert.match(result.content[0].text, /R8\.shipment_closed/)
  assert.equal(shipments.get('SH-1003').route, 'dc-2 → store-9')
  assert.equal(asked.length, 0)
  await client.close()
})

test('reject: an expired credential refuses even a harmless reroute', async () => {
  const stale = () => routerAgent(new Date(Date.now() - 60 * 60_000))
  const { client, call, shipments } = await setup({ agent: stale })
  const result = await call('SH-1001')
  assert.equal(result.isError, true)
  assert.match(result.content[0].text, /R4\.credential_expired/)
  assert.equal(shipments.get('SH-1001').route, 'dc-1 → dc-2')
  await client.close()
})

test('the example runs as a program', () => {
  const script = fileURLToPath(new URL('./mcp-guard.mjs', import.meta.url))
  const out = execFileSync(process.execPath, [script], { encoding: 'utf8' })
  assert.match(out, /✔ SH-1001 now travels/)
  assert.match(out, /waits for a human: .*R9\.value_threshold/)
  assert.match(out, /the operator signs an approval/)
  assert.match(out, /✔ SH-1002 now travels/)
  assert.match(out, /✘ refused by policy .*R8\.shipment_closed/)
})
