'use strict'

// A bundle signer written from the format in docs/bundle.md (DSSE envelope,
// node:crypto's Ed25519), not by the engine, and a bundle archive writer
// (ustar, gzip, node:zlib): what a third-party pipeline would produce.

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')

const PAYLOAD_TYPE = 'application/vnd.agentriage.bundle-signature+json'

/** Every non-hidden file by `/`-separated relative path, in byte order of the paths. */
function bundleFiles(root) {
  const files = []
  const walk = (dir, prefix) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full, rel)
      else files.push([rel, fs.readFileSync(full)])
    }
  }
  walk(root, '')
  return files.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex')

function digest(files) {
  const h = crypto.createHash('sha256')
  for (const [rel, data] of files) {
    const len = Buffer.alloc(8)
    len.writeBigUInt64BE(BigInt(data.length))
    h.update(Buffer.concat([Buffer.from(rel), Buffer.from([0]), len, data]))
  }
  return `sha256:${h.digest('hex')}`
}

function keyId(publicKey) {
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  return `ed25519:${sha256(raw).slice(0, 32)}`
}

function publisher() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519')
  return { privateKey, publicKey, pem: publicKey.export({ format: 'pem', type: 'spki' }) }
}

function sign(root, key, revision = '2026.11.0') {
  const files = bundleFiles(root)
  const statement = {
    format: 'agentriage.bundle-signature',
    version: 1,
    name: 'a2a-supply-chain',
    revision,
    digest: digest(files),
    files: Object.fromEntries(files.map(([rel, data]) => [rel, `sha256:${sha256(data)}`])),
  }
  const payload = Buffer.from(JSON.stringify(statement))
  const pae = Buffer.concat([
    Buffer.from(`DSSEv1 ${PAYLOAD_TYPE.length} ${PAYLOAD_TYPE} ${payload.length} `),
    payload,
  ])
  const envelope = {
    payloadType: PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: keyId(key.publicKey), sig: crypto.sign(null, pae, key.privateKey).toString('base64') }],
  }
  fs.writeFileSync(path.join(root, '.signature.json'), JSON.stringify(envelope))
}

/**
 * The bundle in `root` as a `.tar.gz` (ustar, regular files in path order,
 * the hidden `.signature.json` included, as `agentriage bundle build` does).
 */
function archive(root) {
  const files = bundleFiles(root)
  const signature = path.join(root, '.signature.json')
  if (fs.existsSync(signature)) files.unshift(['.signature.json', fs.readFileSync(signature)])
  const blocks = []
  for (const [rel, data] of files) {
    if (Buffer.byteLength(rel) > 100) throw new Error(`path too long for this writer: ${rel}`)
    const h = Buffer.alloc(512)
    h.write(rel, 0)
    h.write('0000644\0', 100)
    h.write('0000000\0', 108)
    h.write('0000000\0', 116)
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124)
    h.write('00000000000\0', 136)
    h.write('        ', 148)
    h.write('0', 156)
    h.write('ustar\0', 257)
    h.write('00', 263)
    let sum = 0
    for (const b of h) sum += b
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return zlib.gzipSync(Buffer.concat(blocks))
}

module.exports = { bundleFiles, digest, publisher, sign, archive }
