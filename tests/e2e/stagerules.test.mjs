// A stage's rules in the browser: won and lost (the bar at the bottom of the board, the fields a
// stage requires asked for before the move, a stock client's move that lacks them taken back by
// the server), the forecast (each stage's probability, the weighted sum of a column, the view by
// expected close month), the activity bar of a column (its segments filter the column) and
// stale (rotting) cards; and an admin setting a stage's rules in the stage editor.
//
// Three of these cases once timed out waiting for the dialog and the probabilities: the board's
// store kept a stage it had read before the stage's rules arrived (a sync in pieces, an edit of
// the rules alone), so it never saw them; test/store.test.ts has the unit case.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  card,
  column,
  columnOf,
  consoleLog,
  describeBoth,
  eventually,
  moneyValue,
  placesOf,
  scenario,
  serverAndBrowser,
  snapshot,
  TEST_TIMEOUT,
  waitFor
} from './helpers.mjs'

const FILE = import.meta.url
const DAY = 24 * 60 * 60 * 1000

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

/** Sets keys of a stage map, as an admin's client writes them. */
function setStage (yjs, stage, entries) {
  yjs.doc.transact(() => {
    const map = yjs.doc.getMap('stages').get(stage)
    for (const [key, value] of Object.entries(entries)) map.set(key, value)
  })
}

/** Drags a card onto any element with real mouse moves (as helpers' dragCard does for columns). */
async function dragOnto (page, cardId, target) {
  const source = card(page, cardId)
  await source.scrollIntoViewIfNeeded()
  const from = await source.locator('[data-card-field="title"]').first().boundingBox()
  const box = await target.boundingBox()
  assert.ok(from && box, 'the card and the target have boxes')
  const start = { x: from.x + Math.min(from.width / 2, 30), y: from.y + Math.min(from.height / 2, 10) }
  const to = { x: box.x + box.width / 2, y: box.y + box.height / 2 }
  await page.mouse.move(start.x, start.y)
  await page.mouse.down()
  await page.mouse.move(start.x + 8, start.y + 8, { steps: 4 })
  await page.mouse.move(to.x, to.y, { steps: 15 })
  await page.mouse.move(to.x + 2, to.y + 2, { steps: 2 })
  await page.mouse.up()
}

function stageOf (s, cardId) {
  return placesOf(s, cardId).map((p) => p.column)
}

test('won and lost: the bar at the bottom asks for what the stage requires; a stock move without it is taken back', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'won and lost',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), Won: yjs.stageId('Won'), Lost: yjs.stageId('Lost') }
      setStage(yjs, stages.Won, { required: ['amount'] })
      setStage(yjs, stages.Lost, { required: ['lostReason'] })
      yjs.setBoard('lostReasons', ['Too expensive', 'Went silent'])
      const lost = yjs.addCard({ stage: stages.New, title: 'Initech renewal', pos: 'a0' })
      const won = yjs.addCard({ stage: stages.New, title: 'Umbrella deal', pos: 'a1' })
      const stock = yjs.addCard({ stage: stages.New, title: 'Stock mover', pos: 'a2' })
      return { stages, lost, won, stock }
    }
  }, async ({ ann, bob, yjs, seeded: { stages, lost, won, stock } }) => {
    const both = describeBoth(ann, bob)
    // Lost, through the bar: the dialog offers the board's reasons.
    await dragOnto(ann.page, lost, ann.page.locator(`[data-won-lost="${stages.Lost}"]`).first())
    const dialog = ann.page.locator(`[data-required-dialog="${stages.Lost}"]`).first()
    await dialog.waitFor({ state: 'visible' })
    const reasons = await dialog.locator('select[name="lostReason"] option').evaluateAll((o) => o.map((x) => x.value))
    assert.deepEqual(reasons, ['', 'Too expensive', 'Went silent'])
    // Without a reason it does not move.
    await dialog.locator('[data-action="confirm-move"]').click()
    await dialog.locator('.form-error').waitFor({ state: 'visible' })
    assert.deepEqual(stageOf(await snapshot(ann.page), lost), [stages.New])
    await dialog.locator('select[name="lostReason"]').selectOption('Went silent')
    await dialog.locator('[data-action="confirm-move"]').click()
    await waitFor(() => yjs.card(lost)?.stage === stages.Lost, { message: () => `the card in Lost: ${JSON.stringify(yjs.card(lost))}` })
    assert.equal(yjs.card(lost).lostReason, 'Went silent')
    await eventually('bob to see the lost card in Lost', async () => {
      assert.deepEqual(stageOf(await snapshot(bob.page), lost), [stages.Lost])
    }, { describe: both })

    // Won, dragged onto the Won column: the amount is asked for; cancelling leaves it where it was.
    await dragOnto(ann.page, won, column(ann.page, stages.Won))
    const winDialog = ann.page.locator(`[data-required-dialog="${stages.Won}"]`).first()
    await winDialog.waitFor({ state: 'visible' })
    await winDialog.locator('[data-action="cancel-move"]').click()
    await winDialog.waitFor({ state: 'detached' })
    assert.deepEqual(stageOf(await snapshot(ann.page), won), [stages.New])
    await dragOnto(ann.page, won, ann.page.locator(`[data-won-lost="${stages.Won}"]`).first())
    await winDialog.waitFor({ state: 'visible' })
    await winDialog.locator('input[name="amount"]').fill('1250')
    await winDialog.locator('[data-action="confirm-move"]').click()
    await waitFor(() => yjs.card(won)?.stage === stages.Won, { message: () => `the card in Won: ${JSON.stringify(yjs.card(won))}` })
    assert.equal(yjs.card(won).amount, 125000)
    await eventually('bob to see the won card in Won with its amount', async () => {
      const s = await snapshot(bob.page)
      assert.deepEqual(stageOf(s, won), [stages.Won])
      assert.equal(moneyValue(columnOf(s, stages.Won).sum), 1250)
    }, { describe: both })

    // A stock Yjs client moves a card into Won without an amount: the server takes it back.
    yjs.doc.transact(() => {
      const map = yjs.doc.getMap('cards').get(stock)
      map.set('stage', stages.Won)
      map.set('pos', 'a5')
    })
    await waitFor(() => yjs.card(stock)?.stage === stages.New, {
      message: () => `the stock client's card back in New: ${JSON.stringify(yjs.card(stock))}`
    })
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show the stock card in New`, async () => {
        assert.deepEqual(stageOf(await snapshot(session.page), stock), [stages.New])
      }, { describe: both })
    }
  })
)

test('forecast: a column shows its weighted sum, the forecast view groups cards by close month', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'forecast',
    users: ['ann'],
    seed: (yjs) => {
      const stages = { IS: yjs.stageId('Invoice sent'), Won: yjs.stageId('Won'), Lost: yjs.stageId('Lost') }
      setStage(yjs, stages.IS, { probability: 60 })
      const march = new Date(2031, 2, 10).getTime()
      const april = new Date(2031, 3, 20).getTime()
      const a = yjs.addCard({ stage: stages.IS, title: 'Hooli', amount: 1000_00, pos: 'a0' })
      const b = yjs.addCard({ stage: stages.IS, title: 'Pied Piper', amount: 500_00, pos: 'a1' })
      const c = yjs.addCard({ stage: stages.Won, title: 'Aviato', amount: 200_00 })
      const d = yjs.addCard({ stage: stages.Lost, title: 'Nucleus', amount: 9000_00 })
      yjs.doc.transact(() => {
        const cards = yjs.doc.getMap('cards')
        cards.get(a).set('closeDate', march)
        cards.get(b).set('closeDate', april)
        cards.get(c).set('closeDate', march)
        cards.get(d).set('closeDate', march)
      })
      return { stages }
    }
  }, async ({ ann, seeded: { stages } }) => {
    const weighted = ann.page.locator(`[data-stage-id="${stages.IS}"] [data-stage-weighted]`).first()
    await eventually('the weighted sum of Invoice sent (60% of $1,500)', async () => {
      assert.equal(moneyValue(await weighted.textContent()), 900)
      assert.match(await ann.page.locator(`[data-stage-id="${stages.IS}"] [data-stage-probability]`).first().textContent(), /60%/)
    })
    await ann.page.locator('[data-action="toggle-forecast"]').click()
    const panel = ann.page.locator('[data-forecast]').first()
    await panel.waitFor({ state: 'visible' })
    const row = (month) => panel.locator(`[data-forecast-month="${month}"]`).first()
    // March: Hooli ($1,000 at 60%) and the won Aviato ($200 at 100%); lost Nucleus is left out.
    assert.equal(await row('2031-03').locator('[data-forecast-cards]').textContent(), '2')
    assert.equal(moneyValue(await row('2031-03').locator('[data-forecast-sum]').textContent()), 1200)
    assert.equal(moneyValue(await row('2031-03').locator('[data-forecast-weighted]').textContent()), 800)
    assert.equal(moneyValue(await row('2031-04').locator('[data-forecast-weighted]').textContent()), 300)
    const months = await panel.locator('[data-forecast-month]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-forecast-month')))
    assert.deepEqual(months, ['2031-03', '2031-04'])
  })
)

test('activity bar: segments count overdue, today, planned and none, and filter the column; idle cards rot', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'activity bar and rotting',
    users: ['ann'],
    seed: (yjs) => {
      const stage = yjs.stageId('In progress')
      setStage(yjs, stage, { rotDays: 3 })
      const now = Date.now()
      const overdue = yjs.addCard({ stage, title: 'Overdue', pos: 'a0' })
      const today = yjs.addCard({ stage, title: 'Today', pos: 'a1' })
      const planned = yjs.addCard({ stage, title: 'Planned', pos: 'a2' })
      const idle = yjs.addCard({ stage, title: 'Idle', pos: 'a3' })
      const fresh = yjs.addCard({ stage, title: 'Fresh', pos: 'a4' })
      const endOfToday = new Date()
      endOfToday.setHours(23, 59, 0, 0)
      yjs.addActivity({ card: overdue, subject: 'Call back', deadline: now - 3 * DAY })
      yjs.addActivity({ card: today, subject: 'Send quote', deadline: endOfToday.getTime() })
      yjs.addActivity({ card: planned, subject: 'Meet', deadline: now + 5 * DAY })
      // Idle: created ten days ago, nothing planned since: stale. Fresh: created now.
      yjs.doc.transact(() => {
        const cards = yjs.doc.getMap('cards')
        cards.get(idle).set('createdAt', now - 10 * DAY)
        cards.get(idle).set('updatedAt', now - 10 * DAY)
        cards.get(planned).set('createdAt', now - 10 * DAY)
      })
      return { stage, overdue, today, planned, idle, fresh }
    }
  }, async ({ ann, seeded: { stage, overdue, today, planned, idle, fresh } }) => {
    const bar = ann.page.locator(`[data-stage-id="${stage}"] [data-activity-bar]`).first()
    const segment = (status) => bar.locator(`[data-activity-status="${status}"]`).first()
    await eventually('the activity bar counts', async () => {
      assert.equal(await segment('overdue').getAttribute('data-count'), '1')
      assert.equal(await segment('today').getAttribute('data-count'), '1')
      assert.equal(await segment('planned').getAttribute('data-count'), '1')
      assert.equal(await segment('none').getAttribute('data-count'), '2')
    })
    const shown = async () => columnOf(await snapshot(ann.page), stage).cards.map((c) => c.id)
    await segment('overdue').click()
    await eventually('only the overdue card shown', async () => assert.deepEqual(await shown(), [overdue]))
    assert.equal(await segment('overdue').getAttribute('aria-pressed'), 'true')
    await segment('none').click()
    await eventually('only the cards without activity shown', async () => assert.deepEqual(await shown(), [idle, fresh]))
    await segment('none').click()
    await eventually('every card shown again', async () =>
      assert.deepEqual(await shown(), [overdue, today, planned, idle, fresh]))
    // Rotting: the idle card is stale; the one with something planned is not, nor the fresh one.
    const stale = await ann.page
      .locator(`[data-stage-id="${stage}"] .card-slot[data-stale] [data-card-id]`)
      .evaluateAll((cards) => cards.map((c) => c.getAttribute('data-card-id')))
    assert.deepEqual(stale, [idle])
  })
)

test('an admin sets a stage\'s probability, rot days and required fields in the stage editor', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'stage rules form',
    users: ['ann'],
    seed: (yjs) => ({ stage: yjs.stageId('Invoice sent'), initial: yjs.stageId('New') })
  }, async ({ ann, yjs, seeded: { stage, initial } }) => {
    await column(ann.page, stage).locator('[data-action="edit-stage"]').first().click()
    const form = ann.page.locator('form[data-form="stage-rules"]').first()
    await form.waitFor({ state: 'visible' })
    await form.locator('input[name="probability"]').fill('40')
    await form.locator('input[name="rotDays"]').fill('14')
    await form.locator('input[data-required="amount"]').check()
    await form.locator('input[data-required="closeDate"]').check()
    await form.locator('[data-action="save-stage-rules"]').click()
    await waitFor(() => {
      const s = yjs.doc.getMap('stages').get(stage)
      return s?.get('probability') === 40 && s?.get('rotDays') === 14 &&
        JSON.stringify(s?.get('required')) === JSON.stringify(['amount', 'closeDate'])
    }, { message: () => `the stage's rules in the document: ${JSON.stringify(yjs.doc.getMap('stages').get(stage)?.toJSON())}` })
    await eventually('the column to show its new probability', async () => {
      assert.match(await ann.page.locator(`[data-stage-id="${stage}"] [data-stage-probability]`).first().textContent(), /40%/)
    })
    // The initial stage offers no required fields.
    await column(ann.page, initial).locator('[data-action="edit-stage"]').first().click()
    const initialForm = ann.page.locator('form[data-form="stage-rules"]').first()
    await initialForm.waitFor({ state: 'visible' })
    assert.equal(await initialForm.locator('input[data-required]').count(), 0)
  })
)

test('no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
