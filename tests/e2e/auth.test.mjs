// funnel with --auth-secret: pages carry tokens made by `funnel token`, and each role gets the
// board it may work on. A viewer sees an admin's card arrive live but has nothing to drag, no +,
// no stage editor and no settings; a member creates and moves cards and keeps to their own card
// fields; a page without a token, or with a token the server refuses, says so for good.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'

import {
  card,
  column,
  columnOf,
  consoleLog,
  createBoard,
  describe,
  docClient,
  dragCard,
  eventually,
  funnelToken,
  newSession,
  openBoard,
  placesOf,
  saveArtifacts,
  serverAndBrowser,
  snapshot,
  TEST_TIMEOUT,
  WAIT_MS,
  waitFor,
  waitUntilReady
} from './helpers.mjs'

const FILE = import.meta.url
const SECRET = randomBytes(32).toString('hex')

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started), { args: ['--auth-secret', SECRET] })

const tokens = {}
const tokenOf = async (user, role, extra = {}) => {
  const key = `${user}:${role}:${JSON.stringify(extra)}`
  tokens[key] ??= await funnelToken({ secret: SECRET, user, role, ...extra })
  return tokens[key]
}
const adminToken = () => tokenOf('ada', 'admin', { name: 'Ada Admin' })
const memberToken = () => tokenOf('mel', 'member', { name: 'Mel Member' })
const viewerToken = () => tokenOf('vic', 'viewer', { name: 'Vic Viewer' })

/** Runs `body(sessions)`, then saves each page's final state and closes every context. */
async function withSessions (name, body) {
  const sessions = {}
  let failed = false
  try {
    await body(sessions)
  } catch (error) {
    failed = true
    throw error
  } finally {
    const saved = await saveArtifacts(FILE, name, sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    if (failed) console.error(`[${name}] final state saved: ${saved.join(', ')}`)
  }
}

/** How many elements match `selector` on the page. */
const count = (page, selector) => page.locator(selector).count()

/** What a board page offers, read through the DOM contract. */
async function controls (page) {
  return page.evaluate(() => {
    const n = (selector) => document.querySelectorAll(selector).length
    return {
      draggable: n('[draggable="true"]'),
      draggableNotCards: [...document.querySelectorAll('[draggable="true"]')].filter((el) => !el.hasAttribute('data-card-id')).length,
      addCard: n('[data-action="add-card"]'),
      editStage: n('[data-action="edit-stage"]'),
      addStage: n('[data-action="add-stage"]') + n('[data-action="add-failure-stage"]'),
      settings: n('[data-action="open-settings"]')
    }
  })
}

/** Quick-create in a column: the +, a title, save. */
async function quickCreate (page, stageId, title) {
  await column(page, stageId).locator('[data-action="add-card"]').first().click()
  const form = page.locator('form[data-form="quick-create"]').first()
  await form.waitFor({ state: 'visible' })
  await form.locator('input[name="title"]').fill(title)
  await form.locator('button[type="submit"]').first().click()
}

/** The id of the one card titled `title` in a page's snapshot, or undefined. */
function cardTitled (s, title) {
  for (const col of s.columns) {
    const found = col.cards.find((c) => c.fields.title === title)
    if (found) return { id: found.id, stage: col.id }
  }
  return undefined
}

/** The refusal a page shows: `[data-refusal]`'s code and text, and the connection area's state. */
async function refusalShown (page) {
  return page.evaluate(() => {
    const el = document.querySelector('[data-refusal]')
    const connection = document.querySelector('[data-connection]')
    return {
      code: el?.getAttribute('data-refusal') ?? null,
      text: el ? el.textContent.replace(/\s+/g, ' ').trim() : null,
      connection: connection?.getAttribute('data-connection-state') ?? null,
      connectionCode: connection?.getAttribute('data-refusal-code') ?? null,
      connectionText: connection ? connection.textContent.replace(/\s+/g, ' ').trim() : null,
      columns: document.querySelectorAll('[data-stage-id]').length
    }
  })
}

test('a viewer sees the admin\'s new card live, but has nothing to drag, no +, no stage editor, no settings', { timeout: TEST_TIMEOUT }, () =>
  withSessions('viewer', async (sessions) => {
    const boardId = await createBoard(server, { name: 'Auth viewer', token: await adminToken() })
    const yjs = await docClient(server, boardId, { token: await adminToken() })
    try {
      const newStage = yjs.stageId('New')
      const ada = sessions.ada = await openBoard(browser, server, boardId, 'ada', { testName: 'viewer', token: await adminToken() })
      const vic = sessions.vic = await openBoard(browser, server, boardId, 'vic', { testName: 'viewer', token: await viewerToken() })

      // The token left the address bar; the header names the token's user and role.
      for (const [session, role] of [[ada, 'admin'], [vic, 'viewer']]) {
        const s = await snapshot(session.page)
        assert.equal(s.url, `/boards/${boardId}`, 'the token is taken out of the address')
        assert.equal(await count(session.page, `[data-me="${session.user}"][data-role="${role}"]`), 1, `the header names ${session.user} as ${role}`)
        assert.equal(await count(session.page, '#current-user'), 0, 'no user picker with a token')
      }

      // The admin has every control; the viewer none.
      const adminControls = await controls(ada.page)
      assert.equal(adminControls.addCard, 7)
      assert.equal(adminControls.editStage, 7)
      assert.equal(adminControls.addStage, 2)
      assert.equal(adminControls.settings, 1)
      assert.deepEqual(await controls(vic.page), { draggable: 0, draggableNotCards: 0, addCard: 0, editStage: 0, addStage: 0, settings: 0 })

      // A card the admin's page creates appears in the viewer's page.
      await quickCreate(ada.page, newStage, 'Made by the admin')
      const made = await eventually('the viewer to see the admin\'s card in New', async () => {
        const found = cardTitled(await snapshot(vic.page), 'Made by the admin')
        assert.ok(found, 'no card titled "Made by the admin"')
        assert.equal(found.stage, newStage)
        return found
      }, { describe: () => describe(vic.page) })
      await waitFor(() => yjs.card(made.id)?.responsible === 'ada', {
        message: () => `the card's responsible to be the admin's user id: ${JSON.stringify(yjs.card(made.id))}`
      })

      // Still nothing to drag (the new card neither), and Alt+arrow moves nothing.
      assert.equal((await controls(vic.page)).draggable, 0, 'the viewer\'s cards are not draggable')
      await card(vic.page, made.id).focus()
      await vic.page.keyboard.press('Alt+ArrowRight')
      // The card panel reads, without fields to edit or activities to add.
      await card(vic.page, made.id).locator('[data-card-field="title"]').click()
      const panel = vic.page.locator('[data-panel="card"]').first()
      await panel.waitFor({ state: 'visible' })
      assert.equal(await panel.locator('form[data-form="card"]').count(), 0, 'the viewer\'s card panel has no form')
      assert.equal(await panel.locator('[data-action="add-activity"]').count(), 0, 'the viewer cannot add activities')
      assert.equal(await panel.locator('select').count(), 0, 'the viewer cannot pick a stage')
      await vic.page.keyboard.press('Escape')

      // Nothing was written, so the server had nothing to refuse: the viewer is still live.
      await eventually('the viewer to stay connected, with the card where it was', async () => {
        const s = await snapshot(vic.page)
        assert.equal(s.connection, 'connected')
        assert.deepEqual(placesOf(s, made.id).map((p) => p.column), [newStage])
        assert.ok(s.presence.includes('ada') && s.presence.includes('vic'), `presence: ${JSON.stringify(s.presence)}`)
      }, { describe: () => describe(vic.page) })
      assert.equal(yjs.card(made.id).stage, newStage)
      await eventually('the admin to see the viewer on the board', async () => {
        assert.ok((await snapshot(ada.page)).presence.includes('vic'))
      }, { describe: () => describe(ada.page) })

      // A reload keeps the session (the token is in sessionStorage, not in the address).
      await vic.page.reload({ waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await waitUntilReady(vic)
      assert.equal((await snapshot(vic.page)).url, `/boards/${boardId}`)
      assert.equal(await count(vic.page, '[data-me="vic"][data-role="viewer"]'), 1, 'still signed in as the viewer after a reload')
      assert.equal((await controls(vic.page)).draggable, 0)
    } finally {
      yjs.destroy()
    }
  })
)

test('a member creates and moves a card, keeps to their own card fields, and has no stage editor', { timeout: TEST_TIMEOUT }, () =>
  withSessions('member', async (sessions) => {
    const boardId = await createBoard(server, { name: 'Auth member', token: await adminToken() })
    const yjs = await docClient(server, boardId, { token: await adminToken() })
    try {
      const stages = { New: yjs.stageId('New'), IP: yjs.stageId('In progress') }
      const mel = sessions.mel = await openBoard(browser, server, boardId, 'mel', { testName: 'member', token: await memberToken() })

      const memberControls = await controls(mel.page)
      assert.equal(memberControls.addCard, 7, 'a member has the + of every column')
      assert.equal(memberControls.editStage, 0, 'a member has no stage pencil')
      assert.equal(memberControls.addStage, 0, 'a member cannot add stages')
      assert.equal(memberControls.settings, 1, 'a member has settings (their own card fields)')

      await quickCreate(mel.page, stages.New, 'Made by the member')
      const made = await eventually('the member\'s card to show in New', async () => {
        const found = cardTitled(await snapshot(mel.page), 'Made by the member')
        assert.ok(found, 'no card titled "Made by the member"')
        assert.equal(found.stage, stages.New)
        return found
      }, { describe: () => describe(mel.page) })
      await waitFor(() => yjs.card(made.id)?.responsible === 'mel', {
        message: () => `the card's responsible to be the member: ${JSON.stringify(yjs.card(made.id))}`
      })
      const handles = await controls(mel.page)
      assert.ok(handles.draggable >= 1, 'the member\'s card is draggable')
      assert.equal(handles.draggableNotCards, 0, 'no column header is draggable for a member')

      await dragCard(mel.page, made.id, stages.IP)
      await waitFor(() => yjs.card(made.id)?.stage === stages.IP, {
        message: () => `the document to have the card in In progress: ${JSON.stringify(yjs.card(made.id))}`
      })

      // The member's settings hold only their own card fields; saving writes views/mel alone.
      await mel.page.locator('[data-action="open-settings"]').first().click()
      const settings = mel.page.locator('[data-panel="settings"]').first()
      await settings.waitFor({ state: 'visible' })
      assert.equal(await settings.locator('input[data-quick-create-field]').count(), 0, 'no quick-create form for a member')
      assert.equal(await settings.locator('input[name="threshold"]').count(), 0, 'no counter threshold for a member')
      assert.equal(await settings.locator('form[data-form="new-field"]').count(), 0, 'no custom fields for a member')
      await settings.locator('input[data-display-field="client"]').setChecked(false)
      await settings.locator('[data-action="save-settings"]').click()
      await waitFor(() => Array.isArray(yjs.views().mel) && !yjs.views().mel.includes('client'), {
        message: () => `views.mel without client: ${JSON.stringify(yjs.views())}`
      })

      await eventually('the member to stay connected with the card in In progress', async () => {
        const s = await snapshot(mel.page)
        assert.equal(s.connection, 'connected')
        assert.deepEqual(placesOf(s, made.id).map((p) => p.column), [stages.IP])
        assert.equal(columnOf(s, stages.IP).cards[0].fields.client, undefined, 'the member\'s cards no longer show the client')
      }, { describe: () => describe(mel.page) })
    } finally {
      yjs.destroy()
    }
  })
)

test('a page without a token, or with a forged one, says to sign in and shows no board', { timeout: TEST_TIMEOUT }, () =>
  withSessions('signed out', async (sessions) => {
    const boardId = await createBoard(server, { name: 'Auth signed out', token: await adminToken() })
    // The browser logs the refused GET /api/v1/me (401) itself: expected on these pages.
    const expectedErrors = [/status of 401/]
    const forged = await funnelToken({ secret: randomBytes(32).toString('hex'), user: 'eve', role: 'admin' })
    for (const [user, query, wanted] of [['anon', '', /sign in/i], ['eve', `?token=${forged}`, /expired: sign in again/i]]) {
      const session = sessions[user] = await newSession(browser, user, { testName: 'signed out', expectedErrors })
      await session.page.goto(`${server.url}/boards/${boardId}${query}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await eventually(`${user}'s page to say to sign in`, async () => {
        const shown = await refusalShown(session.page)
        assert.equal(shown.code, '4401', `[data-refusal] is ${JSON.stringify(shown)}`)
        assert.match(shown.text, wanted)
        assert.equal(shown.columns, 0, 'no column is shown')
      }, { describe: () => describe(session.page) })
    }
    // The home page without a token says the same, and offers no new board.
    const anon = sessions.anon
    await anon.page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the home page to say to sign in', async () => {
      const shown = await refusalShown(anon.page)
      assert.equal(shown.code, '4401')
      assert.equal(await count(anon.page, 'form[data-form="new-board"]'), 0)
    }, { describe: () => describe(anon.page) })
  })
)

test('refusals of the socket are shown for good: a token for another board (4403), a board that does not exist (4404)', { timeout: TEST_TIMEOUT }, () =>
  withSessions('refused', async (sessions) => {
    const boardId = await createBoard(server, { name: 'Auth refused', token: await adminToken() })
    const other = await createBoard(server, { name: 'Auth other', token: await adminToken() })
    const limited = await tokenOf('lim', 'member', { boards: [other] })
    const cases = [
      ['lim', boardId, limited, '4403', /not allowed.*does not open board/i],
      ['mel', 'no-such-board-here', await memberToken(), '4404', /no such board/i]
    ]
    for (const [user, board, token, code, wanted] of cases) {
      const session = sessions[user] = await newSession(browser, user, { testName: 'refused' })
      await session.page.goto(`${server.url}/boards/${board}?token=${token}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await eventually(`${user}'s page to show the ${code} refusal in the connection area`, async () => {
        const shown = await refusalShown(session.page)
        assert.equal(shown.connection, 'refused', JSON.stringify(shown))
        assert.equal(shown.connectionCode, code)
        assert.match(shown.connectionText, wanted)
        assert.equal(shown.code, code)
        assert.match(shown.text, wanted)
      }, { describe: () => describe(session.page) })
    }
    // For good: a while later still refused, not reconnecting.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    for (const session of Object.values(sessions)) {
      assert.equal((await refusalShown(session.page)).connection, 'refused')
    }
  })
)

test('the home page offers a new board to admins only, and lists the boards a token opens', { timeout: TEST_TIMEOUT }, () =>
  withSessions('home', async (sessions) => {
    const open = await createBoard(server, { name: 'Auth home open', token: await adminToken() })
    const hidden = await createBoard(server, { name: 'Auth home hidden', token: await adminToken() })
    const cases = [
      ['ada', await adminToken(), true, [open, hidden]],
      ['mel', await memberToken(), false, [open, hidden]],
      ['one', await tokenOf('one', 'viewer', { boards: [open] }), false, [open]]
    ]
    for (const [user, token, form, listed] of cases) {
      const session = sessions[user] = await newSession(browser, user, { testName: 'home' })
      await session.page.goto(`${server.url}/?token=${token}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await eventually(`${user}'s home page`, async () => {
        const links = await session.page.locator('a[data-board-link]').evaluateAll((as) => as.map((a) => a.getAttribute('data-board-link')))
        for (const id of [open, hidden]) {
          assert.equal(links.includes(id), listed.includes(id), `board ${id} listed: ${links.includes(id)}`)
        }
        assert.equal(await count(session.page, 'form[data-form="new-board"]'), form ? 1 : 0, `new-board form for ${user}`)
        assert.equal(await count(session.page, `[data-me="${user}"]`), 1)
      })
      assert.equal(new URL(session.page.url()).search, '', 'the token is taken out of the address')
    }
    // In-app navigation keeps the token: the viewer's link opens the board, live and read only.
    const one = sessions.one
    await one.page.locator(`a[data-board-link="${open}"]`).first().click()
    await waitUntilReady(one)
    assert.equal((await controls(one.page)).addCard, 0)
  })
)

test('no console errors or uncaught page errors in the tests above (beyond the expected refusals)', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
