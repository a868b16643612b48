// What stock clients have seen survives a graceful restart of funnel on the same data directory.
// Runs its own servers (not shared with other test files) since it stops one on purpose.

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'

import {
  cardsJson,
  createCard,
  newBoardId,
  sortedStages,
  startFunnel,
  syncedClient,
  waitFor
} from './helpers.mjs'

test('a card that a peer has received survives a SIGTERM restart', { timeout: 30_000 }, async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'funnel-interop-durable-'))
  const servers = []
  t.after(async () => {
    for (const server of servers) await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  const board = newBoardId()
  const first = await startFunnel({ dataDir })
  servers.push(first)

  const a = await syncedClient(first, board, { t })
  const b = await syncedClient(first, board, { t })
  const stages = sortedStages(a.doc)
  const cardId = createCard(a.doc, { stage: stages[1].id, pos: 'V', title: 'Durable deal', amount: 4_200_00 })
  // The server stores an update before it relays it: once B has it, it is on disk.
  await waitFor(() => b.doc.getMap('cards').has(cardId), { message: 'B to receive the card' })
  const cardsBefore = cardsJson(b.doc)

  const status = await first.stop()
  assert.deepEqual(
    status,
    { code: 0, signal: null, killed: false },
    `funnel should exit 0 on SIGTERM by itself; stderr:\n${first.stderr()}`
  )
  // The graceful shutdown told the connected clients to come back later ("service restart").
  await waitFor(() => b.closes.length > 0, { message: 'B to see its connection closed' })
  assert.equal(b.closes[0]?.code, 1012, `close seen by B: ${JSON.stringify(b.closes)}`)
  a.destroy()
  b.destroy()

  const second = await startFunnel({ dataDir })
  servers.push(second)
  const c = await syncedClient(second, board, { t })
  assert.deepEqual(cardsJson(c.doc), cardsBefore)
  // The board was loaded, not created anew: the same stage ids (a fresh board would mint new ones).
  assert.deepEqual(sortedStages(c.doc), stages)
})

test('a card that a peer has received survives a crash (SIGKILL) and restart', { timeout: 30_000 }, async (t) => {
  // docs/storage.md: an update is stored before it is relayed, so "a crash loses nothing that was
  // broadcast". No graceful flush happens here.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'funnel-interop-crash-'))
  const servers = []
  t.after(async () => {
    for (const server of servers) await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  const board = newBoardId()
  const first = await startFunnel({ dataDir })
  servers.push(first)

  const a = await syncedClient(first, board, { t })
  const b = await syncedClient(first, board, { t })
  const stages = sortedStages(a.doc)
  const cardId = createCard(a.doc, { stage: stages[0].id, pos: 'V', title: 'Crash-proof deal' })
  await waitFor(() => b.doc.getMap('cards').has(cardId), { message: 'B to receive the card' })
  const cardsBefore = cardsJson(b.doc)

  await first.crash()
  a.destroy()
  b.destroy()

  const second = await startFunnel({ dataDir })
  servers.push(second)
  const c = await syncedClient(second, board, { t })
  assert.deepEqual(cardsJson(c.doc), cardsBefore)
  assert.deepEqual(sortedStages(c.doc), stages)
})
