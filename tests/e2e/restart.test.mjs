// A server restart: the pages notice the socket closed (1012), keep working locally, reconnect to
// the restarted server on the same port and data directory, and an edit made during the outage
// reaches the other page.

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'

import {
  assertColumn,
  consoleLog,
  describe,
  dragCard,
  eventually,
  launchBrowser,
  placesOf,
  scenario,
  snapshot,
  startFunnel,
  TEST_TIMEOUT,
  waitFor
} from './helpers.mjs'

const FILE = import.meta.url

let dataDir
let server
let browser
before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'funnel-e2e-restart-'))
  server = await startFunnel({ dataDir })
  browser = await launchBrowser()
})
after(async () => {
  await browser?.close()
  const status = await server?.stop()
  if (status && (status.killed || status.code !== 0)) {
    console.error(`funnel did not stop cleanly: ${JSON.stringify(status)}\n${server.stderr()}`)
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

const both = (ann, bob) => async () => `page of ann:\n${await describe(ann.page)}\npage of bob:\n${await describe(bob.page)}`

test('a move made while the server restarts reaches the other page once both reconnect', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'server restart',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), Won: yjs.stageId('Won') }
      return { stages, moved: yjs.addCard({ stage: stages.New, title: 'Restart-proof deal', amount: 333_00 }) }
    }
  }, async ({ ann, bob, yjs, seeded: { stages, moved } }) => {
    const port = server.port
    for (const session of [ann, bob]) session.networkCut()
    const status = await server.stop()
    assert.equal(status.code, 0, `funnel exited with ${JSON.stringify(status)} on SIGTERM`)

    for (const session of [ann, bob]) {
      await eventually(`${session.user}'s connection indicator to leave "connected"`, async () => {
        const s = await snapshot(session.page)
        assert.ok(['connecting', 'offline'].includes(s.connection), `[data-connection-state] is ${JSON.stringify(s.connection)}`)
      }, { describe: () => describe(session.page) })
    }

    // While the server is down, ann moves the card: her page shows it at once.
    await dragCard(ann.page, moved, stages.Won)
    await eventually('ann to show her move while the server is down', async () => {
      assert.deepEqual(placesOf(await snapshot(ann.page), moved).map((p) => p.name), ['Won'])
    }, { describe: () => describe(ann.page) })

    server = await startFunnel({ port, dataDir })
    for (const session of [ann, bob]) {
      await eventually(`${session.user}'s connection indicator to show connected again`, async () => {
        assert.equal((await snapshot(session.page)).connection, 'connected')
      }, { timeout: 20_000, describe: () => describe(session.page) })
      session.backOnline()
    }
    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show the card in Won`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(placesOf(s, moved).map((p) => p.name), ['Won'])
        assertColumn(s, stages.New, { count: 0, sum: 0 })
        assertColumn(s, stages.Won, { count: 1, sum: 333 })
      }, { describe: both(ann, bob) })
    }
    await waitFor(() => yjs.card(moved)?.stage === stages.Won, {
      timeout: 15_000,
      message: () => `the document (a Yjs client reconnected to the restarted server) to have the card in Won: ${JSON.stringify(yjs.card(moved))}`
    })
  })
)

test('7. no console errors or uncaught page errors in the tests above', () => {
  if (consoleLog.expectedWhileOffline.length > 0) {
    console.log(`browser network errors while the server was down (not counted):\n${consoleLog.expectedWhileOffline.join('\n')}`)
  }
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
