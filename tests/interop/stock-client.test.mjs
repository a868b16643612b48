// Stock Yjs clients (Y.Doc + y-websocket's WebsocketProvider, unmodified) against one funnel
// server: sync of a new board, live updates, late joiners, awareness and offline convergence.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { isDeepStrictEqual } from 'node:util'

import {
  cardsJson,
  createCard,
  moveCard,
  newBoardId,
  sortedStages,
  startFunnel,
  syncedClient,
  waitFor,
  waitSynced
} from './helpers.mjs'

const TEST_TIMEOUT = 20_000

let server
before(async () => {
  server = await startFunnel()
})
after(async () => {
  const status = await server?.stop()
  // Print the server log only when something looks wrong: it is the first thing to read then.
  if (status && (status.killed || status.code !== 0)) {
    console.error(`funnel did not stop cleanly: ${JSON.stringify(status)}\n${server.stderr()}`)
  }
})

test('a stock client syncs a new board and sees the 7 default deal stages', { timeout: TEST_TIMEOUT }, async (t) => {
  const client = await syncedClient(server, newBoardId(), { t })

  const stages = sortedStages(client.doc)
  assert.deepEqual(
    stages.map((s) => [s.name, s.kind]),
    [
      ['New', 'initial'],
      ['Preparing documents', 'progress'],
      ['Invoice sent', 'progress'],
      ['In progress', 'progress'],
      ['Won', 'success'],
      ['Lost', 'failure'],
      ['Failure analysis', 'failure']
    ]
  )
  for (const stage of stages) {
    assert.match(stage.color, /^#[0-9a-f]{6}$/i, `colour of stage ${stage.name}`)
    assert.match(stage.pos, /^[0-9A-Za-z]+$/, `pos of stage ${stage.name}`)
  }
  assert.equal(client.doc.getMap('board').get('entity'), 'deal')
  assert.deepEqual(cardsJson(client.doc), {})
})

test('a card made by one client reaches another, and a late client gets the full state', { timeout: TEST_TIMEOUT }, async (t) => {
  const board = newBoardId()
  const a = await syncedClient(server, board, { t })
  const b = await syncedClient(server, board, { t })

  const [first] = sortedStages(a.doc)
  const cardId = createCard(a.doc, { stage: first.id, pos: 'V', title: 'Deal from A', amount: 125_00 })
  await waitFor(() => b.doc.getMap('cards').has(cardId), { message: 'B to receive the card made by A' })
  assert.deepEqual(cardsJson(b.doc), cardsJson(a.doc))
  assert.equal(b.doc.getMap('cards').get(cardId).get('title'), 'Deal from A')

  // A late client syncs the whole document from the server alone (A and B stay connected but
  // send nothing more).
  const c = await syncedClient(server, board, { t })
  assert.deepEqual(cardsJson(c.doc), cardsJson(a.doc))
  assert.deepEqual(sortedStages(c.doc), sortedStages(a.doc))
  assert.deepEqual(c.doc.getMap('board').toJSON(), a.doc.getMap('board').toJSON())
})

const presence = (id, name) => ({
  user: { id, name, color: '#39a8ef' },
  dragging: null,
  viewing: null
})

test('awareness: a peer sees a client\'s state, and sees it go when the client leaves', { timeout: TEST_TIMEOUT }, async (t) => {
  const board = newBoardId()
  const a = await syncedClient(server, board, { t })
  const b = await syncedClient(server, board, { t })
  const aId = a.doc.clientID

  a.provider.awareness.setLocalState(presence('user-a', 'Alice'))
  await waitFor(() => b.provider.awareness.getStates().has(aId), { message: 'B to see the awareness of A' })
  assert.deepEqual(b.provider.awareness.getStates().get(aId), presence('user-a', 'Alice'))

  a.destroy()
  await waitFor(() => !b.provider.awareness.getStates().has(aId), {
    timeout: 5_000,
    message: 'B to see the awareness of A removed after A left'
  })
})

test('awareness: a client whose connection drops without a goodbye is removed by the server', { timeout: TEST_TIMEOUT }, async (t) => {
  // provider.destroy() sends a "state = null" awareness message before closing; a crashed tab
  // or a lost network does not. Here the socket is torn down without any message or close
  // frame, so only the server's clean-up on close can tell B that A is gone.
  const board = newBoardId()
  const a = await syncedClient(server, board, { t })
  const b = await syncedClient(server, board, { t })
  const aId = a.doc.clientID

  a.provider.awareness.setLocalState(presence('user-a', 'Alice'))
  await waitFor(() => b.provider.awareness.getStates().has(aId), { message: 'B to see the awareness of A' })

  a.provider.shouldConnect = false // keep the provider from reconnecting after the drop
  a.provider.ws.terminate() // `ws`: destroy the socket at once, no close frame
  await waitFor(() => !b.provider.awareness.getStates().has(aId), {
    timeout: 5_000,
    message: 'B to see the awareness of A removed after its connection dropped'
  })
})

test('concurrent offline moves of one card converge to one place on every replica', { timeout: TEST_TIMEOUT }, async (t) => {
  const board = newBoardId()
  const a = await syncedClient(server, board, { t })
  const b = await syncedClient(server, board, { t })

  const stages = sortedStages(a.doc)
  const cardId = createCard(a.doc, { stage: stages[0].id, pos: 'V', title: 'Contested deal', amount: 990_00 })
  await waitFor(() => b.doc.getMap('cards').has(cardId), { message: 'B to receive the card' })

  // Both go offline, then move the same card to different places.
  a.provider.disconnect()
  b.provider.disconnect()
  assert.equal(a.provider.wsconnected, false)
  assert.equal(b.provider.wsconnected, false)

  const moveA = { stage: stages[2].id, pos: 'M' } // "Invoice sent"
  const moveB = { stage: stages[4].id, pos: 'k' } // "Won"
  moveCard(a.doc, cardId, moveA.stage, moveA.pos)
  moveCard(b.doc, cardId, moveB.stage, moveB.pos)
  assert.notDeepEqual(cardsJson(a.doc), cardsJson(b.doc))

  a.provider.connect()
  b.provider.connect()
  await waitSynced(a, 'A after reconnecting')
  await waitSynced(b, 'B after reconnecting')
  // Each side pushes its offline edit in its own sync step 2, which the server then relays to
  // the other: being synced is not yet being converged, so wait for equality.
  await waitFor(() => isDeepStrictEqual(cardsJson(a.doc), cardsJson(b.doc)), {
    message: () => `A and B to converge: A=${JSON.stringify(cardsJson(a.doc))} B=${JSON.stringify(cardsJson(b.doc))}`
  })

  const cards = cardsJson(a.doc)
  assert.deepEqual(cardsJson(b.doc), cards)
  assert.deepEqual(Object.keys(cards), [cardId], 'the card exists exactly once')
  const card = cards[cardId]
  assert.equal(card.title, 'Contested deal')
  // Last writer wins per key, and both keys of one move come from the same writer: the card is
  // wholly where one of the two moves put it, never a mix of the two.
  const place = { stage: card.stage, pos: card.pos }
  assert.ok(
    [moveA, moveB].some((move) => move.stage === place.stage && move.pos === place.pos),
    `card ended at ${JSON.stringify(place)}, expected one of ${JSON.stringify([moveA, moveB])}`
  )

  // A fresh replica, built from the server alone, agrees.
  const c = await syncedClient(server, board, { t })
  assert.deepEqual(cardsJson(c.doc), cards)
})
