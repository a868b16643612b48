// Configuring stages in the Kanban itself (the pencil and the +), seen live by another user:
// rename and recolour, delete (its cards go to a chosen stage; the initial stage cannot be
// deleted), add.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  assertColumn,
  closeIfOpen,
  column,
  columnOf,
  consoleLog,
  describe,
  eventually,
  placesOf,
  scenario,
  shortId,
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

test('3. a stage renamed and recoloured in one page shows in the other', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: '3 rename and recolour a stage',
    seed: (yjs) => ({ stage: yjs.stageId('Invoice sent'), order: yjs.stages().map((s) => s.id) })
  }, async ({ ann, bob, yjs, seeded: { stage, order } }) => {
    const name = `Contract signed ${shortId()}`
    const color = '#8e44ad'
    const rgb = 'rgb(142, 68, 173)'
    assert.equal(await colourShownIn(bob.page, stage, rgb), null, 'the new colour is not already shown before the change')

    await column(ann.page, stage).locator('[data-action="edit-stage"]').first().click()
    const form = ann.page.locator('form[data-form="stage"]').first()
    await form.waitFor({ state: 'visible' })
    await form.locator('input[name="name"]').fill(name)
    await form.locator('input[name="color"]').fill(color)
    await form.locator('button[type="submit"]').first().click()

    await waitFor(() => {
      const s = yjs.doc.getMap('stages').get(stage)
      return s?.get('name') === name && s?.get('color') === color
    }, { message: () => `the document to have the stage renamed and recoloured: ${JSON.stringify(yjs.doc.getMap('stages').get(stage)?.toJSON())}` })

    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show the stage's new name and colour`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(s.columns.map((c) => c.id), order, 'the columns keep their order')
        assert.equal(columnOf(s, stage).name, name, '[data-stage-name] of the edited column')
        const where = await colourShownIn(session.page, stage, rgb)
        assert.ok(where, `no element of the column shows the colour ${color} (${rgb}) in its computed style`)
      }, { describe: both(ann, bob) })
    }
  })
)

test('deleting a stage moves its cards to the chosen stage, in both pages; the initial stage offers no delete', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'delete a stage',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), IS: yjs.stageId('Invoice sent'), IP: yjs.stageId('In progress') }
      const orphan = yjs.addCard({ stage: stages.IS, title: 'Soylent invoice', amount: 120_00 })
      const resident = yjs.addCard({ stage: stages.IP, title: 'Tyrell support', amount: 30_00 })
      return { stages, orphan, resident }
    }
  }, async ({ ann, bob, yjs, seeded: { stages, orphan, resident } }) => {
    // The initial stage can be renamed, never deleted.
    await column(ann.page, stages.New).locator('[data-action="edit-stage"]').first().click()
    const initialForm = ann.page.locator('form[data-form="stage"]').first()
    await initialForm.waitFor({ state: 'visible' })
    assert.equal(await ann.page.locator('[data-action="delete-stage"]').count(), 0, 'the initial stage offers [data-action="delete-stage"]')
    await closeIfOpen(ann.page, initialForm)

    await column(ann.page, stages.IS).locator('[data-action="edit-stage"]').first().click()
    await ann.page.locator('[data-action="delete-stage"]').first().click()
    await ann.page.locator('select[name="cards-to"]').first().selectOption(stages.IP)
    await ann.page.locator('[data-action="confirm-delete-stage"]').first().click()

    await waitFor(() => !yjs.doc.getMap('stages').has(stages.IS) && yjs.card(orphan)?.stage === stages.IP, {
      message: () => `the document to lose the stage and move its card: ${JSON.stringify(yjs.card(orphan))}`
    })
    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show 6 columns and the card moved to In progress`, async () => {
        const s = await snapshot(session.page)
        assert.equal(s.columns.length, 6, `columns: ${JSON.stringify(s.columns.map((c) => c.name))}`)
        assert.ok(!s.columns.some((c) => c.id === stages.IS), 'the deleted column is gone')
        assert.deepEqual(placesOf(s, orphan).map((p) => p.name), ['In progress'])
        assert.deepEqual(placesOf(s, resident).map((p) => p.name), ['In progress'])
        assertColumn(s, stages.IP, { count: 2, sum: 150 })
      }, { describe: both(ann, bob) })
    }
  })
)

test('adding a stage shows a new column before the final stages, in both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'add a stage',
    seed: (yjs) => ({ existing: yjs.stages().map((s) => s.id), won: yjs.stageId('Won') })
  }, async ({ ann, bob, yjs, seeded: { existing, won } }) => {
    await ann.page.locator('[data-action="add-stage"]').first().click()
    const added = await waitFor(() => yjs.stages().find((s) => !existing.includes(s.id)), {
      message: () => `a new stage in the document: ${JSON.stringify(yjs.stages())}`
    })
    // If adding opens the stage form (to name the new stage), name it there.
    const name = `Negotiation ${shortId()}`
    const form = ann.page.locator('form[data-form="stage"]').first()
    let named = false
    if (await form.isVisible()) {
      await form.locator('input[name="name"]').fill(name)
      await form.locator('button[type="submit"]').first().click()
      named = true
    }
    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show the new column before Won`, async () => {
        const s = await snapshot(session.page)
        assert.equal(s.columns.length, 8, `columns: ${JSON.stringify(s.columns.map((c) => c.name))}`)
        const ids = s.columns.map((c) => c.id)
        assert.ok(ids.indexOf(added.id) !== -1 && ids.indexOf(added.id) < ids.indexOf(won), `the new column sits before Won: ${JSON.stringify(s.columns.map((c) => c.name))}`)
        if (named) assert.equal(columnOf(s, added.id).name, name)
        assertColumn(s, added.id, { count: 0, sum: 0 })
      }, { describe: both(ann, bob) })
    }
  })
)

test('7. no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})

/**
 * Which element of a column shows colour `rgb` (`rgb(r, g, b)`) in its computed style (a
 * background, a border, the text, an SVG fill, a pseudo-element...), or null. The contract does
 * not say how a stage's colour is drawn, only that it shows.
 */
async function colourShownIn (page, stageId, rgb) {
  return column(page, stageId).evaluate((col, rgb) => {
    const props = ['background-color', 'background-image', 'border-top-color', 'border-right-color', 'border-bottom-color',
      'border-left-color', 'color', 'outline-color', 'fill', 'stroke', 'box-shadow', 'text-decoration-color']
    const rgba = rgb.replace('rgb(', 'rgba(').replace(')', ', ')
    for (const el of [col, ...col.querySelectorAll('*')]) {
      if (el.matches('input, select, textarea, option')) continue
      for (const pseudo of [null, '::before', '::after']) {
        const style = getComputedStyle(el, pseudo)
        for (const prop of props) {
          const value = style.getPropertyValue(prop)
          if (value.includes(rgb) || value.includes(rgba)) return `${el.tagName.toLowerCase()}${pseudo ?? ''} ${prop}: ${value}`
        }
      }
    }
    return null
  }, rgb)
}
