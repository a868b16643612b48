// The server's upkeep seen by stock Yjs clients: counters and avatars are written by funnel,
// as server transactions every client receives, with no client doing anything.

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'

import * as Y from 'yjs'

import { createCard, newBoardId, sortedStages, startFunnel, syncedClient, waitFor } from './helpers.mjs'

const TEST_TIMEOUT = 20_000
const MINUTE = 60_000

let server
before(async () => {
  server = await startFunnel()
})
after(async () => {
  await server?.stop()
})

/** The card's server-written fields, as JSON. */
function serverFields (doc, cardId) {
  const card = doc.getMap('cards').get(cardId)
  return {
    counter: card?.get('counter'),
    avatar: card?.get('avatar'),
    avatarReason: card?.get('avatarReason')
  }
}

test('a planned call due in 10 minutes lights the counter and moves the avatar to its responsible', { timeout: TEST_TIMEOUT }, async (t) => {
  const boardId = newBoardId()
  const writer = await syncedClient(server, boardId, { t })
  const observer = await syncedClient(server, boardId, { t })
  const initial = sortedStages(writer.doc)[0]
  const cardId = createCard(writer.doc, { stage: initial.id, pos: 'a0', title: 'Call ACME' })

  // The server gives every new card its counter (idle: nothing planned) and its avatar.
  await waitFor(() => serverFields(observer.doc, cardId).counter?.state === 'idle', {
    message: 'the idle counter of a new card'
  })
  assert.equal(serverFields(observer.doc, cardId).avatar, 'user-interop')
  assert.equal(serverFields(observer.doc, cardId).avatarReason, 'responsible')

  // One planned call, due in 10 minutes: within the board's 15-minute threshold.
  writer.doc.transact(() => {
    const activity = new Y.Map()
    activity.set('card', cardId)
    activity.set('kind', 'call')
    activity.set('direction', 'outgoing')
    activity.set('subject', 'Call back about the invoice')
    activity.set('deadline', Date.now() + 10 * MINUTE)
    activity.set('responsible', 'bob')
    activity.set('done', false)
    writer.doc.getMap('activities').set(randomUUID(), activity)
  })
  const started = Date.now()
  await waitFor(() => serverFields(observer.doc, cardId).counter?.state === 'due', {
    timeout: 1000,
    message: 'the counter to turn due within a second'
  })
  const fields = serverFields(observer.doc, cardId)
  assert.equal(fields.counter.count, 1)
  assert.equal(fields.counter.lit, 1)
  assert.equal(fields.avatar, 'bob')
  assert.equal(fields.avatarReason, 'reminder')
  assert.ok(Date.now() - started < 1000)
  // Every replica holds the same server-written fields.
  await waitFor(() => serverFields(writer.doc, cardId).counter?.state === 'due', { message: 'the writer to see it too' })
  assert.deepEqual(serverFields(writer.doc, cardId), serverFields(observer.doc, cardId))
})
