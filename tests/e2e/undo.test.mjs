// Undo of one's own last action (Ctrl+Z), two users on one board: Ann moves a card, Bob then
// edits another one, Ann presses Ctrl+Z: her move is taken back on both pages, Bob's edit stays
// on both, and Ann is told what was undone; Ctrl+Shift+Z moves it again. The card panel's
// History says who moved it, from where to where.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  columnOf,
  describe,
  dragCard,
  eventually,
  editCardField,
  openCard,
  scenario,
  snapshot,
  TEST_TIMEOUT,
  serverAndBrowser,
  describeBoth
} from './helpers.mjs'

const FILE = import.meta.url

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

/** The titles of the cards in a page's column. */
const titlesIn = (s, stageId) => columnOf(s, stageId).cards.map((c) => c.fields.title ?? c.text)

test('Ctrl+Z undoes my move and keeps the other user\'s later edit, on both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'undo my move',
    seed: (yjs) => {
      const stages = { New: yjs.stageId('New'), IP: yjs.stageId('In progress') }
      const moved = yjs.addCard({ stage: stages.New, pos: 'a0', title: 'Acme rollout', responsible: 'ann' })
      const edited = yjs.addCard({ stage: stages.New, pos: 'a1', title: 'Beta licence', responsible: 'bob' })
      return { stages, moved, edited }
    }
  }, async ({ ann, bob, seeded: { stages, moved, edited } }) => {
    await dragCard(ann.page, moved, stages.IP)
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to see Ann's move`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(columnOf(s, stages.IP).cards.map((c) => c.id), [moved])
      }, { describe: () => describe(session.page) })
    }

    // Bob renames the other card from its panel.
    const panel = await openCard(bob.page, edited)
    await editCardField(panel, 'title', 'Beta licence, renewed', 'Tab')
    await bob.page.keyboard.press('Escape')
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to see Bob's edit`, async () => {
        const s = await snapshot(session.page)
        assert.ok(titlesIn(s, stages.New).some((t) => t.includes('Beta licence, renewed')), JSON.stringify(titlesIn(s, stages.New)))
      }, { describe: () => describe(session.page) })
    }

    // Ann's Ctrl+Z: her move, not Bob's edit.
    await ann.page.locator('body').click({ position: { x: 2, y: 2 } })
    await ann.page.keyboard.press('Control+z')
    await eventually('Ann to be told what was undone', async () => {
      const notices = await ann.page.locator('[data-notice]').allInnerTexts()
      assert.ok(notices.some((n) => /Undid moving “Acme rollout”/.test(n)), JSON.stringify(notices))
    }, { describe: () => describe(ann.page) })
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to see the move undone and Bob's edit kept`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(columnOf(s, stages.IP).cards.map((c) => c.id), [])
        assert.deepEqual(columnOf(s, stages.New).cards.map((c) => c.id).sort(), [moved, edited].sort())
        assert.ok(titlesIn(s, stages.New).some((t) => t.includes('Beta licence, renewed')), JSON.stringify(titlesIn(s, stages.New)))
      }, { describe: describeBoth(ann, bob) })
    }

    // Ctrl+Shift+Z makes the move again.
    await ann.page.keyboard.press('Control+Shift+Z')
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to see the move redone`, async () => {
        const s = await snapshot(session.page)
        assert.deepEqual(columnOf(s, stages.IP).cards.map((c) => c.id), [moved])
      }, { describe: () => describe(session.page) })
    }

    // The card's history, on Bob's page: the moves, newest first (in local mode every socket is
    // the local admin's, so the names are not checked here; server/tests/history.rs does).
    const history = (await openCard(bob.page, moved)).locator('[data-history]').first()
    await eventually('the History section to list Ann\'s moves', async () => {
      const rows = await history.locator('[data-history-text]').allInnerTexts()
      assert.ok(rows.length >= 3, JSON.stringify(rows))
      assert.match(rows[0], /moved it from New to In progress/)
      assert.match(rows[1], /moved it from In progress to New/)
    }, { describe: () => describe(bob.page) })
  })
)
