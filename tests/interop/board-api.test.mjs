// The board REST API against stock Yjs clients (y-websocket's WebsocketProvider, unmodified):
// a card created, moved and edited over REST reaches a connected stock client with the update
// that carries it (waited for on the document's own `update` event, bounded), and a move made
// by a stock client shows over REST as soon as the server has relayed it.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { WAIT_MS, moveCard, sortedStages, startFunnel, syncedClient } from './helpers.mjs'

const TEST_TIMEOUT = 20_000

let server
before(async () => {
  server = await startFunnel()
})
after(async () => {
  const status = await server?.stop()
  if (status && (status.killed || status.code !== 0)) {
    console.error(`funnel did not stop cleanly: ${JSON.stringify(status)}\n${server.stderr()}`)
  }
})

/** A call to the API (local mode: no token); resolves to `{ status, body }`. */
async function api (method, path, body) {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? null : JSON.parse(text) }
}

/**
 * Resolves once `condition(doc)` holds, checked now and on each of the document's `update`
 * events (each one an update the server delivered); rejects after `WAIT_MS`.
 */
function untilDoc (doc, condition, what) {
  return new Promise((resolve, reject) => {
    if (condition(doc)) return resolve()
    const timer = setTimeout(() => {
      doc.off('update', check)
      reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`))
    }, WAIT_MS)
    function check () {
      if (!condition(doc)) return
      clearTimeout(timer)
      doc.off('update', check)
      resolve()
    }
    doc.on('update', check)
  })
}

const cardOf = (doc, id) => doc.getMap('cards').get(id)

test('a card created, moved and edited over REST reaches a stock client', { timeout: TEST_TIMEOUT }, async (t) => {
  const created = await api('POST', '/api/v1/boards', { entity: 'deal', name: 'Interop' })
  assert.equal(created.status, 201)
  const board = created.body.id
  const client = await syncedClient(server, board, { t })
  const stages = sortedStages(client.doc)
  const won = stages.find((s) => s.kind === 'success')

  const made = await api('POST', `/api/v1/boards/${board}/cards`, { title: 'Acme', email: 'buyer@acme.com', amount: 500 })
  assert.equal(made.status, 201, JSON.stringify(made.body))
  const id = made.body.id
  await untilDoc(client.doc, (doc) => cardOf(doc, id)?.get('title') === 'Acme', 'the card made over REST')
  assert.equal(cardOf(client.doc, id).get('email'), 'buyer@acme.com')
  assert.equal(cardOf(client.doc, id).get('stage'), stages[0].id)

  const moved = await api('PATCH', `/api/v1/boards/${board}/cards/${id}`, { stageId: won.id })
  assert.equal(moved.status, 200, JSON.stringify(moved.body))
  await untilDoc(client.doc, (doc) => cardOf(doc, id).get('stage') === won.id, 'the move made over REST')
  assert.equal(cardOf(client.doc, id).get('pos'), moved.body.pos)

  const edited = await api('PATCH', `/api/v1/boards/${board}/cards/${id}`, { title: 'Acme GmbH', amount: 750 })
  assert.equal(edited.status, 200, JSON.stringify(edited.body))
  await untilDoc(client.doc, (doc) => cardOf(doc, id).get('title') === 'Acme GmbH', 'the edit made over REST')
  assert.equal(cardOf(client.doc, id).get('amount'), 750)
})

test('a move made by a stock client shows over REST at once', { timeout: TEST_TIMEOUT }, async (t) => {
  const created = await api('POST', '/api/v1/boards', { entity: 'deal' })
  const board = created.body.id
  const made = await api('POST', `/api/v1/boards/${board}/cards`, { title: 'Globex' })
  const id = made.body.id
  const mover = await syncedClient(server, board, { t })
  const witness = await syncedClient(server, board, { t })
  const lost = sortedStages(mover.doc).find((s) => s.name === 'Lost')

  moveCard(mover.doc, id, lost.id, 'a0')
  // The witness has it once the server stored and relayed it: the next REST read shows it.
  await untilDoc(witness.doc, (doc) => cardOf(doc, id)?.get('stage') === lost.id, 'the move to reach the witness')
  const fetched = await api('GET', `/api/v1/boards/${board}/cards/${id}`)
  assert.equal(fetched.status, 200)
  assert.equal(fetched.body.stageId, lost.id)
  assert.equal(fetched.body.pos, 'a0')
  const listed = await api('GET', `/api/v1/boards/${board}/cards?stageId=${lost.id}`)
  assert.deepEqual(listed.body.cards.map((c) => c.id), [id])
})
