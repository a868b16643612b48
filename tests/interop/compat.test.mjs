// Stock clients keep working (issue 17): the sync status of the newest y-websocket releases
// turns green after a local edit (the server confirms a client's own update by sending it back
// once stored), and a client that keeps uploading an update over the frame limit is stopped
// (4414) or, when it ignores 44xx like old releases, turned away cheaply before the upgrade.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import WebSocket from 'ws'
// 3.1.0-rc.5 under another name: the release with the sync-status API (it reads content ids with
// @y/y, Yjs 14), beside the stable 3.1.0 the other tests use.
import { WebsocketProvider as SyncStatusProvider } from 'y-websocket-sync-status'
import * as Y from 'yjs'

import { connectClient, createCard, newBoardId, sortedStages, startFunnel, syncedClient, waitFor } from './helpers.mjs'

const TEST_TIMEOUT = 30_000

/** A client of the sync-status release; destroyed when the test ends. */
function syncStatusClient (server, boardId, t, { connect = true, doc = new Y.Doc() } = {}) {
  const provider = new SyncStatusProvider(server.wsBase, boardId, doc, {
    WebSocketPolyfill: WebSocket,
    connect,
    disableBc: true
  })
  const statuses = []
  provider.on('sync-status', (status) => statuses.push(status))
  t.after(() => {
    provider.destroy()
    doc.destroy()
  })
  return { doc, provider, statuses }
}

const firstStage = (doc) => sortedStages(doc)[0].id

describe('sync status and oversized updates', () => {
  let server
  before(async () => {
    server = await startFunnel({ args: ['--max-frame-bytes', '65536'] })
  })
  after(() => server.stop())

  test('the sync status turns green after a local edit, and after offline edits on reconnect', { timeout: TEST_TIMEOUT }, async (t) => {
    const board = newBoardId()
    const client = syncStatusClient(server, board, t)
    await waitFor(() => client.provider.syncStatus.status === 'green', { message: 'green after the join' })

    createCard(client.doc, { stage: firstStage(client.doc), pos: 'a0', title: 'confirmed' })
    assert.equal(client.provider.syncStatus.localUpdatesSynced, false, 'the edit waits for its confirmation')
    await waitFor(() => client.provider.syncStatus.localUpdatesSynced, {
      message: () => `the edit to be confirmed: ${JSON.stringify(client.provider.syncStatus)}`
    })
    assert.equal(client.provider.syncStatus.status, 'green')
    assert.ok(client.statuses.some((s) => !s.localUpdatesSynced), 'a status event said it was unconfirmed')

    // Offline edits: made before the socket opens, sent in the client's step 2.
    client.provider.disconnect()
    createCard(client.doc, { stage: firstStage(client.doc), pos: 'a1', title: 'offline' })
    assert.equal(client.provider.syncStatus.localUpdatesSynced, false)
    client.provider.connect()
    await waitFor(() => client.provider.syncStatus.status === 'green', {
      message: () => `the offline edit to be confirmed: ${JSON.stringify(client.provider.syncStatus)}`
    })
    const reader = await syncedClient(server, board, { t })
    await waitFor(() => Object.values(reader.doc.getMap('cards').toJSON()).length === 2, { message: 'both cards' })
  })

  test('a client that ignores 44xx re-uploads an oversized update twice, then is refused before the upgrade', { timeout: TEST_TIMEOUT }, async (t) => {
    const board = newBoardId()
    const owner = await syncedClient(server, board, { t })
    // An old release: it reconnects whatever the code, with the provider's own backoff.
    const client = connectClient(server, board, { t })
    client.provider.shouldReconnect = () => true
    await waitFor(() => client.provider.synced, { message: 'the client to sync' })
    client.doc.getMap('fields').set('big', 'x'.repeat(200_000))
    const oversized = () => client.closes.filter((c) => c?.code === 4414).length
    await waitFor(() => oversized() >= 2, { message: () => `two 4414s: ${JSON.stringify(client.closes)}` })
    assert.match(client.closes[0].reason, /byte limit/)
    // Right after the second one, this address is turned away from the board before the upgrade.
    const refusal = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.wsBase}/${board}`)
      ws.on('unexpected-response', (_request, response) => {
        resolve({ status: response.statusCode, retryAfter: response.headers['retry-after'] })
        ws.terminate()
      })
      ws.on('open', () => reject(new Error('the upgrade was accepted')))
      ws.on('error', () => {})
    })
    assert.equal(refusal.status, 429)
    assert.ok(Number(refusal.retryAfter) >= 1, JSON.stringify(refusal))
    // The provider's own attempts are refused too (it sees 1006, the socket never opened), so
    // it re-uploads the update only as often as the doubling wait allows, not every ~100 ms.
    await waitFor(() => client.closes.filter((c) => c?.code === 1006).length >= 2, {
      message: () => `refused reconnects: ${JSON.stringify(client.closes)}`
    })
    client.destroy()
    assert.ok(client.closes.every((c) => c === null || c.code === 4414 || c.code === 1006), JSON.stringify(client.closes))
    assert.ok(oversized() < 6, `re-uploads are backed off: ${JSON.stringify(client.closes)}`)
    // Nothing it sent got in, and the board serves the others.
    createCard(owner.doc, { stage: firstStage(owner.doc), pos: 'a0', title: 'still served' })
    const reader = await syncedClient(server, board, { t })
    await waitFor(() => Object.values(reader.doc.getMap('cards').toJSON()).length === 1, { message: 'the card' })
    assert.equal(reader.doc.getMap('fields').get('big'), undefined)
  })
})
