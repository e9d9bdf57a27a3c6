// Compiled (never run) by test/types.test.js: the public API as a
// TypeScript user writes it must type-check against index.d.ts.
import {
  Engine,
  Decision,
  InvalidRequestError,
  BundleError,
  BundleFetchError,
  AgentriageError,
  BundleStatus,
  type Outcome,
  type Request,
  type BundleInfo,
} from '../index.js'
import { guardTool, elicitApproval, principalFromAuthInfo, type ToolResult } from '../mcp.js'
import type { DecisionJson } from '../index.js'

const engine: Engine = Engine.fromBundle('policies/a2a-supply-chain')
const signed: Engine = Engine.fromBundle('policies/a2a-supply-chain', {
  trustedKeys: ['-----BEGIN PUBLIC KEY-----', new Uint8Array(0)],
  replayCheck: true,
})
const verifying: boolean = signed.requiresSignature
const request: Request = {
  time: new Date(),
  principal: { id: 'spiffe://acme.example/ns/logistics/sa/router', roles: ['a'] },
  action: { name: 'shipment.reroute' },
  resource: { type: 'shipment', id: 'SH-1', attributes: { value_usd: 12000 } },
  context: { site: 'dc-1', incident_mode: false },
  anomaly: { score: 0.3 },
}
const d: Decision = engine.decideSync(request)
const fromMap: Decision = engine.decideSync({ ...request, context: new Map([['incident_mode', true]]) })
const o: Outcome = d.outcome
const ids: string[] = d.policyIds
const us: number = d.durationUs
const name: string = d.bundle.name + engine.bundle.digest
for (const r of d.reasons) r.policy.startsWith(r.engine)
for (const ob of d.obligations) ob.id.concat(ob.policy)

async function run(signal: AbortSignal): Promise<Outcome> {
  const one = await engine.decide(request, { signal })
  const many: Decision[] = await engine.decideBatch([request, '{"principal":{"id":"x"},"action":{"name":"y"}}'])
  engine.decideBatchSync([request])
  try {
    engine.decideSync('{}')
  } catch (e) {
    if (e instanceof InvalidRequestError) return `${e.kind}${e.path}${e.index ?? ''}` as Outcome
    if (e instanceof BundleError) return `${e.file}:${e.line ?? ''}` as Outcome
    if (e instanceof AgentriageError) return e.code as unknown as Outcome
  }
  const replaced: BundleInfo = await engine.reloadAsync('policies/next')
  if (replaced.digest !== engine.reload('policies/next').digest && verifying) return o
  return many.length > 0 ? one.outcome : o
}

async function follow(): Promise<number | null> {
  let followed: Engine
  try {
    followed = await Engine.fromSource('https://bundles.example/a2a.tar.gz', {
      trustedKeys: ['-----BEGIN PUBLIC KEY-----'],
      intervalSeconds: 30,
      cache: '/var/lib/agentriage/a2a.tar.gz',
      startFromCache: true,
      caFile: '/etc/ssl/bundles-ca.pem',
    })
  } catch (e) {
    if (e instanceof BundleFetchError) return e.kind === 'tls' ? 0 : 1
    throw e
  }
  const st: BundleStatus = followed.bundleStatus()
  const revision: string = st.revision + st.digest + st.source + (st.lastError ?? '')
  followed.stopFollowing()
  return revision.length > 0 ? st.lastSuccessUnix : st.toJSON().last_failure_unix
}
// @ts-expect-error intervals are numbers of seconds
Engine.fromSource('x', { intervalSeconds: '30' })

// @ts-expect-error the engine is made by Engine.fromBundle only
new Engine()
// @ts-expect-error principal is required
engine.decideSync({ action: { name: 'x' } })
// @ts-expect-error trusted keys are PEM strings or bytes
Engine.fromBundle('x', { trustedKeys: [42] })
// @ts-expect-error an outcome is one of three strings
const bad: Outcome = 'allow'

// The MCP guard wraps a handler of the tool's own argument type.
const guarded: (args: { shipment_id: string }, extra: unknown) => Promise<ToolResult> = guardTool(
  engine,
  {
    action: 'shipment.reroute',
    resource: (args) => ({ type: 'shipment', id: args.shipment_id }),
    principal: principalFromAuthInfo,
    approve: elicitApproval({}),
    clock: () => new Date(),
  },
  async (args: { shipment_id: string }) => ({ content: [{ type: 'text', text: args.shipment_id }] }),
)
const wire = (d: Decision): DecisionJson => d.toJSON()
const traceOf = (d: Decision): string => wire(d).trace_id

export { run, follow, ids, us, name, bad, fromMap, guarded, traceOf }
