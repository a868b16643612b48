// Roles per board in the web client (docs/accounts.md, `GET /api/v1/me?boardId=`): a person who
// is a viewer by default but a member on one board edits there (and the server takes the edit),
// and reads every other board only, until a role raised there reaches her open page (the socket
// reconnects, the page asks again); a member by default who is a viewer on one board gets that
// board read only, and edits elsewhere.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'

import {
  consoleLog,
  createBoard,
  describe,
  docClient,
  editCardField,
  eventually,
  funnelToken,
  newSession,
  openCard,
  saveArtifacts,
  serverAndBrowser,
  TEST_TIMEOUT,
  WAIT_MS,
  waitUntilReady
} from './helpers.mjs'

const FILE = import.meta.url
const SECRET = randomBytes(32).toString('hex')

/** The browser logs the 401 of /me before the person signs in. */
const EXPECTED = [/status of 401/]

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started), { args: ['--auth-secret', SECRET] })

async function api (method, path, token, body) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS)
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? null : JSON.parse(text) }
}

/** Invites `email` with `role`, sets the password through the link; returns the person's id. */
async function person (admin, email, role, password) {
  const invited = await api('POST', '/api/v1/invites', admin, { email, role })
  assert.equal(invited.status, 201, JSON.stringify(invited.body))
  const secret = invited.body.link.split('#')[1]
  const accepted = await fetch(`${server.url}/api/v1/invites/${secret}/accept`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
    signal: AbortSignal.timeout(WAIT_MS)
  })
  assert.equal(accepted.status, 200, await accepted.text())
  return invited.body.person.id
}

/** Opens `boardId` in a fresh browser, signing in on the page it shows first. */
async function openSignedIn (name, email, password, boardId) {
  const session = await newSession(browser, name, { testName: 'boardroles', expectedErrors: EXPECTED })
  const { page } = session
  await page.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
  const form = page.locator('form[data-form="sign-in"]')
  await form.waitFor({ state: 'visible' })
  await form.locator('input[name="email"]').fill(email)
  await form.locator('input[name="password"]').fill(password)
  await form.locator('button[type="submit"]').click()
  await waitUntilReady(session)
  return session
}

/** What the board page offers: a + per column, draggable cards, the role in the header. */
async function offered (page) {
  return page.evaluate(() => ({
    addCard: document.querySelectorAll('[data-action="add-card"]').length > 0,
    draggable: document.querySelectorAll('[data-card-id][draggable="true"]').length > 0,
    role: document.querySelector('[data-me]')?.getAttribute('data-role') ?? null
  }))
}

test('a board role over the default: the viewer who is a member on one board edits there, the member who is a viewer there reads it only', { timeout: TEST_TIMEOUT }, async () => {
  const admin = await funnelToken({ secret: SECRET, user: 'root', role: 'admin' })
  const shared = await createBoard(server, { token: admin, name: 'e2e shared' })
  const other = await createBoard(server, { token: admin, name: 'e2e other' })
  const yjs = await docClient(server, shared, { token: admin })
  const yjsOther = await docClient(server, other, { token: admin })
  const cardId = yjs.addCard({ stage: yjs.stageId('New'), title: 'Shared deal' })
  yjsOther.addCard({ stage: yjsOther.stageId('New'), title: 'Other deal' })

  const vic = await person(admin, 'vic@example.com', 'viewer', 'vic long passphrase')
  const mia = await person(admin, 'mia@example.com', 'member', 'mia long passphrase')
  for (const [id, role] of [[vic, 'member'], [mia, 'viewer']]) {
    const patched = await api('PATCH', `/api/v1/people/${id}`, admin, { boardRoles: { [shared]: role } })
    assert.equal(patched.status, 200, JSON.stringify(patched.body))
  }

  const sessions = {}
  let failed = false
  try {
    const v = sessions.vic = await openSignedIn('vic', 'vic@example.com', 'vic long passphrase', shared)
    await eventually('vic, a member of this board, to be offered edits', async () => {
      assert.deepEqual(await offered(v.page), { addCard: true, draggable: true, role: 'member' })
    }, { describe: () => describe(v.page) })
    // The server agrees: an inline edit from the card panel is taken.
    const panel = await openCard(v.page, cardId)
    await editCardField(panel, 'client', 'Vic\'s client')
    await eventually('the server to take vic\'s edit', async () => assert.equal(yjs.card(cardId)?.client, 'Vic\'s client'))
    assert.equal(await v.page.locator('[data-refusal]').count(), 0, 'no refusal')

    await v.page.goto(`${server.url}/boards/${other}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await waitUntilReady(v)
    await eventually('vic, a viewer elsewhere, to read the other board only', async () => {
      assert.deepEqual(await offered(v.page), { addCard: false, draggable: false, role: 'viewer' })
    }, { describe: () => describe(v.page) })
    // Made a member there while the page is open: the server reconnects her socket, and the
    // page asks her role again and offers edits, with no reload.
    await v.page.evaluate(() => { window.__beforeRaise = true })
    const raised = await api('PATCH', `/api/v1/people/${vic}`, admin, { boardRoles: { [other]: 'member' } })
    assert.equal(raised.status, 200, JSON.stringify(raised.body))
    await eventually('vic\'s open page to offer edits on the other board', async () => {
      assert.deepEqual(await offered(v.page), { addCard: true, draggable: true, role: 'member' })
    }, { describe: () => describe(v.page) })
    assert.equal(await v.page.evaluate(() => window.__beforeRaise), true, 'no reload')

    const m = sessions.mia = await openSignedIn('mia', 'mia@example.com', 'mia long passphrase', shared)
    await eventually('mia, a viewer of this board, to read it only', async () => {
      assert.deepEqual(await offered(m.page), { addCard: false, draggable: false, role: 'viewer' })
    }, { describe: () => describe(m.page) })
    const read = await openCard(m.page, cardId)
    assert.equal(await read.locator('form[data-form="card"]').count(), 0, 'her card panel only reads')
    assert.equal(await read.locator('form[data-form="comment"]').count(), 0, 'and takes no comment')

    await m.page.goto(`${server.url}/boards/${other}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await waitUntilReady(m)
    await eventually('mia, a member elsewhere, to edit the other board', async () => {
      assert.deepEqual(await offered(m.page), { addCard: true, draggable: true, role: 'member' })
    }, { describe: () => describe(m.page) })
  } catch (error) {
    failed = true
    throw error
  } finally {
    yjs.destroy()
    yjsOther.destroy()
    await saveArtifacts(FILE, 'boardroles', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})

test('no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
