// What a new user meets on a board: deleting a card with Undo, "Live" only once the board is all
// there, open-deal totals and workload, the stage editor's Delete, what timeline rows are, an
// idle card's mark, a phone's one-column layout, and axe-core's accessibility check.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  card,
  cardOf,
  consoleLog,
  createBoard,
  describe,
  describeBoth,
  docClient,
  eventually,
  newSession,
  openBoard,
  openCard,
  placesOf,
  saveArtifacts,
  scenario,
  seriousViolations,
  serverAndBrowser,
  snapshot,
  TEST_TIMEOUT,
  waitFor
} from './helpers.mjs'

const FILE = import.meta.url

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

const both = describeBoth

async function api (method, path, body) {
  const response = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000)
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? null : JSON.parse(text) }
}

test('delete a card from its panel, then Undo: gone everywhere, then back in its place with its activities', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'delete and undo',
    seed: (yjs) => {
      const stage = yjs.stageId('In progress')
      const first = yjs.addCard({ stage, pos: 'a0', title: 'Keeps its place', amount: 100_00 })
      const doomed = yjs.addCard({ stage, pos: 'a1', title: 'Deleted then restored', amount: 250_00, client: 'Acme', responsible: 'ann' })
      const last = yjs.addCard({ stage, pos: 'a2', title: 'After it', amount: 100_00 })
      const activity = yjs.addActivity({ card: doomed, subject: 'Call Acme back', deadline: Date.now() + 86_400_000 })
      return { stage, first, doomed, last, activity }
    }
  }, async ({ boardId, ann, bob, yjs, seeded: { stage, first, doomed, last, activity } }) => {
    const panel = await openCard(ann.page, doomed)
    await panel.locator('[data-action="delete-card"]').click()

    await eventually('the card to be gone from both pages, the document and the API', async () => {
      for (const session of [ann, bob]) {
        assert.deepEqual(placesOf(await snapshot(session.page), doomed), [], `${session.user}'s page still shows it`)
      }
      assert.equal(yjs.card(doomed), undefined, 'the document still has the card')
      assert.deepEqual(yjs.activities(doomed), [], 'the document still has its activity')
      assert.equal((await api('GET', `/boards/${boardId}/cards/${doomed}`)).status, 404)
    }, { describe: both(ann, bob) })

    const notice = ann.page.locator('[data-notice="card-deleted"]').first()
    assert.match(await notice.innerText(), /Deleted then restored/)
    await notice.locator('[data-action="undo"]').click()

    await eventually('the card back in its place, with its fields and activity, everywhere', async () => {
      for (const session of [ann, bob]) {
        const s = await snapshot(session.page)
        const column = s.columns.find((c) => c.id === stage)
        assert.deepEqual(column.cards.map((c) => c.id), [first, doomed, last], `${session.user}'s column order`)
        assert.match(cardOf(s, doomed).text, /Deleted then restored/)
      }
      const stored = yjs.card(doomed)
      assert.equal(stored?.title, 'Deleted then restored')
      assert.equal(stored.pos, 'a1')
      assert.equal(stored.amount, 250_00)
      assert.equal(stored.client, 'Acme')
      assert.deepEqual(yjs.activities(doomed).map((a) => [a.id, a.subject]), [[activity, 'Call Acme back']])
      const rest = await api('GET', `/boards/${boardId}/cards/${doomed}`)
      assert.equal(rest.status, 200)
      assert.equal(rest.body.title, 'Deleted then restored')
    }, { describe: both(ann, bob) })

    // The REST API's delete shows on the open pages at once, as the page's own did.
    assert.equal((await api('DELETE', `/boards/${boardId}/cards/${last}`)).status, 204)
    await eventually('a card deleted through the API to leave both pages', async () => {
      for (const session of [ann, bob]) assert.deepEqual(placesOf(await snapshot(session.page), last), [])
    }, { describe: both(ann, bob) })
  })
)

test('archive a card from its panel: off the board and its totals everywhere, listed under Archived, restored in its place', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'archive and restore',
    seed: (yjs) => {
      const stage = yjs.stageId('In progress')
      const first = yjs.addCard({ stage, pos: 'a0', title: 'Stays', amount: 100_00 })
      const shelved = yjs.addCard({ stage, pos: 'a1', title: 'Archived deal', amount: 900_00 })
      const last = yjs.addCard({ stage, pos: 'a2', title: 'Also stays', amount: 100_00 })
      yjs.addActivity({ card: shelved, subject: 'Follow up', deadline: Date.now() + 86_400_000 })
      return { stage, first, shelved, last }
    }
  }, async ({ boardId, ann, bob, yjs, seeded: { stage, first, shelved, last } }) => {
    const panel = await openCard(ann.page, shelved)
    await panel.locator('[data-action="archive-card"]').click()
    await eventually('the card off the board in both pages, kept in the document, archived for the API', async () => {
      for (const session of [ann, bob]) {
        const s = await snapshot(session.page)
        assert.deepEqual(placesOf(s, shelved), [], `${session.user}'s page still shows it`)
        const column = s.columns.find((c) => c.id === stage)
        assert.equal(column.count, '2')
        assert.match(await session.page.locator('[data-board-total="open"]').innerText(), /^2 open cards · \$200\.00$/)
      }
      assert.equal(typeof yjs.card(shelved)?.archivedAt, 'number')
      assert.equal(yjs.activities(shelved).length, 1, 'its activity is kept')
      const list = await api('GET', `/boards/${boardId}/cards`)
      assert.deepEqual(list.body.cards.map((c) => c.id), [first, last])
      const shelf = await api('GET', `/boards/${boardId}/cards?archived=true`)
      assert.deepEqual(shelf.body.cards.map((c) => c.id), [shelved])
    }, { describe: both(ann, bob) })
    assert.equal(await ann.page.locator('[data-notice="card-archived"] [data-action="undo"]').count(), 1, 'an Undo is offered')

    // Bob finds it under Archived and restores it: back in its place for both.
    await bob.page.locator('[data-action="show-archived"]').click()
    const archived = bob.page.locator('[data-panel="archived"]').first()
    await archived.locator(`[data-archived-card="${shelved}"] [data-action="restore-card"]`).click()
    await eventually('the card back in its place in both pages and for the API', async () => {
      for (const session of [ann, bob]) {
        const column = (await snapshot(session.page)).columns.find((c) => c.id === stage)
        assert.deepEqual(column.cards.map((c) => c.id), [first, shelved, last], `${session.user}'s column`)
      }
      assert.equal(yjs.card(shelved).archivedAt, undefined)
      const rest = await api('GET', `/boards/${boardId}/cards/${shelved}`)
      assert.equal(rest.body.archivedAt, null)
    }, { describe: both(ann, bob) })

    // Archived through the API, it leaves the open pages too.
    assert.equal((await api('PATCH', `/boards/${boardId}/cards/${last}`, { archived: true })).status, 200)
    await eventually('a card archived through the API to leave both pages', async () => {
      for (const session of [ann, bob]) assert.deepEqual(placesOf(await snapshot(session.page), last), [])
    }, { describe: both(ann, bob) })
  })
)

test('a large board says Live only once every card shows, with a progress bar before', { timeout: TEST_TIMEOUT }, async () => {
  const CARDS = 6000
  const boardId = await createBoard(server, { name: 'e2e large board' })
  const yjs = await docClient(server, boardId)
  const sessions = {}
  let failed = false
  try {
    const stage = yjs.stageId('New')
    yjs.doc.transact(() => {
      for (let i = 0; i < CARDS; i++) yjs.addCard({ stage, pos: `a${String(i).padStart(5, '0')}`, title: `Deal ${i}`, amount: 100 })
    })
    // A second client sees every card: the server has them all.
    const check = await docClient(server, boardId)
    await waitFor(() => check.doc.getMap('cards').size === CARDS, { timeout: 20_000, message: 'the server to hold every card' })
    check.destroy()

    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'large board' })
    // Every change of the connection state, with the number of cards the columns count then.
    await ann.page.addInitScript(() => {
      window.__states = []
      const seen = () => {
        const badge = document.querySelector('[data-connection]')
        if (!badge) return
        const state = badge.getAttribute('data-connection-state')
        const last = window.__states[window.__states.length - 1]
        const cards = [...document.querySelectorAll('[data-stage-count]')].reduce((n, el) => n + Number(el.textContent.replace(/\D/g, '') || 0), 0)
        const loading = document.querySelector('[data-loading]') !== null
        if (!last || last.state !== state || last.loading !== loading) window.__states.push({ state, cards, loading })
      }
      new MutationObserver(seen).observe(document, { subtree: true, childList: true, attributes: true })
    })
    await ann.page.goto(`${server.url}/boards/${boardId}?user=ann`, { waitUntil: 'domcontentloaded' })
    const states = await waitFor(async () => {
      const list = await ann.page.evaluate(() => window.__states)
      return list.some((s) => s.state === 'connected') ? list : null
    }, { timeout: 30_000, message: 'the page to say connected' })
    const live = states.find((s) => s.state === 'connected')
    assert.equal(live.cards, CARDS, `when the page first said Live it counted ${live.cards} cards: ${JSON.stringify(states)}`)
    assert.ok(states.some((s) => s.loading), `no progress bar was shown while loading: ${JSON.stringify(states)}`)
    assert.ok(states.some((s) => s.state === 'loading' || s.state === 'connecting'), JSON.stringify(states))
    assert.equal(await ann.page.locator('[data-connection]').innerText(), 'Live')
  } catch (error) {
    failed = true
    throw error
  } finally {
    await saveArtifacts(FILE, 'large board', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    yjs.destroy()
  }
})

test('workload and the board totals count open deals only; won and lost are apart', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'open totals',
    users: ['ann'],
    seed: (yjs) => {
      const s = (name) => yjs.stageId(name)
      yjs.addCard({ stage: s('New'), title: 'Open 1', amount: 100_00, responsible: 'ann' })
      yjs.addCard({ stage: s('In progress'), title: 'Open 2', amount: 200_00, responsible: 'ann' })
      yjs.addCard({ stage: s('Won'), title: 'Won deal', amount: 300_00, responsible: 'ann' })
      yjs.addCard({ stage: s('Lost'), title: 'Lost deal', amount: 400_00, responsible: 'bob' })
      return {}
    }
  }, async ({ ann }) => {
    const total = (kind) => ann.page.locator(`[data-board-total="${kind}"]`).first().innerText()
    await eventually('the totals to count open, won and lost apart', async () => {
      assert.match(await total('open'), /^2 open cards · \$300\.00$/)
      assert.match(await total('won'), /^Won 1 · \$300\.00$/)
      assert.match(await total('lost'), /^Lost 1 · \$400\.00$/)
    }, { describe: () => describe(ann.page) })

    await ann.page.locator('[data-action="toggle-workload"]').click()
    const panel = ann.page.locator('[data-panel="workload"]').first()
    await eventually('the workload to count ann\'s two open deals and no row for bob\'s lost one', async () => {
      const rows = await panel.locator('[data-workload-user]').evaluateAll((els) => els.map((el) => ({
        user: el.getAttribute('data-workload-user'),
        cards: el.querySelector('[data-workload-cards]').textContent.trim(),
        amount: el.querySelector('[data-workload-amount]').textContent.trim()
      })))
      assert.deepEqual(rows, [{ user: 'ann', cards: '2', amount: '$300.00' }])
    }, { describe: () => describe(ann.page) })
  })
)

test('the stage editor: no Delete on the success or the last failure stage; cards go to open stages', { timeout: TEST_TIMEOUT }, () =>
  scenario({ browser, server, file: FILE, name: 'stage delete', users: ['ann'] }, async ({ ann, yjs }) => {
    const { page } = ann
    const editor = async (name) => {
      await page.locator(`[data-stage-id="${yjs.stageId(name)}"] [data-action="edit-stage"]`).click()
      const form = page.locator('form[data-form="stage"]').first()
      await form.waitFor({ state: 'visible' })
      return form
    }
    const close = async (form) => {
      await page.keyboard.press('Escape')
      await form.waitFor({ state: 'hidden' })
    }
    for (const name of ['New', 'Won']) {
      const form = await editor(name)
      assert.equal(await form.locator('[data-action="delete-stage"]').count(), 0, `${name} offers Delete`)
      await close(form)
    }

    const form = await editor('Invoice sent')
    await form.locator('[data-action="delete-stage"]').click()
    const offered = await form.locator('select[name="cards-to"] option').allInnerTexts()
    assert.deepEqual(offered, ['New', 'Preparing documents', 'In progress'], 'the stages a deleted stage\'s cards may go to')
    await close(form)

    // A failure stage with another beside it may go: its cards to an open stage or the other one.
    const lost = await editor('Lost')
    await lost.locator('[data-action="delete-stage"]').click()
    const options = await lost.locator('select[name="cards-to"] option').allInnerTexts()
    assert.deepEqual(options, ['New', 'Preparing documents', 'Invoice sent', 'In progress', 'Failure analysis'])
    await close(lost)

    // Once Failure analysis is gone, Lost is the last failure stage: no Delete.
    const analysis = await editor('Failure analysis')
    await analysis.locator('[data-action="delete-stage"]').click()
    await analysis.locator('[data-action="confirm-delete-stage"]').click()
    await eventually('six columns', async () => assert.equal((await snapshot(page)).columns.length, 6), { describe: () => describe(page) })
    const last = await editor('Lost')
    assert.equal(await last.locator('[data-action="delete-stage"]').count(), 0, 'the last failure stage offers Delete')
    await close(last)
  })
)

test('timeline rows say what they are; a missed call is not "Incoming"; an idle card says Nothing planned', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'timeline kinds',
    users: ['ann'],
    seed: (yjs) => ({ deal: yjs.addCard({ stage: yjs.stageId('In progress'), title: 'Timeline deal' }) })
  }, async ({ boardId, ann, seeded: { deal } }) => {
    await eventually('the idle card to show the Nothing planned mark, not a 0', async () => {
      const face = cardOf(await snapshot(ann.page), deal)
      assert.equal(face.counter.state, 'idle')
      assert.equal(face.counter.text, 'Nothing planned')
    }, { describe: () => describe(ann.page) })

    for (const event of [
      { kind: 'comment', text: 'Spoke to the buyer' },
      { kind: 'call', direction: 'missed', text: '' },
      { kind: 'call', direction: 'outgoing', text: 'Left a message' },
      { kind: 'chat', direction: 'incoming', text: 'Any news?' }
    ]) {
      const response = await api('POST', `/boards/${boardId}/cards/${deal}/timeline`, event)
      assert.equal(response.status, 201, JSON.stringify(response.body))
    }
    const panel = await openCard(ann.page, deal)
    await eventually('four labelled timeline rows', async () => {
      const rows = await panel.locator('[data-timeline-kind]').evaluateAll((els) => els.map((el) => [
        el.getAttribute('data-timeline-kind'),
        el.getAttribute('data-timeline-direction'),
        el.querySelector('[data-timeline-label]')?.textContent
      ]))
      assert.deepEqual(rows.sort(), [
        ['call', 'missed', 'Missed call'],
        ['call', 'outgoing', 'Outgoing call'],
        ['chat', 'incoming', 'Chat message received'],
        ['comment', '', 'Comment']
      ])
    }, { describe: () => describe(ann.page) })
    await eventually('the missed call\'s activity to say it was missed, never "Incoming"', async () => {
      const rows = await panel.locator('[data-activity-id]').allInnerTexts()
      assert.ok(rows.some((r) => /Missed call/.test(r)), JSON.stringify(rows))
      for (const row of rows) assert.doesNotMatch(row, /Incoming/, row)
    }, { describe: () => describe(ann.page) })
  })
)

test('on a phone: no sideways scroll, a header that fits, one column at a time with a stage switcher', { timeout: TEST_TIMEOUT }, async () => {
  const boardId = await createBoard(server, { name: 'e2e a long board name that a phone must cut short' })
  const yjs = await docClient(server, boardId)
  const stages = { New: yjs.stageId('New'), IP: yjs.stageId('In progress') }
  const deal = yjs.addCard({ stage: stages.New, title: 'Phone deal', amount: 100_00 })
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await openBoard(browser, server, boardId, 'ann', { testName: 'phone', viewport: { width: 390, height: 844 }, mobile: true })
    const { page } = ann
    const layout = () => page.evaluate(() => {
      const header = document.querySelector('header')
      const shown = [...document.querySelectorAll('[data-stage-id]')].filter((el) => el.getClientRects().length > 0)
      return {
        pageWidth: document.documentElement.scrollWidth,
        viewport: window.innerWidth,
        headerOverflow: header.scrollWidth - header.clientWidth,
        headerBottom: header.getBoundingClientRect().bottom,
        shown: shown.map((el) => el.getAttribute('data-stage-id')),
        columnRight: Math.max(...shown.map((el) => el.getBoundingClientRect().right))
      }
    })
    let l = await layout()
    assert.ok(l.pageWidth <= l.viewport, `the page scrolls sideways: ${JSON.stringify(l)}`)
    assert.ok(l.headerOverflow <= 0, `the header does not fit: ${JSON.stringify(l)}`)
    assert.ok(l.headerBottom < 140, `the header takes too much height: ${JSON.stringify(l)}`)
    assert.deepEqual(l.shown, [stages.New], 'one column, the first')
    assert.ok(l.columnRight <= l.viewport, `the column is wider than the screen: ${JSON.stringify(l)}`)
    assert.ok(await card(page, deal).isVisible())

    await page.locator('select[data-stage-switcher]').selectOption(stages.IP)
    l = await layout()
    assert.deepEqual(l.shown, [stages.IP], 'the switcher shows In progress')
    await page.locator('[data-action="next-stage"]').click()
    assert.deepEqual((await layout()).shown, [yjs.stageId('Won')], 'next after In progress: Won')
    for (let i = 0; i < 4; i++) await page.locator('[data-action="previous-stage"]').click()
    assert.deepEqual((await layout()).shown, [stages.New], 'four steps back: New')
    assert.ok(await page.locator('[data-action="previous-stage"]').isDisabled(), 'no stage before New')

    // A card moves to another stage from its panel (no drag across columns on a phone).
    const panel = await openCard(page, deal)
    await panel.locator('select').first().selectOption(stages.IP)
    await waitFor(() => yjs.card(deal).stage === stages.IP, { message: 'the move from the panel to be stored' })
  } catch (error) {
    failed = true
    throw error
  } finally {
    await saveArtifacts(FILE, 'phone', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    yjs.destroy()
  }
})

test('axe-core finds no critical or serious violation on the home page and on a board', { timeout: TEST_TIMEOUT }, async () => {
  const boardId = await createBoard(server, { name: 'e2e accessible board' })
  const yjs = await docClient(server, boardId)
  const s = (name) => yjs.stageId(name)
  const due = yjs.addCard({ stage: s('New'), title: 'Due deal', amount: 100_00, client: 'Acme', responsible: 'ann' })
  yjs.addActivity({ card: due, subject: 'Call now', deadline: Date.now() + 60_000 })
  const incoming = yjs.addCard({ stage: s('In progress'), title: 'Incoming deal', amount: 200_00 })
  yjs.addActivity({ card: incoming, direction: 'incoming', subject: 'They called', deadline: Date.now() })
  const planned = yjs.addCard({ stage: s('In progress'), title: 'Planned deal', amount: 200_00 })
  yjs.addActivity({ card: planned, subject: 'Later', deadline: Date.now() + 86_400_000 })
  yjs.addCard({ stage: s('In progress'), title: 'Idle deal', amount: 200_00 })
  yjs.addCard({ stage: s('Won'), title: 'Won deal', amount: 300_00 })
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'axe' })
    await ann.page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded' })
    await ann.page.locator(`a[data-board-link="${boardId}"]`).first().waitFor()
    assert.deepEqual(await seriousViolations(ann.page), [], 'the home page')

    await ann.page.goto(`${server.url}/boards/${boardId}?user=ann`, { waitUntil: 'domcontentloaded' })
    await eventually('the board to show its cards, live', async () => {
      const shown = await snapshot(ann.page)
      assert.equal(shown.connection, 'connected')
      assert.equal(shown.columns.reduce((n, c) => n + c.cards.length, 0), 5)
    }, { describe: () => describe(ann.page) })
    assert.deepEqual(await seriousViolations(ann.page), [], 'the board')

    await ann.page.locator('[data-action="toggle-workload"]').click()
    await openCard(ann.page, due)
    // The panel slides in (0.16 s): check it once it stands still, not half transparent.
    await ann.page.waitForTimeout(500)
    assert.deepEqual(await seriousViolations(ann.page), [], 'the board with the workload and a card panel open')
  } catch (error) {
    failed = true
    throw error
  } finally {
    await saveArtifacts(FILE, 'axe', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    yjs.destroy()
  }
})

test('no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
