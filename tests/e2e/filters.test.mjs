// Find and filter in the browser (issue 20): the toolbar's search (title, client, e-mail,
// amount), a combination of filters, the state in the address (a reload keeps it, back and
// forward walk it), the filtered counts and sums with the Filtered line and Clear, saved views
// (per user), the activity bar's segments setting the board's status filter, the stage filter,
// a card that starts to match while filtered (a live edit), and a 10,000-card board that stays
// quick to search.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  columnOf,
  consoleLog,
  eventually,
  moneyValue,
  newSession,
  openBoard,
  scenario,
  seriousViolations,
  serverAndBrowser,
  snapshot,
  TEST_TIMEOUT,
  waitUntilReady
} from './helpers.mjs'

const FILE = import.meta.url
const DAY = 24 * 60 * 60 * 1000

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

/** The ids of every card shown, board order. */
async function shownIds (page) {
  return (await snapshot(page)).columns.flatMap((c) => c.cards.map((card) => card.id))
}

/** The filter's query parameters of the page's address (the rest, such as `user`, left out). */
async function filterParams (page) {
  const params = new URL(page.url()).searchParams
  params.delete('user')
  return params.toString()
}

function seedDeals (yjs) {
  const stages = { New: yjs.stageId('New'), IP: yjs.stageId('In progress'), Won: yjs.stageId('Won') }
  const now = Date.now()
  const cards = {
    acme: yjs.addCard({ stage: stages.New, title: 'Acme renewal', client: 'Acme Corp', amount: 1250_00, responsible: 'ann', pos: 'a0' }),
    globex: yjs.addCard({ stage: stages.New, title: 'Globex expansion', client: 'Globex', amount: 800_00, responsible: 'bob', pos: 'a1' }),
    initech: yjs.addCard({ stage: stages.IP, title: 'Initech licences', client: 'Initech', amount: 300_00, responsible: 'ann', pos: 'a0' }),
    hooli: yjs.addCard({ stage: stages.IP, title: 'Hooli pilot', client: 'Hooli', amount: 5000_00, responsible: 'ann', pos: 'a1' }),
    umbrella: yjs.addCard({ stage: stages.Won, title: 'Umbrella', client: 'Umbrella', amount: 200_00, responsible: '', pos: 'a0' })
  }
  yjs.doc.transact(() => {
    const map = yjs.doc.getMap('cards')
    map.get(cards.globex).set('email', 'buyer@globex.example')
    // Created on 2 January 2020 (UTC, the pages' time zone), changed then too.
    map.get(cards.hooli).set('createdAt', Date.UTC(2020, 0, 2, 10))
    map.get(cards.hooli).set('updatedAt', Date.UTC(2020, 0, 2, 10))
  })
  yjs.addActivity({ card: cards.initech, subject: 'Call back', deadline: now - 3 * DAY })
  yjs.addActivity({ card: cards.acme, subject: 'Send quote', deadline: now + 5 * DAY })
  yjs.addActivity({ card: cards.hooli, subject: 'Chase', deadline: now - 2 * DAY })
  return { stages, cards }
}

test('search, a combination of filters, the address round trip, clearing', { timeout: TEST_TIMEOUT }, () =>
  scenario({ browser, server, file: FILE, name: 'search and filters', users: ['ann'], seed: seedDeals },
    async ({ ann, yjs, seeded: { stages, cards } }) => {
      const { page } = ann
      const all = await shownIds(page)
      assert.equal(all.length, 5)
      const search = page.locator('[data-filter-search]').first()
      const summary = page.locator('[data-filter-summary]').first()

      // Search by title, client (any case), e-mail and amount.
      await search.fill('acme')
      await eventually('only Acme shown', async () => assert.deepEqual(await shownIds(page), [cards.acme]))
      assert.equal(await filterParams(page), 'q=acme')
      assert.equal(await summary.getAttribute('data-shown'), '1')
      assert.equal(await summary.getAttribute('data-total'), '5')
      const s = await snapshot(page)
      assert.equal(columnOf(s, stages.New).count, '1', 'the column counts the cards shown')
      assert.equal(moneyValue(columnOf(s, stages.New).sum), 1250, 'the column sums the cards shown')
      assert.equal(await page.locator(`[data-stage-id="${stages.New}"] [data-stage-count]`).getAttribute('data-stage-total'), '2')
      await search.fill('GLOBEX.example')
      await eventually('the e-mail finds Globex', async () => assert.deepEqual(await shownIds(page), [cards.globex]))
      await search.fill('1,250')
      await eventually('the amount finds Acme', async () => assert.deepEqual(await shownIds(page), [cards.acme]))
      await search.fill('>1000')
      await eventually('amounts over 1000', async () => assert.deepEqual(await shownIds(page), [cards.acme, cards.hooli]))
      await search.fill('')
      await eventually('everything again', async () => assert.deepEqual(await shownIds(page), all))
      assert.equal(await summary.count(), 0, 'no Filtered line without a filter')

      // A combination: Ann's cards with an overdue activity.
      await page.locator('[data-action="toggle-filters"]').click()
      const form = page.locator('form[data-form="filters"]').first()
      await form.locator('input[data-filter-responsible="ann"]').check()
      await eventually('Ann\'s cards', async () => assert.deepEqual(await shownIds(page), [cards.acme, cards.initech, cards.hooli]))
      await form.locator('input[data-filter-state="overdue"]').check()
      await eventually('Ann\'s overdue cards', async () => assert.deepEqual(await shownIds(page), [cards.initech, cards.hooli]))
      assert.equal(await filterParams(page), 'responsible=ann&state=overdue')
      assert.equal(moneyValue((await snapshot(page)).columns.find((c) => c.id === stages.IP).sum), 5300)
      // Created in January 2020 narrows it to Hooli.
      await form.locator('input[name="created-from"]').fill('2020-01-01')
      await form.locator('input[name="created-to"]').fill('2020-01-31')
      await eventually('created in January 2020', async () => assert.deepEqual(await shownIds(page), [cards.hooli]))
      assert.equal(await filterParams(page), 'responsible=ann&state=overdue&created=2020-01-01..2020-01-31')
      assert.equal(await page.locator('[data-filter-chip]').count(), 3)
      // The open filter form and the Filtered line pass axe.
      assert.deepEqual(await seriousViolations(page), [])

      // A reload keeps it all, the form too.
      await page.reload({ waitUntil: 'domcontentloaded' })
      await waitUntilReady(ann)
      await eventually('the filter survives a reload', async () => assert.deepEqual(await shownIds(page), [cards.hooli]))
      await page.locator('[data-action="toggle-filters"]').click()
      assert.equal(await page.locator('input[data-filter-responsible="ann"]').isChecked(), true)
      assert.equal(await page.locator('input[name="created-to"]').inputValue(), '2020-01-31')

      // Back takes out the last change (the end of the range), then the start; forward redoes it.
      await page.goBack()
      await eventually('back: created from 2020-01-01 on', async () =>
        assert.equal(await filterParams(page), 'responsible=ann&state=overdue&created=2020-01-01..'))
      await page.goBack()
      await eventually('back: Ann\'s overdue cards', async () => assert.deepEqual(await shownIds(page), [cards.initech, cards.hooli]))
      await page.goForward()
      await page.goForward()
      await eventually('forward: Hooli alone again', async () => assert.deepEqual(await shownIds(page), [cards.hooli]))

      // A chip takes its part out; Clear takes everything out and keeps the user in the address.
      await page.locator('[data-filter-chip="created"]').click()
      await eventually('without the dates', async () => assert.deepEqual(await shownIds(page), [cards.initech, cards.hooli]))
      await page.locator('[data-action="clear-filters"]').click()
      await eventually('cleared', async () => assert.deepEqual(await shownIds(page), all))
      assert.equal(await filterParams(page), '')
      assert.equal(new URL(page.url()).searchParams.get('user'), 'ann')

      // Filtered, a card that starts to match shows at once (a live edit from another client).
      await search.fill('pilot')
      await eventually('Hooli pilot', async () => assert.deepEqual(await shownIds(page), [cards.hooli]))
      yjs.doc.transact(() => yjs.doc.getMap('cards').get(cards.globex).set('title', 'Globex pilot'))
      await eventually('Globex pilot shows too', async () =>
        assert.deepEqual((await shownIds(page)).sort(), [cards.globex, cards.hooli].sort()))

      // A card created here that the filter hides: it is created, and a notice says why it is not shown.
      await page.locator(`[data-stage-id="${stages.New}"] [data-action="add-card"]`).first().click()
      const quick = page.locator('form[data-form="quick-create"]').first()
      await quick.locator('input[name="title"]').fill('Zeta deal')
      await quick.locator('button[type="submit"]').first().click()
      await page.locator('[data-notice="card-hidden"]').first().waitFor({ state: 'visible' })
      await eventually('the new card in the document', async () =>
        assert.ok(Object.values(yjs.doc.getMap('cards').toJSON()).some((c) => c.title === 'Zeta deal')))
      assert.deepEqual((await shownIds(page)).sort(), [cards.globex, cards.hooli].sort())
    })
)

test('saved views: name a filter set, pick it later; they are the user\'s own', { timeout: TEST_TIMEOUT }, () =>
  scenario({ browser, server, file: FILE, name: 'saved views', users: ['ann'], seed: seedDeals },
    async ({ ann, boardId, seeded: { cards } }) => {
      const { page } = ann
      const all = await shownIds(page)
      await page.locator('[data-action="toggle-filters"]').click()
      await page.locator('input[data-filter-responsible="ann"]').check()
      await page.locator('input[data-filter-state="overdue"]').check()
      await eventually('Ann\'s overdue cards', async () => assert.deepEqual(await shownIds(page), [cards.initech, cards.hooli]))
      await page.locator('[data-action="save-view"]').click()
      const name = page.locator('form[data-form="save-view"] input[name="view-name"]')
      await name.fill('My overdue')
      await page.locator('[data-action="confirm-save-view"]').click()
      const views = page.locator('select[data-saved-views]').first()
      await eventually('the view is listed and current', async () => assert.equal(await views.inputValue(), 'My overdue'))

      await page.locator('[data-action="clear-filters"]').click()
      await eventually('cleared', async () => assert.deepEqual(await shownIds(page), all))
      assert.equal(await views.inputValue(), '')
      await views.selectOption('My overdue')
      await eventually('the view brings its filters back', async () =>
        assert.deepEqual(await shownIds(page), [cards.initech, cards.hooli]))
      assert.equal(await filterParams(page), 'responsible=ann&state=overdue')

      // Kept by a reload; another user of the same browser's board does not have it.
      await page.reload({ waitUntil: 'domcontentloaded' })
      await waitUntilReady(ann)
      await eventually('still listed after a reload', async () =>
        assert.deepEqual(await page.locator('select[data-saved-views] option[data-saved-view]').evaluateAll((o) => o.map((x) => x.value)), ['My overdue']))
      const bob = await openBoard(browser, server, boardId, 'bob', { testName: 'saved views' })
      try {
        assert.equal(await bob.page.locator('select[data-saved-views]').count(), 0, 'bob has no saved views')
      } finally {
        await bob.context.close()
      }

      // Delete it.
      await page.locator('select[data-saved-views]').selectOption('My overdue')
      await page.locator('[data-action="delete-view"]').click()
      await eventually('no view left', async () => assert.equal(await page.locator('select[data-saved-views]').count(), 0))
    })
)

test('the activity bar filters the board; the stage filter shows only its columns', { timeout: TEST_TIMEOUT }, () =>
  scenario({ browser, server, file: FILE, name: 'activity bar and stages', users: ['ann'], seed: seedDeals },
    async ({ ann, seeded: { stages, cards } }) => {
      const { page } = ann
      const all = await shownIds(page)
      const segment = (stage, status) => page.locator(`[data-stage-id="${stage}"] [data-activity-status="${status}"]`).first()
      await segment(stages.IP, 'overdue').click()
      await eventually('overdue cards on the whole board', async () =>
        assert.deepEqual(await shownIds(page), [cards.initech, cards.hooli]))
      assert.equal(await filterParams(page), 'state=overdue')
      assert.equal(await segment(stages.IP, 'overdue').getAttribute('aria-pressed'), 'true')
      // The New column's bar still counts its cards by status (the rest of the filter only).
      assert.equal(await segment(stages.New, 'planned').getAttribute('data-count'), '1')
      assert.equal(await segment(stages.New, 'none').getAttribute('data-count'), '1')
      await segment(stages.New, 'none').click()
      await eventually('cards with no activity', async () => assert.deepEqual(await shownIds(page), [cards.globex, cards.umbrella]))
      await segment(stages.New, 'none').click()
      await eventually('all again', async () => assert.deepEqual(await shownIds(page), all))
      assert.equal(await filterParams(page), '')

      await page.locator('[data-action="toggle-filters"]').click()
      await page.locator(`input[data-filter-stage="${stages.IP}"]`).check()
      await page.locator(`input[data-filter-stage="${stages.Won}"]`).check()
      await eventually('two columns', async () =>
        assert.deepEqual((await snapshot(page)).columns.map((c) => c.id), [stages.IP, stages.Won]))
      assert.deepEqual(await shownIds(page), [cards.initech, cards.hooli, cards.umbrella])
      // The toolbar's totals follow: open cards of In progress only.
      assert.match(await page.locator('[data-board-total="open"]').textContent(), /^2 open cards/)
      await page.locator('[data-action="clear-filters"]').click()
      await eventually('every column back', async () => assert.equal((await snapshot(page)).columns.length, 7))
    })
)

test('a 10,000-card board: a search shows its 100 cards, a remote edit under the filter changes only that card, Clear shows all', { timeout: 240_000 }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'ten thousand cards',
    users: [],
    seed: (yjs) => {
      const stages = yjs.stages().filter((s) => s.kind === 'initial' || s.kind === 'progress').map((s) => s.id)
      const needles = []
      // In transactions of 500 cards: one update per transaction, each under the frame limit.
      for (let start = 0; start < 10_000; start += 500) {
        yjs.doc.transact(() => {
          for (let i = start; i < start + 500; i++) {
            const id = yjs.addCard({
              stage: stages[i % stages.length],
              title: `Deal ${i}`,
              client: i % 100 === 0 ? 'Needle Ltd' : `Client ${i % 37}`,
              amount: i * 100,
              responsible: i % 2 === 0 ? 'ann' : 'bob',
              pos: `a${String(i).padStart(5, '0')}`
            })
            if (i % 100 === 0) needles.push(id)
          }
        })
      }
      return { needles }
    }
  }, async ({ yjs, boardId, seeded: { needles } }) => {
    assert.equal(yjs.doc.getMap('cards').size, 10_000)
    // Opened by hand: the board takes longer than openBoard's bound to stream in.
    const ann = await newSession(browser, 'ann', { testName: 'ten thousand cards' })
    await ann.page.goto(`${server.url}/boards/${boardId}?user=ann`, { waitUntil: 'domcontentloaded' })
    try {
      const { page } = ann
      await eventually('all 10,000 cards counted, the board live', async () => {
        assert.equal((await snapshot(page)).connection, 'connected')
        const total = await page.evaluate(() =>
          [...document.querySelectorAll('[data-stage-count]')].reduce((n, el) => n + Number(el.textContent), 0))
        assert.equal(total, 10_000)
      }, { timeout: 60_000 })
      const elapsed = await page.evaluate(async () => {
        const input = document.querySelector('[data-filter-search]')
        const started = performance.now()
        input.value = 'needle'
        input.dispatchEvent(new Event('input', { bubbles: true }))
        input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }))
        // Bounded: a page that never shows the hundred fails here, not at the test's timeout.
        while (document.querySelector('[data-filter-summary]')?.getAttribute('data-shown') !== '100') {
          if (performance.now() - started > 60_000) throw new Error('the search never showed its 100 cards')
          await new Promise((resolve) => requestAnimationFrame(resolve))
        }
        return performance.now() - started
      })
      console.log(`10,000 cards: the search for "needle" shown after ${Math.round(elapsed)} ms`)
      // About 90 ms on a quiet machine, 0.8 s seen while other builds shared its two cores: a
      // figure to read, not a bound (speed is the benchmarks' to judge, not a test's).
      const counts = await page.evaluate(() =>
        [...document.querySelectorAll('[data-stage-count]')].reduce((n, el) => n + Number(el.textContent), 0))
      assert.equal(counts, 100)

      // Filtered, a remote edit of one shown card changes that card and its column's header only.
      const edited = needles[1]
      await page.evaluate(() => {
        window.__touched = { records: 0, cards: new Set() }
        new MutationObserver((records) => {
          for (const record of records) {
            window.__touched.records += 1
            const target = record.target.nodeType === 1 ? record.target : record.target.parentElement
            const cardElement = target?.closest('[data-card-id]')
            if (cardElement) window.__touched.cards.add(cardElement.getAttribute('data-card-id'))
          }
        }).observe(document.querySelector('main.board'), { subtree: true, childList: true, attributes: true, characterData: true })
      })
      yjs.doc.transact(() => yjs.doc.getMap('cards').get(edited).set('title', 'Deal 100 renamed'))
      await page.locator(`[data-card-id="${edited}"]`).filter({ hasText: 'Deal 100 renamed' }).first().waitFor()
      await new Promise((resolve) => setTimeout(resolve, 500))
      const touched = await page.evaluate(() => ({ records: window.__touched.records, cards: [...window.__touched.cards] }))
      console.log(`10,000 cards, filtered: a remote edit made ${touched.records} DOM mutations in ${touched.cards.length} card(s)`)
      assert.deepEqual(touched.cards, [edited], 'only the edited card changed in the DOM')
      // The records count outside the cards too (3 on a quiet run; up to ~100 seen while the
      // machine was loaded): printed above, not bounded.

      const cleared = await page.evaluate(async () => {
        const started = performance.now()
        document.querySelector('[data-action="clear-filters"]').click()
        const total = () => [...document.querySelectorAll('[data-stage-count]')].reduce((n, el) => n + Number(el.textContent), 0)
        while (total() !== 10_000) {
          if (performance.now() - started > 60_000) throw new Error(`Clear showed ${total()} of 10,000 cards`)
          await new Promise((resolve) => requestAnimationFrame(resolve))
        }
        return performance.now() - started
      })
      console.log(`10,000 cards: Clear shows every card again after ${Math.round(cleared)} ms`)
    } finally {
      await ann.context.close()
    }
  })
)

test('no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
