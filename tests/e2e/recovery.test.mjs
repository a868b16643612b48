// What a person sees when the server and this browser's copy of a board part ways:
// 1. the server is restored from an older backup (`funnel backup --to FILE`, then a restart on
//    that file): a page that had received the changes made after the backup says that the
//    server had lost them, that its copy brought them back and that the edits are kept; a page
//    opened after the restore says nothing;
// 2. a change larger than `--max-frame-bytes` (4414): the page says so in words and offers to
//    drop its copy and reload, after which the board works again.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'

import {
  consoleLog,
  createBoard,
  describe,
  docClient,
  dragCard,
  eventually,
  funnelBinary,
  launchBrowser,
  openBoard,
  editCardField,
  openCard,
  saveArtifacts,
  sleep,
  snapshot,
  startFunnel,
  TEST_TIMEOUT,
  waitFor,
  waitUntilReady
} from './helpers.mjs'

const FILE = import.meta.url

let root
let browser
const servers = []
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'funnel-e2e-recovery-'))
  browser = await launchBrowser()
})
after(async () => {
  await browser?.close()
  for (const server of servers) await server.stop()
  if (root) await rm(root, { recursive: true, force: true })
})

const titles = (s) => s.columns.flatMap((c) => c.cards.map((card) => card.fields.title ?? card.text))

test('a page whose copy is newer than a server restored from a backup says so, and keeps the changes', { timeout: TEST_TIMEOUT }, async () => {
  const dataDir = path.join(root, 'data')
  const backupFile = path.join(root, 'backup.db')
  let server = await startFunnel({ dataDir })
  servers.push(server)
  const boardId = await createBoard(server, { name: 'e2e restored' })
  const writer = await docClient(server, boardId)
  const sessions = {}
  let failed = false
  try {
    const stage = writer.stageId('New')
    writer.addCard({ stage, pos: 'a0', title: 'Before the backup' })
    sessions.ann = await openBoard(browser, server, boardId, 'ann', { testName: 'restored' })
    const { ann } = sessions
    await eventually('ann to show the first card', async () => {
      assert.deepEqual(titles(await snapshot(ann.page)), ['Before the backup'])
    }, { describe: () => describe(ann.page) })

    // The backup, taken while funnel runs, then a change it does not hold.
    await promisify(execFile)(funnelBinary(), ['backup', '--data-dir', dataDir, '--to', backupFile])
    writer.addCard({ stage, pos: 'a1', title: 'After the backup' })
    await eventually('ann to show the card made after the backup', async () => {
      assert.deepEqual(titles(await snapshot(ann.page)), ['Before the backup', 'After the backup'])
    }, { describe: () => describe(ann.page) })
    // The writer goes away: only ann's copy holds the later card when the server comes back.
    writer.destroy()

    // The restore: stop funnel, put the backup in place of funnel.db, start it on the same port.
    const port = server.port
    ann.networkCut()
    assert.equal((await server.stop()).code, 0)
    await copyFile(backupFile, path.join(dataDir, 'funnel.db'))
    for (const companion of ['funnel.db-wal', 'funnel.db-shm']) await rm(path.join(dataDir, companion), { force: true })
    server = await startFunnel({ port, dataDir })
    servers.push(server)

    const banner = ann.page.locator('[data-recovery]')
    await banner.waitFor({ state: 'visible', timeout: 20_000 })
    ann.backOnline()
    assert.equal(await banner.getAttribute('data-recovery'), 'lost-history')
    const said = (await banner.innerText()).replace(/\s+/g, ' ')
    assert.match(said, /This board's server had lost recent changes/)
    assert.match(said, /restored from a backup/)
    assert.match(said, /your edits are kept/)
    assert.deepEqual(titles(await snapshot(ann.page)), ['Before the backup', 'After the backup'])

    // The server has the later card again, from ann's copy.
    const fresh = await docClient(server, boardId)
    try {
      await waitFor(() => cardTitles(fresh).includes('After the backup'), {
        timeout: 10_000,
        message: () => `a client of the restored server to get the card made after the backup: ${JSON.stringify(cardTitles(fresh))}`
      })
    } finally {
      fresh.destroy()
    }

    // Dismissed, it goes away.
    await ann.page.locator('[data-action="dismiss-recovery"]').click()
    await banner.waitFor({ state: 'detached' })

    // A page opened after the restore has nothing to be told.
    sessions.bob = await openBoard(browser, server, boardId, 'bob', { testName: 'restored' })
    await eventually('bob to show both cards', async () => {
      assert.deepEqual(titles(await snapshot(sessions.bob.page)), ['Before the backup', 'After the backup'])
    }, { describe: () => describe(sessions.bob.page) })
    await sleep(1_000)
    assert.equal(await sessions.bob.page.locator('[data-recovery]').count(), 0, 'no banner on a page opened after the restore')
  } catch (error) {
    failed = true
    throw error
  } finally {
    await saveArtifacts(FILE, 'restored', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    writer.destroy()
  }
})

test('a page that only brings its own offline edits to a restarted server is told nothing', { timeout: TEST_TIMEOUT }, async () => {
  const dataDir = path.join(root, 'plain')
  let server = await startFunnel({ dataDir })
  servers.push(server)
  const boardId = await createBoard(server, { name: 'e2e plain restart' })
  const yjs = await docClient(server, boardId)
  const sessions = {}
  let failed = false
  try {
    const stages = { New: yjs.stageId('New'), Won: yjs.stageId('Won') }
    const moved = yjs.addCard({ stage: stages.New, pos: 'a0', title: 'Moved offline' })
    yjs.destroy()
    sessions.ann = await openBoard(browser, server, boardId, 'ann', { testName: 'plain restart' })
    const { ann } = sessions
    await eventually('ann to show the card', async () => {
      assert.deepEqual(titles(await snapshot(ann.page)), ['Moved offline'])
    }, { describe: () => describe(ann.page) })
    const port = server.port
    ann.networkCut()
    assert.equal((await server.stop()).code, 0)
    await dragCard(ann.page, moved, stages.Won)
    server = await startFunnel({ port, dataDir })
    servers.push(server)
    await eventually('ann to be connected again', async () => {
      assert.equal((await snapshot(ann.page)).connection, 'connected')
    }, { timeout: 20_000, describe: () => describe(ann.page) })
    ann.backOnline()
    const check = await docClient(server, boardId)
    try {
      await waitFor(() => check.card(moved)?.stage === stages.Won, {
        message: () => `the restarted server to take the offline move: ${JSON.stringify(check.card(moved))}`
      })
    } finally {
      check.destroy()
    }
    await sleep(1_000)
    assert.equal(await ann.page.locator('[data-recovery]').count(), 0, 'no banner after a plain restart')
  } catch (error) {
    failed = true
    throw error
  } finally {
    await saveArtifacts(FILE, 'plain restart', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    yjs.destroy()
  }
})

/** The titles of the cards a document client holds, sorted. */
function cardTitles (client) {
  const cards = client.doc.getMap('cards')
  return [...cards.values()].map((card) => card.get('title')).sort()
}

test('a change over --max-frame-bytes is explained, and dropping the copy brings the board back', { timeout: TEST_TIMEOUT }, async () => {
  const server = await startFunnel({ args: ['--max-frame-bytes', '1024'] })
  servers.push(server)
  const boardId = await createBoard(server, { name: 'e2e too large' })
  const yjs = await docClient(server, boardId)
  const sessions = {}
  let failed = false
  try {
    const cardId = yjs.addCard({ stage: yjs.stageId('New'), pos: 'a0', title: 'Small deal' })
    sessions.ann = await openBoard(browser, server, boardId, 'ann', { testName: 'too large' })
    const { ann } = sessions
    await eventually('ann to show the card', async () => {
      assert.deepEqual(titles(await snapshot(ann.page)), ['Small deal'])
    }, { describe: () => describe(ann.page) })

    // A client name of 4,000 characters: one update over the 1,024-byte frame limit.
    const panel = await openCard(ann.page, cardId)
    await editCardField(panel, 'client', 'x'.repeat(4_000), 'Tab')

    const banner = ann.page.locator('[data-refusal="4414"]')
    await banner.waitFor({ state: 'visible' })
    const said = (await banner.innerText()).replace(/\s+/g, ' ')
    assert.match(said, /too large for the server to save/)
    assert.match(said, /unsaved changes to this board are dropped/)
    assert.equal(await ann.page.locator('main.board[data-frozen]').count(), 1, 'the board takes no more edits')
    assert.equal(yjs.card(cardId)?.client ?? '', '', 'the server never took the change')

    await ann.page.keyboard.press('Escape')
    await banner.locator('[data-action="discard-local-copy"]').click()
    await ann.page.waitForLoadState('domcontentloaded')
    await waitUntilReady(ann)
    await eventually('the reloaded page to show the board as the server has it', async () => {
      assert.deepEqual(titles(await snapshot(ann.page)), ['Small deal'])
      assert.equal(await ann.page.locator('[data-refusal]').count(), 0, 'no refusal after the reload')
    }, { describe: () => describe(ann.page) })

    // And the board syncs again: a change from elsewhere shows.
    yjs.addCard({ stage: yjs.stageId('New'), pos: 'a1', title: 'Second deal' })
    await eventually('the reloaded page to show a new card', async () => {
      assert.deepEqual(titles(await snapshot(ann.page)), ['Small deal', 'Second deal'])
    }, { describe: () => describe(ann.page) })
  } catch (error) {
    failed = true
    throw error
  } finally {
    await saveArtifacts(FILE, 'too large', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    yjs.destroy()
  }
})

test('no console errors or uncaught page errors in the tests above', () => {
  if (consoleLog.expectedWhileOffline.length > 0) {
    console.log(`browser network errors while the server was down (not counted):\n${consoleLog.expectedWhileOffline.join('\n')}`)
  }
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
