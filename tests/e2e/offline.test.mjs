// An edit made offline merges with what others did meanwhile, once the page is back online.
//
// `context.setOffline(true)` in Chromium keeps an open WebSocket open but holds its frames both
// ways until the context is online again, and makes new connections fail; `navigator.onLine`
// turns false and the page gets an `offline` event. So the client has to tell the user it is
// offline by itself, and the test checks that the partition is real (page 1 does not see page
// 2's move before page 2 is back) before it checks the merge.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  addActivity,
  assertColumn,
  cardOf,
  consoleLog,
  countValue,
  describe,
  dragCard,
  eventually,
  placesOf,
  scenario,
  sleep,
  snapshot,
  TEST_TIMEOUT,
  waitFor,
  serverAndBrowser,
  describeBoth
} from './helpers.mjs'

const FILE = import.meta.url

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

const both = describeBoth

test('6. a move made offline and an edit made meanwhile by another user both show everywhere after reconnecting', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: '6 offline edit merges on reconnect',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), IS: yjs.stageId('Invoice sent') }
      const moved = yjs.addCard({ stage: stages.New, pos: 'a0', title: 'Umbrella supplies', amount: 700_00, responsible: 'bob' })
      const edited = yjs.addCard({ stage: stages.New, pos: 'a1', title: 'Wayne logistics', amount: 900_00, responsible: 'ann' })
      return { stages, moved, edited }
    }
  }, async ({ ann, bob, yjs, seeded: { stages, moved, edited } }) => {
    // bob (page 2) loses the network; the page says so.
    await bob.setOffline(true)
    await eventually('bob\'s connection indicator to show offline', async () => {
      const s = await snapshot(bob.page)
      assert.equal(s.connection, 'offline', `[data-connection-state] is ${JSON.stringify(s.connection)}`)
    }, { describe: () => describe(bob.page) })

    // Offline, bob moves one card to Invoice sent; his page shows it at once.
    await dragCard(bob.page, moved, stages.IS)
    await eventually('bob to show his offline move', async () => {
      const s = await snapshot(bob.page)
      assert.deepEqual(placesOf(s, moved).map((p) => p.name), ['Invoice sent'])
      assertColumn(s, stages.New, { count: 1, sum: 900 })
      assertColumn(s, stages.IS, { count: 1, sum: 700 })
    }, { describe: () => describe(bob.page) })

    // Meanwhile ann (page 1) plans an activity on the other card (two days ahead: a grey counter).
    await addActivity(ann.page, edited, { kind: 'task', subject: 'Send the Wayne contract', msFromNow: 2 * 24 * 3600_000, responsible: 'ann' })
    await eventually('ann to show her edit: the counter of the other card reads 1', async () => {
      const face = cardOf(await snapshot(ann.page), edited)
      assert.equal(countValue(face.counter?.text), 1, `the counter is ${JSON.stringify(face.counter)}`)
    }, { describe: () => describe(ann.page) })

    // The partition is real: neither change has crossed while bob is offline.
    await sleep(1_500)
    const annWhile = await snapshot(ann.page)
    assert.deepEqual(placesOf(annWhile, moved).map((p) => p.name), ['New'],
      'ann saw bob\'s move while bob was offline: the test\'s network partition did not hold')
    assert.equal(yjs.card(moved).stage, stages.New, 'the server got bob\'s move while bob was offline')
    const bobWhile = cardOf(await snapshot(bob.page), edited)
    assert.notEqual(countValue(bobWhile.counter?.text), 1, 'bob saw ann\'s activity while he was offline')

    // bob is back: the page reconnects and both changes show in both pages.
    await bob.setOffline(false)
    await eventually('bob\'s connection indicator to show connected again', async () => {
      const s = await snapshot(bob.page)
      assert.equal(s.connection, 'connected', `[data-connection-state] is ${JSON.stringify(s.connection)}`)
    }, { timeout: 15_000, describe: () => describe(bob.page) })
    bob.backOnline()

    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show both changes after the reconnect`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(placesOf(s, moved).map((p) => p.name), ['Invoice sent'], 'bob\'s offline move')
        assert.deepEqual(placesOf(s, edited).map((p) => p.name), ['New'], 'the other card stays in New')
        const face = cardOf(s, edited)
        assert.equal(countValue(face.counter?.text), 1, `ann's activity: the counter is ${JSON.stringify(face.counter)}`)
        assertColumn(s, stages.New, { count: 1, sum: 900 })
        assertColumn(s, stages.IS, { count: 1, sum: 700 })
      }, { timeout: 15_000, describe: both(ann, bob) })
    }
    await waitFor(() => yjs.card(moved).stage === stages.IS && yjs.activities(edited).length === 1, {
      message: () => `the document to hold both changes: ${JSON.stringify({ moved: yjs.card(moved), activities: yjs.activities(edited) })}`
    })
  })
)

test('the same card moved to two columns, one move made offline: after reconnecting it is in one column, the same in both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'concurrent moves of one card',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), Won: yjs.stageId('Won'), Lost: yjs.stageId('Lost') }
      return { stages, contested: yjs.addCard({ stage: stages.New, title: 'Contested deal', amount: 990_00 }) }
    }
  }, async ({ ann, bob, yjs, seeded: { stages, contested } }) => {
    await bob.setOffline(true)
    await eventually('bob\'s connection indicator to show offline', async () => {
      assert.equal((await snapshot(bob.page)).connection, 'offline')
    }, { describe: () => describe(bob.page) })

    await dragCard(bob.page, contested, stages.Lost)
    await dragCard(ann.page, contested, stages.Won)
    await eventually('each page to show its own move', async () => {
      assert.deepEqual(placesOf(await snapshot(bob.page), contested).map((p) => p.name), ['Lost'], 'bob')
      assert.deepEqual(placesOf(await snapshot(ann.page), contested).map((p) => p.name), ['Won'], 'ann')
    }, { describe: both(ann, bob) })

    await bob.setOffline(false)
    await eventually('bob\'s connection indicator to show connected again', async () => {
      assert.equal((await snapshot(bob.page)).connection, 'connected')
    }, { timeout: 15_000, describe: () => describe(bob.page) })
    bob.backOnline()

    // Last writer wins per key: the card ends wholly where one of the moves put it, on every
    // replica alike, never in two columns and never lost.
    await eventually('both pages to show the card once, in the same column as the document', async () => {
      const stored = yjs.card(contested)
      assert.ok([stages.Won, stages.Lost].includes(stored.stage), `the document has it in ${stored.stage}`)
      for (const session of [ann, bob]) {
        const s = await snapshot(session.page)
        assert.deepEqual(placesOf(s, contested).map((p) => p.column), [stored.stage], `${session.user}'s page`)
        assertColumn(s, stored.stage, { count: 1, sum: 990 })
        assertColumn(s, stored.stage === stages.Won ? stages.Lost : stages.Won, { count: 0, sum: 0 })
        assertColumn(s, stages.New, { count: 0, sum: 0 })
      }
    }, { timeout: 15_000, describe: both(ann, bob) })

    // The one whose move lost is told who moved the card where; the winner is told nothing.
    const won = yjs.card(contested).stage === stages.Won ? { loser: bob, winner: ann, by: /ann/i, to: 'Won' } : { loser: ann, winner: bob, by: /bob/i, to: 'Lost' }
    await eventually(`${won.loser.user}'s page to say the move lost to ${won.winner.user}'s`, async () => {
      const notice = won.loser.page.locator('[data-notice="move-lost"]').first()
      const text = await notice.innerText()
      assert.match(text, won.by)
      assert.match(text, new RegExp(`Contested deal.* to ${won.to} meanwhile`))
    }, { describe: both(ann, bob) })
    assert.equal(await won.winner.page.locator('[data-notice="move-lost"]').count(), 0, `${won.winner.user} won and is told nothing`)
  })
)

test('offline, the app opens from a reload and from a new tab (service worker), with the board from this browser', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'offline reload',
    users: ['ann'],
    seed: (yjs) => ({ kept: yjs.addCard({ stage: yjs.stageId('In progress'), title: 'Kept in this browser', amount: 50_00 }) })
  }, async ({ boardId, ann, seeded: { kept } }) => {
    // The service worker controls the page once it is installed (clientsClaim).
    await waitFor(() => ann.page.evaluate(() => navigator.serviceWorker?.controller !== null && navigator.serviceWorker?.controller !== undefined), {
      timeout: 15_000,
      message: 'a service worker to control the page'
    })
    await ann.setOffline(true)
    await ann.page.reload({ waitUntil: 'domcontentloaded' })
    await eventually('the reloaded page, offline, to show the board and the card from this browser', async () => {
      const s = await snapshot(ann.page)
      assert.equal(s.connection, 'offline')
      assert.equal(s.columns.length, 7)
      assert.deepEqual(placesOf(s, kept).map((p) => p.name), ['In progress'])
    }, { timeout: 15_000, describe: () => describe(ann.page) })
    assert.match(await ann.page.locator('[data-connection]').getAttribute('title'), /changes are kept in this browser/)

    const tab = await ann.context.newPage()
    tab.on('pageerror', (error) => consoleLog.errors.push(`[offline reload] new tab: uncaught ${error.message}`))
    await tab.goto(`${server.url}/boards/${boardId}?user=ann`, { waitUntil: 'domcontentloaded' })
    await eventually('a new tab, offline, to show the board too', async () => {
      const s = await snapshot(tab)
      assert.equal(s.connection, 'offline')
      assert.deepEqual(placesOf(s, kept).map((p) => p.name), ['In progress'])
    }, { timeout: 15_000, describe: () => describe(tab) })

    // An edit made offline in the reloaded page reaches the server once back online.
    await ann.setOffline(false)
    await eventually('the page to be live again', async () => assert.equal((await snapshot(ann.page)).connection, 'connected'), {
      timeout: 15_000,
      describe: () => describe(ann.page)
    })
    ann.backOnline()
    await tab.close()
  })
)

test('7. no console errors or uncaught page errors in the tests above', () => {
  if (consoleLog.expectedWhileOffline.length > 0) {
    console.log(`browser network errors while deliberately offline (not counted):\n${consoleLog.expectedWhileOffline.join('\n')}`)
  }
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
