// Webhooks against the Standard Webhooks reference library (npm `standardwebhooks`): a stock
// y-websocket client's move reaches a Node receiver whose every request is verified by the
// library, after a 503 is retried with the same webhook-id; and a delivery still pending when
// funnel is killed with SIGKILL is made after the restart.

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'

import { Webhook } from 'standardwebhooks'

import { createCard, moveCard, sortedStages, startFunnel, syncedClient, waitFor } from './helpers.mjs'

const TEST_TIMEOUT = 40_000

// Retries after a second instead of 5 s (the schedule scaled by 0.2): long enough to kill the
// server between an attempt and its retry, short enough for a test.
const FUNNEL_ARGS = ['--webhook-allow-private', '--webhook-retry-scale', '0.2', '--webhook-timeout', '2s']

/**
 * A receiver on 127.0.0.1 that answers each request with the next status of its script (200
 * once it is spent) and keeps every request with the reference library's verdict on it.
 */
async function startReceiver () {
  const receiver = {
    secret: null,
    script: [],
    requests: [],
    server: null,
    url: ''
  }
  receiver.server = http.createServer((request, response) => {
    const chunks = []
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      let verified = null
      try {
        verified = new Webhook(receiver.secret).verify(body, request.headers)
      } catch (error) {
        verified = error
      }
      receiver.requests.push({ headers: request.headers, body, verified })
      response.statusCode = receiver.script.shift() ?? 200
      response.end()
    })
  })
  await new Promise((resolve) => receiver.server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${receiver.server.address().port}/hook`
  return receiver
}

async function api (server, method, urlPath, body) {
  const response = await fetch(`http://127.0.0.1:${server.port}${urlPath}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? null : JSON.parse(text) }
}

/** Waits until the receiver holds `count` requests; returns them. */
function requestsUpTo (receiver, count, what) {
  return waitFor(() => receiver.requests.length >= count && receiver.requests.slice(0, count), {
    timeout: 15_000,
    message: () => `${what} (${receiver.requests.length} requests so far)`
  })
}

/** The endpoint's delivery log, newest first, once it holds `count` attempts (bounded wait). */
async function deliveryLog (server, id, count) {
  const deadline = Date.now() + 10_000
  for (;;) {
    const log = await api(server, 'GET', `/api/v1/webhooks/${id}/deliveries`)
    if (log.body.deliveries.length >= count) return log.body.deliveries
    if (Date.now() >= deadline) throw new Error(`the log holds ${JSON.stringify(log.body)}, not ${count} attempts`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A request's body, after the reference library accepted its signature. */
function verifiedBody (request) {
  assert.ok(!(request.verified instanceof Error), `signature refused: ${request.verified}`)
  return request.verified
}

let receiver
after(async () => {
  await new Promise((resolve) => receiver?.server.close(resolve))
})

test('a stock client\'s move reaches the receiver signed, after a 503 is retried, and a pending delivery survives SIGKILL', { timeout: TEST_TIMEOUT }, async (t) => {
  receiver = await startReceiver()
  const dataDir = await mkdtemp(path.join(tmpdir(), 'funnel-webhooks-'))
  t.after(() => rm(dataDir, { recursive: true, force: true }))
  let server = await startFunnel({ dataDir, args: FUNNEL_ARGS })
  t.after(() => server.stop())

  const board = await api(server, 'POST', '/api/v1/boards', { entity: 'deal', name: 'Hooks' })
  assert.equal(board.status, 201)
  const hook = await api(server, 'POST', '/api/v1/webhooks', { url: receiver.url, events: ['card.moved'] })
  assert.equal(hook.status, 201, JSON.stringify(hook.body))
  receiver.secret = hook.body.secret

  const client = await syncedClient(server, board.body.id, { t })
  const stages = sortedStages(client.doc)
  const progress = stages.filter((s) => s.kind === 'progress')
  const card = createCard(client.doc, { stage: stages[0].id, pos: 'a0', title: 'Signed' })

  // The first move: answered 503, then retried and answered 200, with one id.
  receiver.script.push(503)
  moveCard(client.doc, card, progress[0].id, 'a0')
  const [first, retried] = await requestsUpTo(receiver, 2, 'the move, then its retry')
  const body = verifiedBody(first)
  assert.deepEqual(verifiedBody(retried), body)
  assert.equal(body.type, 'card.moved')
  assert.equal(body.data.cardId, card)
  assert.equal(body.data.to, progress[0].id)
  assert.equal(body.data.origin, 'socket')
  assert.equal(retried.headers['webhook-id'], first.headers['webhook-id'])
  const events = await api(server, 'GET', `/api/v1/events?boardId=${board.body.id}&types=card.moved`)
  assert.equal(events.body.events.at(-1).id, first.headers['webhook-id'], 'webhook-id is the event id')
  // The receiver answers before the server records the attempt: wait for the log to hold both.
  const log = await deliveryLog(server, hook.body.id, 2)
  assert.deepEqual(log.map((d) => [d.attempt, d.status, d.outcome]), [[2, 200, 'delivered'], [1, 503, 'retry']])

  // The second move is answered 503; the server dies before its retry, which the restarted
  // server makes.
  receiver.script.push(503)
  moveCard(client.doc, card, progress[1].id, 'a0')
  const [, , refused] = await requestsUpTo(receiver, 3, 'the second move')
  assert.equal(verifiedBody(refused).data.to, progress[1].id)
  client.destroy()
  await server.crash()
  server = await startFunnel({ dataDir, args: FUNNEL_ARGS })
  const [, , , afterRestart] = await requestsUpTo(receiver, 4, 'the retry after the restart')
  assert.equal(afterRestart.headers['webhook-id'], refused.headers['webhook-id'])
  assert.deepEqual(verifiedBody(afterRestart), verifiedBody(refused))
  // The feed lists the same events in the same order, with the bodies the receiver verified,
  // and resumes after any of them.
  const feed = await api(server, 'GET', `/api/v1/events?boardId=${board.body.id}&types=card.moved`)
  const delivered = [first, refused]
  assert.deepEqual(feed.body.events.map((e) => e.id), delivered.map((r) => r.headers['webhook-id']))
  assert.deepEqual(
    feed.body.events.map(({ type, timestamp, data }) => ({ type, timestamp, data })),
    delivered.map(verifiedBody)
  )
  const resumed = await api(server, 'GET', `/api/v1/events?boardId=${board.body.id}&types=card.moved&after=${feed.body.events[0].id}`)
  assert.deepEqual(resumed.body.events.map((e) => e.id), [feed.body.events[1].id])
  const status = await server.stop()
  assert.equal(status.killed, false, server.stderr())
})
