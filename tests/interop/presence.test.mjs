// Presence and closes as stock clients see them (issue 22): an awareness state that stock
// clients cannot parse never reaches them, presence belongs to the connection (and, with tokens,
// to the token's user) that set it, and the close codes of a flooding or oversized client reach
// that client even while it keeps sending.

import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, before, describe, test } from 'node:test'

import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'

import { connectClient, newBoardId, startFunnel, syncedClient, waitFor } from './helpers.mjs'

const TEST_TIMEOUT = 20_000
const SECRET = 'interop-presence-secret-of-at-least-32-bytes'

const presence = (id, name) => ({
  user: { id, name, color: '#39a8ef' },
  dragging: null,
  viewing: null
})

/** A token for `sub` signed with `SECRET` (HS256), valid for an hour (an admin may create the board). */
function token (sub, role = 'admin') {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, name: sub, role, exp: Math.floor(Date.now() / 1000) + 3600 })}`
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`
}

/** One awareness message (y-protocols framing) setting `client`'s state to the text `json`. */
function awarenessFrame (client, clock, json) {
  const update = encoding.createEncoder()
  encoding.writeVarUint(update, 1)
  encoding.writeVarUint(update, client)
  encoding.writeVarUint(update, clock)
  encoding.writeVarString(update, json)
  const frame = encoding.createEncoder()
  encoding.writeVarUint(frame, 1) // awareness
  encoding.writeVarUint8Array(frame, encoding.toUint8Array(update))
  return encoding.toUint8Array(frame)
}

/** A bare `ws` socket on a board; resolves once open, with the close it gets as a promise. */
async function rawSocket (server, board, query = '') {
  const ws = new WebSocket(`${server.wsBase}/${board}${query}`)
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  return { ws, closed }
}

/** Stop `server`, printing its log when it did not stop cleanly. */
async function stop (server) {
  const status = await server?.stop()
  if (status && (status.killed || status.code !== 0)) {
    console.error(`funnel did not stop cleanly: ${JSON.stringify(status)}\n${server.stderr()}`)
  }
}

describe('local mode', () => {
  let server
  before(async () => {
    // A small frame limit for the oversize test; the rest never come near it.
    server = await startFunnel({ args: ['--max-frame-bytes', '65536'] })
  })
  after(() => stop(server))

  test('an awareness state that does not parse is refused with 4400 and never reaches stock clients', { timeout: TEST_TIMEOUT }, async (t) => {
    const board = newBoardId()
    const a = await syncedClient(server, board, { t })
    const b = await syncedClient(server, board, { t })
    const bad = await rawSocket(server, board)
    bad.ws.send(awarenessFrame(4242, 1, '{"user": not json'))
    const { code, reason } = await bad.closed
    assert.equal(code, 4400, reason)
    assert.match(reason, /awareness state of client 4242 is not JSON/)

    // A wrong shape, the same.
    const shaped = await rawSocket(server, board)
    shaped.ws.send(awarenessFrame(4243, 1, JSON.stringify({ user: { id: 7, name: 'x', color: '#fff' } })))
    const refused = await shaped.closed
    assert.equal(refused.code, 4400, refused.reason)
    assert.match(refused.reason, /user\.id must be a string/)

    // B's message handler still works (y-protocols' JSON.parse never threw in it): it sees A's
    // presence, and neither refused state.
    a.provider.awareness.setLocalState(presence('user-a', 'Alice'))
    await waitFor(() => b.provider.awareness.getStates().has(a.doc.clientID), { message: 'B to see A' })
    assert.equal(b.provider.awareness.getStates().has(4242), false)
    assert.equal(b.provider.awareness.getStates().has(4243), false)
    // So does a late joiner, which is sent the whole presence of the board.
    const c = await syncedClient(server, board, { t })
    await waitFor(() => c.provider.awareness.getStates().has(a.doc.clientID), { message: 'C to see A' })
    assert.equal(c.provider.awareness.getStates().has(4242), false)
  })

  test('a stock client that floods messages sees 4429 and stops reconnecting', { timeout: TEST_TIMEOUT }, async (t) => {
    const client = await syncedClient(server, newBoardId(), { t })
    // Keep sending until the close arrives: the close frame must not lose to a TCP reset.
    let i = 0
    const flood = setInterval(() => {
      for (let n = 0; n < 200; n++) client.provider.awareness.setLocalStateField('viewing', `card-${i++}`)
    }, 1)
    t.after(() => clearInterval(flood))
    await waitFor(() => client.closes.length > 0, { message: 'the flooding client to be closed' })
    clearInterval(flood)
    assert.equal(client.closes[0]?.code, 4429, JSON.stringify(client.closes))
    assert.match(client.closes[0].reason, /messages a second/)
    assert.equal(client.provider.shouldConnect, false, 'a 44xx close stops the provider')
  })

  test('a stock client that sends a frame over the limit sees 4414 while it keeps sending, and stops re-uploading it', { timeout: TEST_TIMEOUT }, async (t) => {
    const client = await syncedClient(server, newBoardId(), { t })
    let i = 0
    const keepSending = setInterval(() => {
      client.provider.awareness.setLocalStateField('viewing', `card-${i++}`)
    }, 1)
    t.after(() => clearInterval(keepSending))
    client.doc.getMap('fields').set('big', 'x'.repeat(200_000))
    await waitFor(() => client.closes.length > 0, { message: 'the client to be closed' })
    clearInterval(keepSending)
    assert.equal(client.closes[0]?.code, 4414, JSON.stringify(client.closes))
    assert.match(client.closes[0].reason, /byte limit/)
    assert.equal(client.provider.shouldConnect, false, 'a 44xx close stops the provider')
  })
})

describe('with tokens', () => {
  let server
  before(async () => {
    server = await startFunnel({ args: ['--auth-secret', SECRET] })
  })
  after(() => stop(server))

  test('the presence of a token holder names the token\'s user, whatever the client says', { timeout: TEST_TIMEOUT }, async (t) => {
    const board = newBoardId()
    const mallory = await syncedClient(server, board, { t, params: { token: token('mallory') } })
    const bob = await syncedClient(server, board, { t, params: { token: token('bob') } })
    mallory.provider.awareness.setLocalState(presence('the-ceo', 'The CEO'))
    const seen = await waitFor(() => bob.provider.awareness.getStates().get(mallory.doc.clientID), {
      message: 'Bob to see Mallory'
    })
    assert.deepEqual(seen, { ...presence('mallory', 'The CEO') })
  })

  test('a connection cannot set or remove another connection\'s presence', { timeout: TEST_TIMEOUT }, async (t) => {
    const board = newBoardId()
    const ann = await syncedClient(server, board, { t, params: { token: token('ann') } })
    const bob = await syncedClient(server, board, { t, params: { token: token('bob') } })
    ann.provider.awareness.setLocalState(presence('ann', 'Ann'))
    const annId = ann.doc.clientID
    await waitFor(() => bob.provider.awareness.getStates().has(annId), { message: 'Bob to see Ann' })

    // Eve overwrites, then removes, Ann's presence: dropped (stock clients send on every
    // presence they hear of, so what a connection sends for another's client id is ignored,
    // not refused), while Eve's own presence goes through.
    const eve = await rawSocket(server, board, `?token=${token('eve')}`)
    eve.ws.send(awarenessFrame(annId, 1000, JSON.stringify(presence('eve', 'Not Ann'))))
    eve.ws.send(awarenessFrame(annId, 1001, 'null'))
    eve.ws.send(awarenessFrame(4244, 1, JSON.stringify(presence('eve', 'Eve'))))
    await waitFor(() => bob.provider.awareness.getStates().has(4244), { message: 'Bob to see Eve' })
    assert.deepEqual(bob.provider.awareness.getStates().get(annId), presence('ann', 'Ann'))
    const late = connectClient(server, board, { t, params: { token: token('carl') } })
    await waitFor(() => late.provider.awareness.getStates().has(4244), { message: 'a late joiner to see Eve' })
    assert.deepEqual(late.provider.awareness.getStates().get(annId), presence('ann', 'Ann'))

    // Eve leaves: her presence goes, Ann's stays.
    eve.ws.close()
    await waitFor(() => !bob.provider.awareness.getStates().has(4244), { message: 'Eve\'s presence to go' })
    assert.deepEqual(bob.provider.awareness.getStates().get(annId), presence('ann', 'Ann'))
  })
})
