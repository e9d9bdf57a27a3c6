'use strict'

// Guards for the tools of an MCP server made with the MCP TypeScript SDK
// (@modelcontextprotocol/sdk). The SDK is not imported here: a guard wraps
// a tool handler `(args, extra) => CallToolResult` and speaks the SDK's
// shapes, so this module loads without the SDK installed.

/** A tool result the client sees as a refusal (`isError: true`). */
function refusal(text) {
  return { content: [{ type: 'text', text }], isError: true }
}

function reasonsText(decision) {
  const why = decision.reasons.map((r) => `${r.policy}: ${r.message}`).join('; ')
  return why === '' ? 'no reason given' : why
}

/**
 * The caller as the transport authenticated it: the SDK's `extra.authInfo`
 * (`sub` from its `extra` claims, else `clientId`; scopes and client id as
 * attributes; `expiresAt`, seconds since the epoch, as the credential's
 * expiry). `undefined` without authInfo: the request then has no principal
 * and the engine refuses it.
 */
function principalFromAuthInfo(extra) {
  const auth = extra?.authInfo
  if (auth == null) return undefined
  const sub = typeof auth.extra?.sub === 'string' && auth.extra.sub !== '' ? auth.extra.sub : undefined
  const principal = {
    id: sub ?? auth.clientId,
    attributes: { client_id: auth.clientId, scopes: Array.isArray(auth.scopes) ? [...auth.scopes] : [] },
  }
  if (typeof auth.expiresAt === 'number') {
    principal.credential = { expires_at: new Date(auth.expiresAt * 1000) }
  }
  return principal
}

/**
 * An approver that asks the user through MCP elicitation
 * (`server.server.elicitInput`): the call runs only when the user accepts
 * with `approved: true`. A client that cannot elicit gets a refusal.
 */
function elicitApproval(mcpServer) {
  const low = mcpServer?.server ?? mcpServer
  if (typeof low?.elicitInput !== 'function') {
    throw new TypeError('elicitApproval takes an McpServer (or its Server); it has no elicitInput')
  }
  return async ({ tool, decision }) => {
    const answer = await low.elicitInput({
      message: `\`${tool}\` needs your approval (decision ${decision.decisionId}): ${reasonsText(decision)}`,
      requestedSchema: {
        type: 'object',
        properties: { approved: { type: 'boolean', description: 'Run the tool call as requested' } },
        required: ['approved'],
      },
    })
    return answer?.action === 'accept' && answer.content?.approved === true
  }
}

/**
 * Wraps the handler of an MCP tool so it runs only when the policies allow:
 *
 *   server.registerTool('reroute_shipment', { inputSchema }, guardTool(engine, {
 *     action: 'shipment.reroute',
 *     resource: (args) => ({ type: 'shipment', id: args.shipment_id }),
 *     approve: elicitApproval(server),
 *   }, async (args) => ({ content: [{ type: 'text', text: 'done' }] })))
 *
 * Options: `action` (a name, or `(args, extra) => name`); `resource` (an
 * object or `(args, extra) => object`); `principal(extra)` (default:
 * principalFromAuthInfo); `context` (an object or `(args, extra) =>
 * object`); `approve({ tool, args, decision, extra })` (resolves to `true`
 * to run an escalated call; without it an escalation is refused);
 * `onDecision({ tool, args, decision })` (an audit hook); `clock()` (a Date).
 *
 * `execute` runs the handler; `reject` returns a refusal (`isError: true`)
 * naming the policies; `escalate` waits for `approve`. Anything else — an
 * invalid request, an engine error, an approver that throws — is a
 * refusal too, and the handler does not run. The client's cancellation
 * (`extra.signal`) abandons the decision.
 */
function guardTool(engine, options, handler) {
  if (typeof handler !== 'function') throw new TypeError('guardTool(engine, options, handler): handler must be a function')
  const { action, resource, context, approve, onDecision, clock = () => new Date() } = options ?? {}
  const principal = options?.principal ?? principalFromAuthInfo
  const tool = options?.name ?? (typeof action === 'string' ? action : 'tool')
  if (typeof action !== 'string' && typeof action !== 'function') {
    throw new TypeError('guardTool: options.action must be an action name or a function of the arguments')
  }
  const valueOf = (v, args, extra) => (typeof v === 'function' ? v(args, extra) : v)
  return async (args, extra) => {
    let decision
    try {
      const request = { time: clock(), action: { name: valueOf(action, args, extra) } }
      const who = principal(extra)
      if (who !== undefined) request.principal = who
      const res = valueOf(resource, args, extra)
      if (res !== undefined) request.resource = res
      const ctx = valueOf(context, args, extra)
      if (ctx !== undefined) request.context = ctx
      decision = await engine.decide(request, { signal: extra?.signal })
    } catch (e) {
      return refusal(`not decided, so not run: ${e?.message ?? e}`)
    }
    if (onDecision) onDecision({ tool, args, decision })
    const why = reasonsText(decision)
    if (decision.outcome === 'execute') return handler(args, extra)
    if (decision.outcome === 'escalate') {
      if (typeof approve !== 'function') {
        return refusal(`needs a human's approval and no one can be asked (decision ${decision.decisionId}): ${why}`)
      }
      let approved
      try {
        approved = await approve({ tool, args, decision, extra })
      } catch (e) {
        return refusal(`needs a human's approval, which could not be asked (${e?.message ?? e}): ${why}`)
      }
      if (approved === true) return handler(args, extra)
      return refusal(`a human did not approve (decision ${decision.decisionId}): ${why}`)
    }
    return refusal(`refused by policy (decision ${decision.decisionId}): ${why}`)
  }
}

module.exports = { guardTool, elicitApproval, principalFromAuthInfo }
