// Two users on one board, each in their own browser context: what one does shows in the other.
// A drag between columns, quick-create with configured fields, presence, a reorder within a
// column and a keyboard move.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  assertColumn,
  card,
  changeSettings,
  column,
  columnOf,
  consoleLog,
  describe,
  dragCard,
  eventually,
  countValue,
  moneyValue,
  placesOf,
  scenario,
  setFieldBox,
  shortId,
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

test('1. a mouse drag from New to In progress in one page shows in the other, with counts and sums', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: '1 drag between columns',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), IP: yjs.stageId('In progress') }
      const moved = yjs.addCard({ stage: stages.New, pos: 'a0', title: 'Acme rollout', amount: 1000_00, client: 'Acme', responsible: 'ann' })
      const stays = yjs.addCard({ stage: stages.New, pos: 'a1', title: 'Beta licence', amount: 250_00, client: 'Beta', responsible: 'bob' })
      return { stages, moved, stays }
    }
  }, async ({ ann, bob, yjs, seeded: { stages, moved, stays } }) => {
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show both seeded cards in New`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(columnOf(s, stages.New).cards.map((c) => c.id), [moved, stays])
        assertColumn(s, stages.New, { count: 2, sum: 1250 })
        assertColumn(s, stages.IP, { count: 0, sum: 0 })
      }, { describe: () => describe(session.page) })
    }

    await dragCard(ann.page, moved, stages.IP)

    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show the dragged card in In progress`, async () => {
        const s = await snapshot(session.page)
        const places = placesOf(s, moved)
        assert.deepEqual(places.map((p) => p.name), ['In progress'], 'the dragged card shows exactly once, in In progress')
        assert.deepEqual(placesOf(s, stays).map((p) => p.name), ['New'], 'the other card stays in New')
        assertColumn(s, stages.New, { count: 1, sum: 250 })
        assertColumn(s, stages.IP, { count: 1, sum: 1000 })
      }, { describe: both(ann, bob) })
    }
    // The card element really is inside the target column's element on the other page.
    assert.equal(await card(bob.page, moved, stages.IP).count(), 1)
    assert.equal(await column(bob.page, stages.New).locator(`[data-card-id="${moved}"]`).count(), 0)

    // The document says the same: a move set the card's stage (and left the other alone).
    await waitFor(() => yjs.card(moved)?.stage === stages.IP, { message: () => `the document to have the card in In progress: ${JSON.stringify(yjs.card(moved))}` })
    assert.equal(yjs.card(stays).stage, stages.New)
  })
)

test('2. quick-create with configured fields puts the card at the top of the column in both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: '2 quick-create',
    seed: (yjs) => {
      const stage = yjs.stageId('Preparing documents')
      const existing = yjs.addCard({ stage, pos: 'a0', title: 'Existing deal', amount: 300_00, client: 'Old client' })
      return { stage, existing }
    }
  }, async ({ ann, bob, yjs, seeded: { stage, existing } }) => {
    // Start from a quick-create form without `client` (whatever the board's default is)...
    await changeSettings(ann.page, async (panel) => {
      await setFieldBox(panel, 'data-quick-create-field', 'client', false)
    })
    await waitFor(() => !(yjs.forms().quickCreate ?? []).includes('client'), {
      message: () => `forms.quickCreate not to include "client": ${JSON.stringify(yjs.forms())}`
    })
    // ... which is the board's form, so bob's + asks no client either.
    await column(bob.page, yjs.stageId('New')).locator('[data-action="add-card"]').first().click()
    const bobForm = bob.page.locator('form[data-form="quick-create"]').first()
    await bobForm.waitFor({ state: 'visible' })
    await eventually('bob\'s quick-create form to ask for no client', async () => {
      assert.equal(await bobForm.locator('[name="client"]').count(), 0, 'bob\'s quick-create form has a [name="client"] input')
    })

    // Then an administrator adds `client` to the quick-create form (title and amount stay in it).
    let sawClientBox = false
    await changeSettings(ann.page, async (panel) => {
      sawClientBox = await setFieldBox(panel, 'data-quick-create-field', 'client', true)
      await setFieldBox(panel, 'data-quick-create-field', 'title', true)
      await setFieldBox(panel, 'data-quick-create-field', 'amount', true)
    })
    assert.ok(sawClientBox, 'the settings panel has an input[data-quick-create-field="client"]')
    await waitFor(() => (yjs.forms().quickCreate ?? []).includes('client'), {
      message: () => `forms.quickCreate to include "client": ${JSON.stringify(yjs.forms())}`
    })

    const title = `Initech renewal ${shortId()}`
    await column(ann.page, stage).locator('[data-action="add-card"]').first().click()
    const form = ann.page.locator('form[data-form="quick-create"]').first()
    await form.waitFor({ state: 'visible' })
    for (const field of ['title', 'amount', 'client']) {
      assert.equal(await form.locator(`[name="${field}"]`).count(), 1, `the quick-create form has a [name="${field}"] input`)
    }
    await form.locator('[name="title"]').fill(title)
    await form.locator('[name="amount"]').fill('1500')
    await form.locator('[name="client"]').fill('Initech')
    await form.locator('button[type="submit"]').first().click()

    const created = await waitFor(
      () => Object.entries(yjs.doc.getMap('cards').toJSON()).find(([, c]) => c.title === title),
      { message: () => `a card titled ${title} in the document: ${JSON.stringify(yjs.doc.getMap('cards').toJSON())}` }
    )
    const [id, stored] = created
    assert.equal(stored.stage, stage, 'the card was created in the column whose + was pressed')
    assert.equal(stored.amount, 1500_00, 'the amount typed (1500) is stored in minor units')
    assert.equal(stored.client, 'Initech')

    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show the new card at the top of Preparing documents`, async () => {
        const s = await snapshot(session.page)
        const col = columnOf(s, stage)
        assert.deepEqual(col.cards.map((c) => c.id), [id, existing], 'new card first, then the existing one')
        assert.ok(col.cards[0].text.includes(title), `the new card shows its title: ${JSON.stringify(col.cards[0].text)}`)
        assertColumn(s, stage, { count: 2, sum: 1800 })
      }, { describe: both(ann, bob) })
    }
  })
)

test('presence: each page lists the other user, shows what they look at, and drops them when they leave', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'presence',
    seed: (yjs) => ({ viewed: yjs.addCard({ stage: yjs.stageId('New'), title: 'Looked-at deal', amount: 10_00 }) })
  }, async ({ ann, bob, seeded: { viewed } }) => {
    for (const [session, other] of [[ann, 'bob'], [bob, 'ann']]) {
      await eventually(`${session.user} to list ${other} in the header`, async () => {
        const s = await snapshot(session.page)
        assert.ok(s.presence.includes(other), `[data-presence-user] are ${JSON.stringify(s.presence)}`)
      }, { describe: () => describe(session.page) })
    }

    // ann opens the card: bob sees that ann is on it.
    await card(ann.page, viewed).click({ position: { x: 12, y: 8 } })
    await eventually('bob to see the card marked data-presence-by="ann"', async () => {
      const s = await snapshot(bob.page)
      assert.equal(placesOf(s, viewed)[0]?.card.presenceBy, 'ann')
    }, { describe: () => describe(bob.page) })

    await bob.context.close()
    await eventually('ann to drop bob from the header once bob left', async () => {
      const s = await snapshot(ann.page)
      assert.ok(!s.presence.includes('bob'), `[data-presence-user] are ${JSON.stringify(s.presence)}`)
    }, { describe: () => describe(ann.page) })
  })
)

test('presence while dragging: the card ann is dragging is marked data-presence-by="ann" in bob\'s page until she drops it', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'presence while dragging',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), Won: yjs.stageId('Won') }
      return { stages, dragged: yjs.addCard({ stage: stages.New, title: 'Dragged deal', amount: 20_00 }) }
    }
  }, async ({ ann, bob, seeded: { stages, dragged } }) => {
    const source = card(ann.page, dragged)
    const from = await source.boundingBox()
    const to = await column(ann.page, stages.Won).boundingBox()
    await ann.page.mouse.move(from.x + 30, from.y + 10)
    await ann.page.mouse.down()
    await ann.page.mouse.move(from.x + 40, from.y + 20, { steps: 4 })
    await ann.page.mouse.move(to.x + to.width / 2, to.y + 150, { steps: 10 })
    try {
      await eventually('bob to see the card marked as dragged by ann', async () => {
        const s = await snapshot(bob.page)
        assert.equal(placesOf(s, dragged)[0]?.card.presenceBy, 'ann')
      }, { describe: () => describe(bob.page) })
    } finally {
      await ann.page.mouse.move(to.x + to.width / 2 + 2, to.y + 152, { steps: 2 })
      await ann.page.mouse.up()
    }
    await eventually('bob to see the card dropped in Won and no longer marked', async () => {
      const s = await snapshot(bob.page)
      const places = placesOf(s, dragged)
      assert.deepEqual(places.map((p) => p.name), ['Won'])
      assert.equal(places[0].card.presenceBy, null, `data-presence-by is ${JSON.stringify(places[0].card.presenceBy)}`)
    }, { describe: both(ann, bob) })
  })
)

test('reorder within a column with locator.dragTo(): the card dropped on the top edge of the first card goes first, in both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'reorder within a column',
    seed: (yjs) => {
      const stage = yjs.stageId('New')
      const ids = ['Alpha', 'Bravo', 'Charlie'].map((title, i) => yjs.addCard({ stage, pos: `a${i}`, title, amount: (i + 1) * 100_00 }))
      return { stage, ids }
    }
  }, async ({ ann, bob, yjs, seeded: { stage, ids: [a, b, c] } }) => {
    await eventually('ann to show Alpha, Bravo, Charlie', async () => {
      assert.deepEqual(columnOf(await snapshot(ann.page), stage).cards.map((x) => x.id), [a, b, c])
    }, { describe: () => describe(ann.page) })

    await card(ann.page, c).dragTo(card(ann.page, a), { targetPosition: { x: 40, y: 4 } })

    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show Charlie, Alpha, Bravo`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(columnOf(s, stage).cards.map((x) => x.id), [c, a, b])
        assertColumn(s, stage, { count: 3, sum: 600 })
      }, { describe: both(ann, bob) })
    }
    assert.equal(yjs.card(c).stage, stage)
    assert.ok(yjs.card(c).pos < yjs.card(a).pos, `pos of Charlie (${yjs.card(c).pos}) sorts before Alpha's (${yjs.card(a).pos})`)
  })
)

test('keyboard move: Alt+ArrowRight on a focused card moves it to the next column, in both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'keyboard move',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), PD: yjs.stageId('Preparing documents') }
      return { stages, moved: yjs.addCard({ stage: stages.New, title: 'Keyboard deal', amount: 70_00 }) }
    }
  }, async ({ ann, bob, yjs, seeded: { stages, moved } }) => {
    await card(ann.page, moved).focus()
    await ann.page.keyboard.press('Alt+ArrowRight')
    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show the card in Preparing documents`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(placesOf(s, moved).map((p) => p.name), ['Preparing documents'])
        assertColumn(s, stages.New, { count: 0, sum: 0 })
        assertColumn(s, stages.PD, { count: 1, sum: 70 })
      }, { describe: both(ann, bob) })
    }
    assert.equal(yjs.card(moved).stage, stages.PD)
  })
)

test('a card whose stage no longer exists shows and counts in the initial column', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'orphaned card',
    users: ['ann'],
    seed: (yjs) => {
      const New = yjs.stageId('New')
      const orphan = yjs.addCard({ stage: 'stage-that-was-deleted', title: 'Orphaned deal', amount: 45_00 })
      return { New, orphan }
    }
  }, async ({ ann, seeded: { New, orphan } }) => {
    await eventually('ann to show the orphaned card in New', async () => {
      const s = await snapshot(ann.page)
      assert.deepEqual(placesOf(s, orphan).map((p) => p.name), ['New'])
      assertColumn(s, New, { count: 1, sum: 45 })
    }, { describe: () => describe(ann.page) })
  })
)

test('a column of 300 cards shows the right count and sum, in both pages, and a card dragged out of it moves', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'a long column',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), PD: yjs.stageId('Preparing documents') }
      const ids = []
      yjs.doc.transact(() => {
        for (let i = 0; i < 300; i++) {
          ids.push(yjs.addCard({ stage: stages.New, pos: `a${String(i).padStart(3, '0')}`, title: `Bulk deal ${i}`, amount: 1_00 }))
        }
      })
      return { stages, ids }
    }
  }, async ({ ann, bob, seeded: { stages, ids } }) => {
    const countOnly = (s, stageId) => {
      const col = columnOf(s, stageId)
      return { count: col.count, sum: col.sum, first: col.cards[0]?.id }
    }
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show 300 cards worth $300 in New, the first one on top`, async () => {
        const s = await snapshot(session.page)
        const col = countOnly(s, stages.New)
        assert.equal(countValue(col.count), 300, `[data-stage-count] is ${JSON.stringify(col.count)}`)
        assert.equal(moneyValue(col.sum), 300, `[data-stage-sum] is ${JSON.stringify(col.sum)}`)
        assert.equal(col.first, ids[0], 'the first card by pos is on top')
      }, { describe: () => describe(session.page) })
    }
    await dragCard(ann.page, ids[0], stages.PD)
    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show 299 cards in New and the moved one in Preparing documents`, async () => {
        const s = await snapshot(session.page)
        assert.equal(countValue(columnOf(s, stages.New).count), 299)
        assert.equal(moneyValue(columnOf(s, stages.New).sum), 299)
        assert.deepEqual(placesOf(s, ids[0]).map((p) => p.name), ['Preparing documents'])
        assertColumn(s, stages.PD, { count: 1, sum: 1 })
      }, { describe: both(ann, bob) })
    }
  })
)

test('in a narrow window, dragging a card to the right edge scrolls the board, and the drop lands in the far column', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'drag with auto-scroll',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), FA: yjs.stageId('Failure analysis') }
      return { stages, moved: yjs.addCard({ stage: stages.New, title: 'Far-away deal', amount: 15_00 }) }
    }
  }, async ({ ann, bob, seeded: { stages, moved } }) => {
    const width = 1280
    await ann.page.setViewportSize({ width, height: 800 })
    const target = column(ann.page, stages.FA)
    await eventually('the last column to be out of view in a 1280 px window', async () => {
      const box = await target.boundingBox()
      assert.ok(box.x > width, `Failure analysis starts at x=${box.x}`)
    })
    const from = await card(ann.page, moved).boundingBox()
    await ann.page.mouse.move(from.x + 30, from.y + 10)
    await ann.page.mouse.down()
    await ann.page.mouse.move(from.x + 40, from.y + 20, { steps: 4 })
    await ann.page.mouse.move(width - 10, 400, { steps: 20 })
    // Hold the card at the right edge (small moves keep drag events coming) until the far column
    // has scrolled into view, for 8 s at most.
    let box
    const deadline = Date.now() + 8_000
    for (let i = 0; ; i++) {
      box = await target.boundingBox()
      if (box.x + box.width / 2 < width - 20 || Date.now() > deadline) break
      await ann.page.mouse.move(width - 10 - (i % 2), 400)
      await sleep(50)
    }
    await ann.page.mouse.move(Math.min(box.x + box.width / 2, width - 20), 400, { steps: 5 })
    await ann.page.mouse.up()
    assert.ok(box.x + box.width / 2 < width - 20, `the board did not scroll: Failure analysis still at x=${box.x}`)

    for (const session of [bob, ann]) {
      await eventually(`${session.user} to show the card in Failure analysis`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(placesOf(s, moved).map((p) => p.name), ['Failure analysis'])
        assertColumn(s, stages.FA, { count: 1, sum: 15 })
      }, { describe: both(ann, bob) })
    }
  })
)

test('quick-create refuses a card without a title: nothing is created', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'quick-create without a title',
    users: ['ann'],
    seed: (yjs) => ({ stage: yjs.stageId('New') })
  }, async ({ ann, yjs, seeded: { stage } }) => {
    await column(ann.page, stage).locator('[data-action="add-card"]').first().click()
    const form = ann.page.locator('form[data-form="quick-create"]').first()
    await form.waitFor({ state: 'visible' })
    await form.locator('[name="amount"]').fill('10')
    await form.locator('button[type="submit"]').first().click()
    await sleep(1_000)
    assert.deepEqual(yjs.doc.getMap('cards').toJSON(), {}, 'a card was written to the document')
    const s = await snapshot(ann.page)
    assertColumn(s, stage, { count: 0, sum: 0 })
  })
)

test('a column sums each currency apart', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'sums per currency',
    users: ['ann'],
    seed: (yjs) => {
      const stage = yjs.stageId('New')
      yjs.addCard({ stage, pos: 'a0', title: 'Dollar deal', amount: 1_000_00 })
      const euro = yjs.addCard({ stage, pos: 'a1', title: 'Euro deal', amount: 250_00 })
      yjs.doc.transact(() => yjs.doc.getMap('cards').get(euro).set('currency', 'EUR'))
      return { stage }
    }
  }, async ({ ann, seeded: { stage } }) => {
    await eventually('the New column to show $1,000 and EUR 250 apart', async () => {
      const col = columnOf(await snapshot(ann.page), stage)
      assert.equal(countValue(col.count), 2)
      assert.match(col.sum ?? '', /1,000(\.00)?/, `[data-stage-sum] is ${JSON.stringify(col.sum)}`)
      assert.match(col.sum ?? '', /250(\.00)?/, `[data-stage-sum] is ${JSON.stringify(col.sum)}`)
      assert.match(col.sum ?? '', /€|EUR/, `[data-stage-sum] is ${JSON.stringify(col.sum)}`)
      assert.doesNotMatch(col.sum ?? '', /1,250/, `[data-stage-sum] adds dollars and euros: ${JSON.stringify(col.sum)}`)
    }, { describe: () => describe(ann.page) })
  })
)

test('7. no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
