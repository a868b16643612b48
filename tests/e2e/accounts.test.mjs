// funnel with --auth-secret and accounts (docs/accounts.md), in Chromium: the first admin,
// invited by `funnel invite --admin` on the server's machine, opens the link and sets a
// password; they invite a member from the People page; the member accepts in another browser,
// signs in with the form and works on a board; the responsible picker lists people by name;
// disabling the member turns their open board into the signed-out page at once; sign-out; a wrong
// password and too many attempts say so on the form.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'

import {
  consoleLog,
  createBoard,
  describe,
  docClient,
  eventually,
  funnelBinary,
  funnelToken,
  newSession,
  openCard,
  saveArtifacts,
  seriousViolations,
  serverAndBrowser,
  TEST_TIMEOUT,
  WAIT_MS,
  waitFor,
  waitUntilReady
} from './helpers.mjs'

const FILE = import.meta.url
const SECRET = randomBytes(32).toString('hex')
const ADMIN = { email: 'ann@example.com', name: 'Ann Admin', password: 'correct horse battery' }
const MEMBER = { email: 'mel@example.com', name: 'Mel Member', password: 'staple ledger 42' }

/** The browser logs refused requests itself (401 of /me before signing in, a wrong password, 429). */
const EXPECTED = [/status of 401/, /status of 429/]

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started), { args: ['--auth-secret', SECRET] })

/** Browser sessions that live across the tests of this file (closed by the last test). */
const kept = {}
let memberId = ''
let boardId = ''

/** `funnel invite`: the one-time link it prints, for the server's data directory. */
function inviteFromCli (email, { admin = false, name } = {}) {
  const args = ['invite', email, '--data-dir', server.dataDir, '--url', server.url]
  if (admin) args.splice(1, 0, '--admin')
  if (name !== undefined) args.push('--name', name)
  return new Promise((resolve, reject) => {
    execFile(funnelBinary(), args, { timeout: WAIT_MS, env: { ...process.env, NO_COLOR: '1' } }, (error, out, err) => {
      if (error) reject(new Error(`funnel invite failed: ${error.message}\n${err}`))
      else resolve(out.trim())
    })
  })
}

async function withSessions (name, body) {
  const sessions = {}
  let failed = false
  try {
    await body(sessions)
  } catch (error) {
    failed = true
    throw error
  } finally {
    const saved = await saveArtifacts(FILE, name, { ...kept, ...sessions }, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    if (failed) console.error(`[${name}] final state saved: ${saved.join(', ')}`)
  }
}

const text = (page, selector) =>
  page.locator(selector).first().evaluate((el) => el.textContent.replace(/\s+/g, ' ').trim())

/** Sets a password on an invite page and waits for the home page, signed in as `name`. */
async function acceptInvite (session, link, { name, password }) {
  const { page } = session
  await page.goto(link, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
  const form = page.locator('form[data-form="invite"]')
  await form.waitFor({ state: 'visible' })
  await form.locator('input[name="name"]').fill(name)
  // A password too short, then two that differ, are refused on the page.
  await form.locator('input[name="password"]').fill('short')
  await form.locator('input[name="confirm"]').fill('short')
  await form.locator('button[type="submit"]').click()
  await eventually('the invite form to say the password is too short', async () => {
    assert.match(await text(page, '[data-invite-form-error]'), /at least 10 characters/)
  }, { describe: () => describe(page) })
  await form.locator('input[name="password"]').fill(password)
  await form.locator('input[name="confirm"]').fill(`${password}!`)
  await form.locator('button[type="submit"]').click()
  await eventually('the invite form to say the passwords differ', async () => {
    assert.match(await text(page, '[data-invite-form-error]'), /not the same/)
  }, { describe: () => describe(page) })
  await form.locator('input[name="confirm"]').fill(password)
  await form.locator('button[type="submit"]').click()
  await eventually(`${name} to land on the home page, signed in`, async () => {
    assert.equal(new URL(page.url()).pathname, '/')
    assert.equal(new URL(page.url()).hash, '', 'the used link leaves the address')
    assert.match(await text(page, '.account'), new RegExp(name))
  }, { describe: () => describe(page) })
}

/** Signs in with the form of the sign-in page (which the page shows wherever it is). */
async function signIn (page, { email, password }) {
  const form = page.locator('form[data-form="sign-in"]')
  await form.waitFor({ state: 'visible' })
  await form.locator('input[name="email"]').fill(email)
  await form.locator('input[name="password"]').fill(password)
  await form.locator('button[type="submit"]').click()
}

test('the first admin opens the link of `funnel invite --admin`, sets a password and is signed in', { timeout: TEST_TIMEOUT }, () =>
  withSessions('admin accepts', async () => {
    const link = await inviteFromCli(ADMIN.email, { admin: true })
    assert.match(link, /\/invite#[\w-]{40,}$/, `funnel invite printed ${JSON.stringify(link)}`)
    kept.admin = await newSession(browser, 'admin', { testName: 'admin accepts', expectedErrors: EXPECTED })
    await acceptInvite(kept.admin, link, ADMIN)
    const { page } = kept.admin
    assert.equal(await page.locator('[data-action="sign-out"]').count(), 1, 'Sign out in the header')
    assert.equal(await page.locator('[data-action="people"]').count(), 1, 'People in the header, for an admin')
    assert.equal(await text(page, '.account .avatar'), 'AA', 'the initials of Ann Admin')
    // The link works once.
    const again = await newSession(browser, 'again', { testName: 'admin accepts', expectedErrors: [/status of 404/, /status of 401/] })
    try {
      await again.page.goto(link, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await eventually('a used link to say so', async () => {
        assert.match(await text(again.page, '[data-invite-error]'), /used already, has expired/)
      }, { describe: () => describe(again.page) })
    } finally {
      await again.context.close()
    }
  })
)

test('the admin invites a member from the People page; the member accepts elsewhere, signs in and sees the board', { timeout: TEST_TIMEOUT }, () =>
  withSessions('member joins', async (sessions) => {
    const admin = kept.admin.page
    await admin.locator('[data-action="people"]').click()
    await admin.locator('form[data-form="invite-person"]').waitFor({ state: 'visible' })
    const form = admin.locator('form[data-form="invite-person"]')
    await form.locator('input[name="email"]').fill(MEMBER.email)
    await form.locator('input[name="name"]').fill(MEMBER.name)
    assert.equal(await form.locator('select[name="role"]').inputValue(), 'member', 'member by default')
    await form.locator('button[type="submit"]').click()
    const link = await eventually('the one-time link to show', async () => {
      const value = await admin.locator('[data-invite-link]').inputValue()
      assert.match(value, /\/invite#[\w-]{40,}$/)
      return value
    }, { describe: () => describe(admin) })
    assert.equal(await form.locator('select[name="role"]').inputValue(), 'member', 'member again after the invite')
    const row = admin.locator(`[data-person-email="${MEMBER.email}"]`)
    memberId = await row.getAttribute('data-person-id')
    assert.ok(memberId, 'the member has a row with an id')
    assert.equal(await row.getAttribute('data-person-state'), 'invited')

    boardId = await createBoard(server, {
      name: 'Accounts board',
      token: await funnelToken({ secret: SECRET, user: 'script', role: 'admin' })
    })
    // The member, in another browser: accepts, signs out, signs in with the form on the board's address.
    kept.member = await newSession(browser, 'member', { testName: 'member joins', expectedErrors: EXPECTED })
    const member = kept.member.page
    await acceptInvite(kept.member, link, MEMBER)
    assert.equal(await member.locator('[data-action="people"]').count(), 0, 'no People link for a member')
    await member.locator('[data-action="sign-out"]').click()
    await member.locator('form[data-form="sign-in"]').waitFor({ state: 'visible' })
    await member.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signIn(member, MEMBER)
    await waitUntilReady(kept.member)
    assert.equal(new URL(member.url()).pathname, `/boards/${boardId}`, 'signed in where they were going')
    assert.match(await text(member, '.account'), /Mel Member/)
    // The People page of a member says it is not theirs.
    const peek = await newSession(browser, 'peek', { testName: 'member joins', expectedErrors: EXPECTED })
    sessions.peek = peek
    await peek.page.goto(`${server.url}/people`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signIn(peek.page, MEMBER)
    await peek.page.locator('[data-people-refused="role"]').waitFor({ state: 'visible' })
    // The admin's directory now says the member is active.
    await admin.reload({ waitUntil: 'domcontentloaded' })
    await eventually('the member to show as active', async () => {
      assert.equal(await admin.locator(`[data-person-id="${memberId}"]`).getAttribute('data-person-state'), 'active')
    }, { describe: () => describe(admin) })
  })
)

test('the responsible picker lists people by name, and the card shows the picked person\'s initials', { timeout: TEST_TIMEOUT }, () =>
  withSessions('picker', async () => {
    const yjs = await docClient(server, boardId, { token: await funnelToken({ secret: SECRET, user: 'script', role: 'admin' }) })
    try {
      await waitFor(() => yjs.provider.synced, { message: 'the seeding client to sync' })
      const cardId = yjs.addCard({ stage: yjs.stageId('New'), title: 'Picker deal', amount: 100_00, responsible: '' })
      const admin = kept.admin.page
      await admin.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await waitUntilReady(kept.admin)
      const panel = await openCard(admin, cardId)
      // The responsible edits in place: its value opens the picker.
      await panel.locator('[data-card-detail="responsible"] [data-action="edit-field"]').click()
      const picker = panel.locator('[data-person-picker="responsible"] input[role="combobox"]')
      await picker.click()
      await picker.fill('mel')
      const option = panel.locator(`[data-person-option="${memberId}"]`)
      await eventually('the picker to offer Mel Member', async () => {
        assert.match(await option.textContent(), /Mel Member/)
        assert.equal(await panel.locator('[data-person-option]').count(), 1, 'only Mel matches "mel"')
      }, { describe: () => describe(admin) })
      await option.click()
      await waitFor(() => yjs.card(cardId)?.responsible === memberId, {
        message: () => `the card's responsible to be the member's id: ${JSON.stringify(yjs.card(cardId))}`
      })
      await admin.keyboard.press('Escape')
      await eventually('the card face to show MM', async () => {
        const face = admin.locator(`[data-card-id="${cardId}"] [data-avatar="${memberId}"]`)
        assert.match(await face.textContent(), /MM/)
      }, { describe: () => describe(admin) })
      // A name nobody has is not taken with accounts on: the responsible stays.
      const again = await openCard(admin, cardId)
      await again.locator('[data-card-detail="responsible"] [data-action="edit-field"]').click()
      const input = again.locator('[data-person-picker="responsible"] input[role="combobox"]')
      await input.fill('nobody-here')
      await input.press('Tab')
      await eventually('the picker to say to choose from the list', async () => {
        assert.match(await text(admin, '[data-person-picker="responsible"] .form-error'), /choose a person/i)
      }, { describe: () => describe(admin) })
      assert.equal(yjs.card(cardId)?.responsible, memberId)
      // The activity form: a call by default, the admin responsible, by name.
      await again.locator('[data-action="add-activity"]').first().click()
      const activity = admin.locator('form[data-form="activity"]')
      await activity.waitFor({ state: 'visible' })
      assert.equal(await activity.locator('select[name="kind"]').inputValue(), 'call')
      assert.equal(await activity.locator('[data-person-picker="responsible"] input[role="combobox"]').inputValue(), ADMIN.name)
    } finally {
      yjs.destroy()
    }
  })
)

test('a role lowered on the open board says so to the member, who opens the board again with it', { timeout: TEST_TIMEOUT }, () =>
  withSessions('role lowered', async () => {
    const member = kept.member.page
    assert.equal(new URL(member.url()).pathname, `/boards/${boardId}`)
    await waitUntilReady(kept.member)
    const admin = kept.admin.page
    await admin.goto(`${server.url}/people`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    const row = admin.locator(`[data-person-id="${memberId}"]`)
    await row.locator('[data-action="board-roles"]').click()
    const form = row.locator('form[data-form="board-role"]')
    await form.locator('select[name="board"]').selectOption(boardId)
    await form.locator('select[name="role"]').selectOption('viewer')
    await form.locator('button[type="submit"]').click()
    await eventually('the row to list the board role', async () => {
      assert.equal(await row.locator(`[data-board-role="${boardId}"] select`).inputValue(), 'viewer')
    }, { describe: () => describe(admin) })
    await eventually('the member\'s board to say the role changed', async () => {
      assert.equal(await member.locator('[data-page="refused"]').count(), 1)
      const said = await text(member, '[data-refusal]')
      assert.match(said, /changed what you may do/)
      assert.doesNotMatch(said, /44\d\d|close|socket/i, 'no protocol words')
    }, { timeout: 5_000, describe: () => describe(member) })
    await member.locator('[data-action="reopen-board"]').click()
    await waitUntilReady(kept.member)
    // Back to the usual role (member) for the tests after this one.
    await row.locator(`[data-board-role="${boardId}"] button`).click()
    await eventually('the board role to be gone', async () => {
      assert.equal(await row.locator(`[data-board-role="${boardId}"]`).count(), 0)
    }, { describe: () => describe(admin) })
    // The default role, lowered the same way, closes the board too; back to member, it opens again.
    // (A raised role reaches an open socket only when it reconnects: the page is opened anew.)
    await member.reload({ waitUntil: 'domcontentloaded' })
    await waitUntilReady(kept.member)
    await row.locator('select[data-person-role]').selectOption('viewer')
    await eventually('the member\'s board to say the role changed again', async () => {
      assert.equal(await member.locator('[data-page="refused"]').count(), 1)
    }, { timeout: 5_000, describe: () => describe(member) })
    await admin.reload({ waitUntil: 'domcontentloaded' })
    assert.equal(await row.locator('select[data-person-role]').inputValue(), 'viewer', 'the server kept the role')
    await row.locator('select[data-person-role]').selectOption('member')
    await eventually('the role to be member again', async () => {
      assert.equal(await row.locator('select[data-person-role]').inputValue(), 'member')
      assert.match(await text(admin, '.people-main [role="status"]'), /Mel Member is now Member/)
    }, { describe: () => describe(admin) })
    await member.locator('[data-action="reopen-board"]').click()
    await waitUntilReady(kept.member)
  })
)

test('disabling the member turns their open board into the signed-out page at once; enabling lets them back', { timeout: TEST_TIMEOUT }, () =>
  withSessions('disable', async () => {
    const member = kept.member.page
    assert.equal(new URL(member.url()).pathname, `/boards/${boardId}`)
    await waitUntilReady(kept.member)
    const admin = kept.admin.page
    await admin.goto(`${server.url}/people`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    const row = admin.locator(`[data-person-id="${memberId}"]`)
    await row.locator('[data-action="disable-person"]').click()
    const started = Date.now()
    await eventually('the member\'s board to become the signed-out page', async () => {
      assert.equal(await member.locator('[data-page="sign-in"]').count(), 1)
      const reason = await text(member, '[data-refusal]')
      assert.match(reason, /account has been disabled/i)
      assert.doesNotMatch(reason, /44\d\d|close|socket/i, 'no protocol words')
      assert.equal(await member.locator('[data-stage-id]').count(), 0, 'no column is shown')
    }, { timeout: 5_000, describe: () => describe(member) })
    const took = Date.now() - started
    assert.ok(took < 5_000, `signed out after ${took} ms`)
    await eventually('the row to say disabled', async () => {
      assert.equal(await row.getAttribute('data-person-state'), 'disabled')
    })
    await row.locator('[data-action="enable-person"]').click()
    await eventually('the row to say active again', async () => {
      assert.equal(await row.getAttribute('data-person-state'), 'active')
    })
    await signIn(member, MEMBER)
    await waitUntilReady(kept.member)
  })
)

test('axe-core finds no critical or serious violation on the sign-in, People and picker views', { timeout: TEST_TIMEOUT }, () =>
  withSessions('axe', async (sessions) => {
    const anon = sessions.anon = await newSession(browser, 'anon', { testName: 'axe', expectedErrors: EXPECTED })
    await anon.page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await anon.page.locator('form[data-form="sign-in"]').waitFor({ state: 'visible' })
    assert.deepEqual(await seriousViolations(anon.page), [], 'the sign-in page')

    const admin = kept.admin.page
    await admin.goto(`${server.url}/people`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await admin.locator(`[data-person-id="${memberId}"] [data-action="board-roles"]`).click()
    await admin.locator('[data-person-boards]').waitFor({ state: 'visible' })
    assert.deepEqual(await seriousViolations(admin), [], 'the People page')

    await admin.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await waitUntilReady(kept.admin)
    const cardId = await admin.locator('[data-card-id]').first().getAttribute('data-card-id')
    const panel = await openCard(admin, cardId)
    await panel.locator('[data-card-detail="responsible"] [data-action="edit-field"]').click()
    await panel.locator('[data-person-picker="responsible"] input[role="combobox"]').click()
    await panel.locator('[data-person-option]').first().waitFor({ state: 'visible' })
    assert.deepEqual(await seriousViolations(admin), [], 'the card panel with the picker open')
    // Escape closes the innermost first: the list, then the field's editor, then the panel.
    await admin.keyboard.press('Escape')
    assert.equal(await panel.locator('[data-person-option]').count(), 0, 'the list closed')
    assert.ok(await panel.isVisible(), 'the panel stays for the second Escape')
    await admin.keyboard.press('Escape')
    assert.equal(await panel.locator('[data-card-detail="responsible"][data-editing]').count(), 0, 'the editor closed')
    assert.ok(await panel.isVisible(), 'the panel stays for the third Escape')
    await admin.keyboard.press('Escape')
    await panel.waitFor({ state: 'hidden' })
  })
)

test('sign-out shows the sign-in page, and a reload stays signed out', { timeout: TEST_TIMEOUT }, () =>
  withSessions('sign out', async () => {
    const admin = kept.admin.page
    const boardCopies = () => admin.evaluate(async () =>
      (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith('funnel.board.')))
    assert.ok((await boardCopies()).length > 0, 'the boards the admin opened are kept in the browser')
    await admin.locator('[data-action="sign-out"]').click()
    await eventually('the sign-in page after sign-out', async () => {
      assert.equal(await admin.locator('form[data-form="sign-in"]').count(), 1)
      assert.match(await text(admin, '[data-refusal]'), /you signed out/i)
    }, { describe: () => describe(admin) })
    await eventually('the browser to keep no board after sign-out', async () => {
      assert.deepEqual(await boardCopies(), [])
    })
    await admin.reload({ waitUntil: 'domcontentloaded' })
    await admin.locator('form[data-form="sign-in"]').waitFor({ state: 'visible' })
    assert.equal(await admin.locator('[data-stage-id]').count(), 0)
  })
)

test('a wrong password says so on the form; too many attempts say when to try again', { timeout: TEST_TIMEOUT }, () =>
  withSessions('wrong password', async (sessions) => {
    const session = sessions.eve = await newSession(browser, 'eve', { testName: 'wrong password', expectedErrors: EXPECTED })
    const { page } = session
    await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signIn(page, { email: ADMIN.email, password: 'not the password' })
    await eventually('the form to say the password is wrong', async () => {
      assert.match(await text(page, '[data-sign-in-error]'), /e-mail address or the password is wrong/)
      assert.equal(await page.locator('input[name="password"]').inputValue(), '', 'the password is cleared')
    }, { describe: () => describe(page) })
    // The server allows a burst of 5 attempts per address and e-mail: soon it asks to wait.
    let said = ''
    for (let attempt = 0; attempt < 12 && !/too many/i.test(said); attempt++) {
      await page.locator('input[name="password"]').fill(`wrong ${attempt}`)
      await page.locator('form[data-form="sign-in"] button[type="submit"]').click()
      said = await eventually('an answer to the attempt', async () => {
        const shown = await text(page, '[data-sign-in-error]')
        assert.ok(!(await page.locator('form[data-form="sign-in"] button[type="submit"]').textContent()).includes('Signing in'))
        return shown
      })
    }
    assert.match(said, /too many attempts: try again in \d+ (second|minute)s?/i)
    assert.ok(await page.locator('form[data-form="sign-in"] button[type="submit"]').isDisabled(), 'Sign in waits')
  })
)

test('no console errors or uncaught page errors in the tests above (beyond the expected refusals)', async () => {
  for (const session of Object.values(kept)) await session.context.close().catch(() => {})
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
