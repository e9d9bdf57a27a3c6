// Guarding an MCP server's tools with agentriage.
//
// A logistics MCP server (@modelcontextprotocol/sdk) exposes the tool
// `reroute_shipment` to AI agents. Before the tool runs, its handler asks the
// engine — in-process, off the main thread — whether the calling agent may
// act now:
//   execute   the tool runs;
//   reject    the call is refused, with the policies that refused it;
//   escalate  the call pauses until a human answers: with a signed approval
//             of this exact action (docs/escalation.md), which the engine
//             checks in a second decision — the tool runs only if that one
//             executes — or with nothing, and the call is refused.
//
// Run it:  node examples/mcp-guard.mjs
// (client and server talk over the SDK's in-memory transport: no network).

import { pathToFileURL, fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { z } from 'zod'
import { readFileSync } from 'node:fs'
import { Engine, approval } from 'agentriage'

const here = dirname(fileURLToPath(import.meta.url))
export const REFERENCE_BUNDLE = join(here, '..', '..', '..', 'policies', 'a2a-supply-chain')

/** The shipments this server manages (a database in a real deployment). */
export function sampleShipments() {
  return new Map([
    ['SH-1001', { value_usd: 12_000, state: 'in_transit', route: 'dc-1 → dc-2' }],
    ['SH-1002', { value_usd: 240_000, state: 'in_transit', route: 'dc-1 → dc-3' }],
    ['SH-1003', { value_usd: 8_000, state: 'delivered', route: 'dc-2 → store-9' }],
  ])
}

/**
 * The agent on the other end of the connection, as the transport
 * authenticated it (mTLS with a SPIFFE SVID, say): identity, credential
 * lifetime, runtime attestation.
 */
export function routerAgent(now = new Date()) {
  const minutes = (m) => new Date(now.getTime() + m * 60_000).toISOString()
  return {
    id: 'spiffe://acme.example/ns/logistics/sa/router',
    type: 'agent',
    trust_zone: 'cloud',
    credential: { issuer: 'spiffe://acme.example/spire', expires_at: minutes(5) },
    attestation: { status: 'verified', kind: 'tpm', verified_at: minutes(-5) },
  }
}

function text(message, isError = false) {
  return { content: [{ type: 'text', text: message }], ...(isError ? { isError: true } : {}) }
}

/**
 * A logistics MCP server whose tools are guarded by `engine`.
 *
 * - `agent()` returns the calling agent's principal (see routerAgent);
 * - `approve({ tool, args, decision })` asks a human and resolves to a
 *   signed approval (compact JWS, see `approval.sign`) or null (refuse); the
 *   tool call waits for it, and the engine judges the approval;
 * - `audit(entry)` receives every decision (a log, a SIEM, …).
 */
export function createLogisticsServer({ engine, agent, approve, audit = () => {}, shipments = sampleShipments() }) {
  const server = new McpServer({ name: 'logistics', version: '1.0.0' })

  /** Wraps a tool handler: decide first, then run, refuse or pause. */
  const guarded = (tool, toRequest, run) => async (args, extra) => {
    const request = {
      time: new Date().toISOString(),
      principal: agent(),
      ...toRequest(args),
    }
    // `extra.signal` aborts when the client cancels the call.
    const decision = await engine.decide(request, { signal: extra.signal })
    audit({ tool, args, decision })
    const why = decision.reasons.map((r) => `${r.policy}: ${r.message}`).join('; ')
    switch (decision.outcome) {
      case 'execute':
        return run(args)
      case 'reject':
        return text(`refused by policy (decision ${decision.decisionId}): ${why}`, true)
      case 'escalate': {
        const token = await approve({ tool, args, decision })
        if (typeof token !== 'string') {
          return text(`a human refused the call (decision ${decision.decisionId}): ${why}`, true)
        }
        // Decide again with the approval: right role, same action, unexpired, once.
        const approved = await engine.decide({ ...request, approval: token }, { signal: extra.signal })
        audit({ tool, args, decision: approved })
        if (approved.outcome !== 'execute') {
          const refused = approved.reasons.map((r) => `${r.policy}: ${r.message}`).join('; ')
          return text(`the approval was refused (decision ${approved.decisionId}): ${refused}`, true)
        }
        return run(args)
      }
      default:
        return text(`unknown outcome ${decision.outcome}`, true)
    }
  }

  server.registerTool(
    'reroute_shipment',
    {
      description: 'Send a shipment along a new route',
      inputSchema: { shipment_id: z.string(), route: z.string() },
    },
    guarded(
      'reroute_shipment',
      ({ shipment_id }) => {
        const s = shipments.get(shipment_id)
        return {
          action: { name: 'shipment.reroute' },
          resource: {
            type: 'shipment',
            id: shipment_id,
            attributes: s ? { value_usd: s.value_usd, state: s.state } : {},
          },
          context: { site: 'dc-1', incident_mode: false },
        }
      },
      ({ shipment_id, route }) => {
        const s = shipments.get(shipment_id)
        if (!s) return text(`no shipment ${shipment_id}`, true)
        s.route = route
        return text(`${shipment_id} now travels ${route}`)
      },
    ),
  )
  return server
}

/**
 * A DEMO approver: Lee, logistics supervisor, whose test-only private key is
 * published in testdata/approvals/keys/. A real approver signs in their own
 * tool (`agentriage approval sign`, or any JOSE library).
 */
export function demoApprover(decision, iat = new Date()) {
  const pem = readFileSync(join(here, '..', '..', '..', 'testdata', 'approvals', 'keys', 'lee-logistics.pem'), 'utf8')
  return approval.sign(pem, { alg: 'ES256', kid: 'lee-2026-11', iss: 'mailto:lee.brandt@acme.example', request: decision, iat })
}

/** Connects a client to `server` in-process; returns the client. */
export async function connect(server) {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  const client = new Client({ name: 'router-agent', version: '1.0.0' })
  await Promise.all([server.connect(serverSide), client.connect(clientSide)])
  return client
}

async function main() {
  const engine = Engine.fromBundle(REFERENCE_BUNDLE)
  const server = createLogisticsServer({
    engine,
    agent: () => routerAgent(),
    // A stand-in for a real approval flow (a ticket, a chat message, a pager):
    // the operator looks for a moment and approves with their signing key.
    approve: async ({ tool, args, decision }) => {
      console.log(`  ⏸  ${tool}(${args.shipment_id}) waits for a human: ${decision.policyIds.join(', ')}`)
      await new Promise((r) => setTimeout(r, 100))
      console.log('  ✔  the operator signs an approval')
      return demoApprover(decision)
    },
    audit: ({ tool, args, decision }) =>
      console.log(`[audit] ${tool} ${args.shipment_id}: ${decision.outcome} in ${decision.durationUs} µs`),
  })
  const client = await connect(server)
  for (const [shipment_id, route] of [
    ['SH-1001', 'dc-1 → dc-4'], // low value: runs
    ['SH-1002', 'dc-1 → dc-5'], // high value: a human approves first
    ['SH-1003', 'dc-2 → dc-6'], // delivered: refused
  ]) {
    const result = await client.callTool({ name: 'reroute_shipment', arguments: { shipment_id, route } })
    console.log(`${result.isError ? '✘' : '✔'} ${result.content[0].text}`)
  }
  await client.close()
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main()
}
