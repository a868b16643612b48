// The home page: boards grouped by entity, each a link to its board, and a form that makes a
// new board.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  consoleLog,
  createBoard,
  describe,
  eventually,
  listBoards,
  newSession,
  saveArtifacts,
  shortId,
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

/** The home page's sections and links, read through the DOM contract. */
async function homeLinks (page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-entity-section]')].map((section) => ({
    entity: section.getAttribute('data-entity-section'),
    links: [...section.querySelectorAll('a[data-board-link]')].map((a) => ({
      id: a.getAttribute('data-board-link'),
      text: a.textContent.replace(/\s+/g, ' ').trim(),
      href: a.getAttribute('href')
    }))
  })))
}

test('home: a board made through the API is listed under its entity and its link opens it', { timeout: TEST_TIMEOUT }, async () => {
  const name = `Pipeline ${shortId()}`
  const boardId = await createBoard(server, { entity: 'deal', name })
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'home list' })
    await ann.page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the home page to list the board under deal', async () => {
      const sections = await homeLinks(ann.page)
      const deal = sections.find((s) => s.entity === 'deal')
      assert.ok(deal, `sections: ${JSON.stringify(sections)}`)
      const link = deal.links.find((l) => l.id === boardId)
      assert.ok(link, `links under deal: ${JSON.stringify(deal.links)}`)
      assert.ok(link.text.includes(name), `the link reads ${JSON.stringify(link.text)}`)
    })
    await ann.page.locator(`a[data-board-link="${boardId}"]`).first().click()
    await eventually('the link to open the board', async () => {
      const s = await snapshot(ann.page)
      assert.ok(s.url.startsWith(`/boards/${boardId}`), `the page is at ${s.url}`)
      assert.equal(s.columns.length, 7, 'the board shows its 7 columns')
    }, { describe: () => describe(ann.page) })
  } catch (error) {
    failed = true
    throw error
  } finally {
    const saved = await saveArtifacts(FILE, 'home list', sessions, failed)
    if (failed) console.error(`[home list] final state saved: ${saved.join(', ')}`)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})

test('home: the new-board form makes a board of the chosen entity', { timeout: TEST_TIMEOUT }, async () => {
  const name = `Leads ${shortId()}`
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'home new board' })
    await ann.page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    const form = ann.page.locator('form[data-form="new-board"]').first()
    await form.waitFor({ state: 'visible' })
    await form.locator('select[name="entity"]').selectOption('lead')
    await form.locator('input[name="name"]').fill(name)
    await form.locator('button[type="submit"]').first().click()

    const board = await waitFor(async () => (await listBoards(server)).find((b) => b.name === name), {
      message: `GET /api/v1/boards to list a board named ${name}`
    })
    assert.equal(board.entity, 'lead')

    await ann.page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the home page to list the new board under lead', async () => {
      const sections = await homeLinks(ann.page)
      const lead = sections.find((s) => s.entity === 'lead')
      assert.ok(lead?.links.some((l) => l.id === board.id), `sections: ${JSON.stringify(sections)}`)
    })
  } catch (error) {
    failed = true
    throw error
  } finally {
    const saved = await saveArtifacts(FILE, 'home new board', sessions, failed)
    if (failed) console.error(`[home new board] final state saved: ${saved.join(', ')}`)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})

test('home: an admin archives a board (with Undo), finds it under Show archived, opens it read-only and restores it', { timeout: TEST_TIMEOUT }, async () => {
  const name = `Archive me ${shortId()}`
  const boardId = await createBoard(server, { entity: 'deal', name })
  const listed = async (page) => (await homeLinks(page)).some((s) => s.links.some((l) => l.id === boardId))
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'home archive' })
    const { page } = ann
    await page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the board to be listed', async () => assert.ok(await listed(page)))
    const archive = () => page.locator(`[data-entity-section] li:has(a[data-board-link="${boardId}"]) [data-action="archive-board"]`).first().click()

    // Archived, then taken back with the notice's Undo.
    await archive()
    await eventually('the board to leave the list, with an Undo', async () => {
      assert.equal(await listed(page), false)
      assert.match(await page.locator('[data-notice="board-archive"]').first().innerText(), /archived/)
    })
    assert.equal((await listBoards(server)).some((b) => b.id === boardId), false, 'the server lists it no more')
    await page.locator('[data-notice="board-archive"] [data-action="undo"]').first().click()
    await eventually('Undo to bring it back', async () => assert.ok(await listed(page)))
    await waitFor(async () => (await listBoards(server)).some((b) => b.id === boardId), { message: 'the server to list it again' })

    // Archived for good: under Show archived, read-only when opened.
    await archive()
    await eventually('the board to leave the list', async () => assert.equal(await listed(page), false))
    await page.locator('[data-action="show-archived"]').first().click()
    const row = page.locator(`[data-archived-board="${boardId}"]`).first()
    await row.waitFor({ state: 'visible' })
    assert.match(await row.innerText(), new RegExp(name))
    await row.locator('a[data-board-link]').first().click()
    await eventually('the archived board to open read-only', async () => {
      const s = await snapshot(page)
      assert.ok(s.url.startsWith(`/boards/${boardId}`), s.url)
      assert.equal(s.columns.length, 7)
      assert.equal(await page.locator('[data-archived-banner]').count(), 1, 'the banner says it is archived')
      assert.equal(await page.locator('[data-action="add-card"]').count(), 0, 'no quick-create is offered')
    }, { describe: () => describe(page) })

    // Restored from the archived list: back among the pipelines.
    await page.goto(`${server.url}/?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await page.locator('[data-action="show-archived"]').first().click()
    await page.locator(`[data-archived-board="${boardId}"] [data-action="restore-board"]`).first().click()
    await eventually('the restored board to be listed again', async () => {
      assert.ok(await listed(page))
      assert.equal(await page.locator(`[data-archived-board="${boardId}"]`).count(), 0)
    })
    await waitFor(async () => (await listBoards(server)).some((b) => b.id === boardId), { message: 'the server to list it again' })
  } catch (error) {
    failed = true
    throw error
  } finally {
    const saved = await saveArtifacts(FILE, 'home archive', sessions, failed)
    if (failed) console.error(`[home archive] final state saved: ${saved.join(', ')}`)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})

test('7. no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
