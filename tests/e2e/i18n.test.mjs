// Languages: a browser in French opens the app in French (home page, a board made from the
// form with French stage names, money in the French format), the header's switch turns it to
// English without a reload, and the choice outlives a reload.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  describe,
  docClient,
  eventually,
  listBoards,
  newSession,
  saveArtifacts,
  snapshot,
  TEST_TIMEOUT,
  WAIT_MS,
  waitFor,
  serverAndBrowser
} from './helpers.mjs'

const FILE = import.meta.url

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

/** Intl's no-break spaces as plain spaces. */
const spaces = (text) => text.replace(/[\u00a0\u202f]/g, ' ')

/** What the page says about its language: `<html lang>`, the switch, and a few texts. */
async function languageState (page) {
  return page.evaluate(() => ({
    lang: document.documentElement.lang,
    switch: document.querySelector('select[data-action="language"]')?.value ?? null,
    dealHeading: document.querySelector('[data-entity-section="deal"] h2')?.textContent ?? null,
    submit: document.querySelector('form[data-form="new-board"] button[type="submit"]')?.textContent ?? null
  }))
}

test('languages: French from the browser, a French board from the form, the switch to English survives a reload', { timeout: TEST_TIMEOUT }, async () => {
  const sessions = {}
  let failed = false
  let yjs = null
  try {
    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'i18n', locale: 'fr-FR' })
    const { page } = ann
    await page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the home page in French', async () => {
      const state = await languageState(page)
      assert.deepEqual(state, { lang: 'fr', switch: 'fr', dealHeading: 'Transactions', submit: 'Créer le pipeline' })
    }, { describe: () => languageState(page).then(JSON.stringify) })

    // A board from the form, with no name: the server names it and its stages in French.
    const before = new Set((await listBoards(server)).map((b) => b.id))
    const form = page.locator('form[data-form="new-board"]').first()
    await form.locator('select[name="entity"]').selectOption('deal')
    await form.locator('button[type="submit"]').first().click()
    const board = await waitFor(async () => (await listBoards(server)).find((b) => !before.has(b.id)), {
      message: 'GET /api/v1/boards to list the new board'
    })
    assert.equal(board.name, 'Transactions')
    await eventually('the new board to open with French stages', async () => {
      const s = await snapshot(page)
      assert.ok(s.url.startsWith(`/boards/${board.id}`), `the page is at ${s.url}`)
      assert.equal(s.columns.length, 7)
      assert.ok(s.columns.some((c) => c.name === 'Gagnée'), `stages: ${s.columns.map((c) => c.name)}`)
      assert.equal(s.connection, 'connected')
    }, { describe: () => describe(page) })

    // A card of 1 250 $: the column's sum in the French format.
    yjs = await docClient(server, board.id)
    const stage = yjs.stages()[0]
    yjs.addCard({ stage: stage.id, title: 'Contrat annuel', amount: 125000 })
    const sumOf = async () => spaces(await page.locator(`[data-stage-id="${stage.id}"] [data-stage-sum]`).first().innerText())
    await eventually('the column sum in French', async () => assert.equal(await sumOf(), '1 250,00 $US'))
    assert.equal(spaces(await page.locator('[data-board-total="open"]').first().innerText()), '1 fiche en cours · 1 250,00 $US')

    // The switch: English at once, no reload (the page keeps a marker set before it).
    await page.evaluate(() => { window.__beforeSwitch = true })
    await page.locator('select[data-action="language"]').first().selectOption('en')
    await eventually('the board in English', async () => {
      assert.equal(await sumOf(), '$1,250.00')
      assert.equal(await page.locator('[data-board-total="open"]').first().innerText(), '1 open card · $1,250.00')
      assert.equal(await page.evaluate(() => document.documentElement.lang), 'en')
      assert.equal(await page.locator('[data-action="open-settings"]').first().innerText(), 'Settings')
    })
    assert.equal(await page.evaluate(() => window.__beforeSwitch), true, 'the switch did not reload the page')
    // The stages keep the names the board was made with: they are data, not interface.
    assert.ok((await snapshot(page)).columns.some((c) => c.name === 'Gagnée'))

    // The choice is saved: a reload (and the home page) stays in English.
    await page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the home page in English after a reload', async () => {
      const state = await languageState(page)
      assert.deepEqual(state, { lang: 'en', switch: 'en', dealHeading: 'Deals', submit: 'Create pipeline' })
    }, { describe: () => languageState(page).then(JSON.stringify) })
  } catch (error) {
    failed = true
    throw error
  } finally {
    yjs?.destroy()
    const saved = await saveArtifacts(FILE, 'i18n', sessions, failed)
    if (failed) console.error(`[i18n] final state saved: ${saved.join(', ')}`)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})
