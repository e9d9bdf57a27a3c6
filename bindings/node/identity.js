'use strict'

// Identity helpers: a request's `principal` from what agents carry (token
// claims, MCP `authInfo`, an X.509-SVID). Each reads an identity the host
// has already verified; none checks a signature or a certificate chain
// (docs/identity.md). Exported as `identity` by index.js.

/** An identity a helper cannot turn into a principal. */
class IdentityError extends Error {
  constructor(kind, field, reason) {
    super(`invalid identity at \`${field}\`: ${reason}`)
    this.name = 'IdentityError'
    this.code = 'AGENTRIAGE_INVALID_IDENTITY'
    this.kind = kind
    this.field = field
    this.reason = reason
  }
}

function answer(text) {
  const a = JSON.parse(text)
  if (a.error) throw new IdentityError(a.error.kind, a.error.field, a.error.message)
  return a.principal
}

function json(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new IdentityError('type', '$', `expected an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`)
  }
  return JSON.stringify(value)
}

function makeIdentity(native) {
  return Object.freeze({
    IdentityError,
    /**
     * Verified JWT / OAuth claims: without `act`, `sub` is the agent; with an
     * RFC 8693 `act`, `act.sub` is the agent acting for `sub` (`on_behalf_of`).
     */
    fromTokenClaims(claims) {
      return answer(native.identityPrincipal('token', json(claims)))
    },
    /** A verified user-delegated token: the client (`client_id`/`azp`) acts for `sub`. */
    fromUserTokenClaims(claims) {
      return answer(native.identityPrincipal('user_token', json(claims)))
    },
    /** MCP `authInfo` (`clientId`, `scopes`, `expiresAt`, `extra.sub`); the token is never copied. */
    fromMcpAuthInfo(authInfo) {
      return answer(native.identityPrincipal('mcp', json(authInfo)))
    },
    /** A verified X.509-SVID, PEM text or DER bytes: its SPIFFE ID and `notAfter`. */
    fromX509Svid(certificate) {
      let bytes
      if (typeof certificate === 'string') bytes = Buffer.from(certificate, 'utf8')
      else if (certificate instanceof Uint8Array) bytes = Buffer.from(certificate)
      else throw new IdentityError('type', 'certificate', 'expected PEM text or DER bytes')
      return answer(native.identitySvidPrincipal(bytes))
    },
  })
}

module.exports = { makeIdentity, IdentityError }
