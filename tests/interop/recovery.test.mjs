// Clients the server has lost keep working (issue 17, items 1 and 4), with the stock
// y-websocket provider: a server restored from a backup of its data directory serves a client
// whose copy holds what the server lost, and a client that edits before its step 2 is out is
// not closed. A seeded, bounded run of reconnects and kill -9 ends with identical documents
// and no 1007 or 44xx close.

import assert from 'node:assert/strict'
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import * as Y from 'yjs'

import { createCard, moveCard, newBoardId, sortedStages, startFunnel, waitFor } from './helpers.mjs'

const STORE_FILES = ['funnel.db', 'funnel.db-wal', 'funnel.db-shm']

/** Copies a stopped server's SQLite files from one directory to another. */
async function copyStore (from, to) {
  await mkdir(to, { recursive: true })
  for (const name of STORE_FILES) {
    const exists = await stat(path.join(from, name)).then(() => true, () => false)
    if (exists) await copyFile(path.join(from, name), path.join(to, name))
    else await rm(path.join(to, name), { force: true })
  }
}

/**
 * A stock provider over an existing document: what a browser does when it reloads the page
 * and y-indexeddb hands the provider the copy it kept. `onConnected` runs synchronously when
 * the socket opens, before the provider's step 1 is even sent.
 */
function provide (server, board, doc, { t, onConnected } = {}) {
  const provider = new WebsocketProvider(server.wsBase, board, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true
  })
  const closes = []
  provider.on('connection-close', (event) => {
    closes.push(event && { code: event.code, reason: event.reason })
  })
  if (onConnected) {
    provider.on('status', ({ status }) => {
      if (status === 'connected') onConnected()
    })
  }
  // The provider's awareness keeps a timer that would keep Node alive: free it too (the
  // document is reused by the next provider, as a reloaded page's copy is).
  const destroy = () => {
    provider.destroy()
    provider.awareness.destroy()
  }
  const client = { doc, provider, closes, destroy }
  t?.after(() => client.destroy())
  return client
}

/** Closes that a stock client takes as final (44xx) or that mean an update was refused (1007). */
function refusals (client) {
  return client.closes.filter((c) => c && (c.code === 1007 || (c.code >= 4400 && c.code < 4500)))
}

function cardTitles (doc) {
  return Object.values(doc.getMap('cards').toJSON()).map((card) => card.title).sort()
}

/** Every root of the board document as JSON, keys sorted at every level. */
function content (doc) {
  const json = {}
  for (const root of ['board', 'stages', 'cards', 'activities', 'fields', 'forms', 'views']) {
    json[root] = doc.getMap(root).toJSON()
  }
  return JSON.stringify(sorted(json))
}

/** The same state vector and the same content. */
function sameDocs (docs) {
  const first = Buffer.from(Y.encodeStateVector(docs[0]))
  return docs.every((doc) =>
    Buffer.from(Y.encodeStateVector(doc)).equals(first) && content(doc) === content(docs[0]))
}

function sorted (value) {
  if (Array.isArray(value)) return value.map(sorted)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sorted(value[key])]))
  }
  return value
}

test('a stock client of a server restored from a backup is served and keeps its later edits', { timeout: 60_000 }, async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'funnel-interop-recovery-'))
  const dataDir = path.join(root, 'data')
  const backup = path.join(root, 'backup')
  const servers = []
  t.after(async () => {
    for (const server of servers) await server.stop()
    await rm(root, { recursive: true, force: true })
  })
  const board = newBoardId()
  const doc = new Y.Doc()

  // Before the backup.
  let server = await startFunnel({ dataDir })
  servers.push(server)
  let client = provide(server, board, doc, { t })
  await waitFor(() => client.provider.synced, { message: 'the first sync' })
  const stages = sortedStages(doc)
  createCard(doc, { stage: stages[0].id, pos: 'V', title: 'before the backup' })
  await waitFor(() => Object.values(doc.getMap('cards').toJSON()).every((c) => c.counter), {
    message: 'the server to write the counter'
  })
  client.destroy()
  await server.stop()
  await copyStore(dataDir, backup)

  // After the backup: a card and a move, and the server's counter on the new card.
  server = await startFunnel({ dataDir })
  servers.push(server)
  client = provide(server, board, doc, { t })
  await waitFor(() => client.provider.synced, { message: 'the second sync' })
  const later = createCard(doc, { stage: stages[0].id, pos: 'W', title: 'after the backup' })
  moveCard(doc, later, stages[2].id, 'X')
  await waitFor(() => doc.getMap('cards').get(later).get('counter'), {
    message: 'the server to write the new card\'s counter'
  })
  client.destroy()
  await server.stop()

  // The data directory is restored: the server lost the second card and its counter.
  await copyStore(backup, dataDir)
  server = await startFunnel({ dataDir })
  servers.push(server)
  const fresh = provide(server, board, new Y.Doc(), { t })
  await waitFor(() => fresh.provider.synced, { message: 'a fresh client to sync' })
  assert.deepEqual(cardTitles(fresh.doc), ['before the backup'])

  // The page reloads with its kept copy and edits as soon as the socket opens (item 4).
  let edited = false
  client = provide(server, board, doc, {
    t,
    onConnected: () => {
      if (edited) return
      edited = true
      createCard(doc, { stage: stages[1].id, pos: 'Y', title: 'within the first round trip' })
    }
  })
  await waitFor(() => client.provider.synced, { message: 'the restored sync' })
  const titles = ['after the backup', 'before the backup', 'within the first round trip']
  await waitFor(() => cardTitles(fresh.doc).join() === titles.join(), {
    message: () => `the client's later edits on the server: ${cardTitles(fresh.doc)}`
  })
  await waitFor(() => content(fresh.doc) === content(doc), { message: 'the two copies to agree' })
  assert.equal(fresh.doc.getMap('cards').get(later).get('stage'), stages[2].id)
  await waitFor(() => fresh.doc.getMap('cards').get(later).get('counter'), {
    message: 'the server to recompute the counter'
  })
  assert.deepEqual(refusals(client), [], 'no 1007 or 44xx close')
  assert.deepEqual(client.closes.filter((c) => c), [])
})

/** A small seeded generator (mulberry32): the same seed, the same run. */
function random (seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

test('seeded reconnects, offline edits and kill -9 end with identical documents and no 1007', { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env.FUNNEL_RECOVERY_SEED ?? 17)
  const next = random(seed)
  const pick = (items) => items[Math.floor(next() * items.length)]
  const dataDir = await mkdtemp(path.join(tmpdir(), 'funnel-interop-chaos-'))
  const servers = []
  t.after(async () => {
    for (const server of servers) await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  })
  const board = newBoardId()
  let server = await startFunnel({ dataDir })
  servers.push(server)
  const clients = [0, 1, 2].map(() => provide(server, board, new Y.Doc(), { t }))
  await waitFor(() => clients.every((c) => c.provider.synced), { message: 'every client to sync' })
  const stages = sortedStages(clients[0].doc)
  let n = 0
  const edit = (client) => {
    const cards = [...client.doc.getMap('cards').keys()]
    if (cards.length === 0 || next() < 0.4) {
      createCard(client.doc, { stage: pick(stages).id, pos: `V${n}`, title: `card ${n}` })
    } else {
      moveCard(client.doc, pick(cards), pick(stages).id, `W${n}`)
    }
    n += 1
  }
  // Every client edits as soon as its socket opens, before its step 2 is out (item 4).
  for (const client of clients) {
    client.provider.on('status', ({ status }) => { if (status === 'connected') edit(client) })
  }

  const ROUNDS = 8
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < 4; i++) edit(pick(clients))
    const offline = clients.filter(() => next() < 0.5)
    for (const client of offline) client.provider.disconnect()
    for (const client of offline) for (let i = 0; i < 3; i++) edit(client)
    if (next() < 0.4) {
      // kill -9, then the same data directory on a new port: the providers follow it there.
      await server.crash()
      server = await startFunnel({ dataDir })
      servers.push(server)
      for (const client of clients) client.provider.serverUrl = server.wsBase
      for (const client of clients) edit(client)
    }
    for (const client of offline) client.provider.connect()
    await waitFor(() => clients.every((c) => c.provider.synced), {
      message: () => `round ${round} (seed ${seed}): every client to sync`
    })
  }
  const docs = clients.map((c) => c.doc)
  await waitFor(() => sameDocs(docs), {
    timeout: 20_000,
    message: () => `identical documents (seed ${seed})`
  })
  const fresh = provide(server, board, new Y.Doc(), { t })
  await waitFor(() => fresh.provider.synced && sameDocs([...docs, fresh.doc]), {
    message: () => `a fresh client to agree (seed ${seed})`
  })
  for (const client of clients) {
    assert.deepEqual(refusals(client), [], `no 1007 or 44xx close (seed ${seed})`)
  }
  assert.equal(fresh.doc.getMap('cards').size > 0, true)
})
