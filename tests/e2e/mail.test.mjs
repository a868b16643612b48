// Deals from e-mail in the browser: a message posted to the board's inbound-email endpoint (the
// path SMTP mail takes too) makes a deal that shows live on an open board; its card panel's
// timeline shows the entry as an e-mail (subject, sender, text), and a reply to it joins the same
// timeline; the admin's settings show the board's inbound address.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  card,
  consoleLog,
  createBoard,
  describe,
  eventually,
  openBoard,
  openCard,
  saveArtifacts,
  serverAndBrowser,
  shortId,
  TEST_TIMEOUT,
  WAIT_MS
} from './helpers.mjs'

const FILE = import.meta.url

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

/** Posts a raw message to the board; returns the outcome. */
async function postMail (boardId, raw) {
  const response = await fetch(`${server.url}/api/v1/boards/${boardId}/inbound-email`, {
    method: 'POST',
    headers: { 'content-type': 'message/rfc822' },
    body: raw,
    signal: AbortSignal.timeout(WAIT_MS)
  })
  const body = await response.text()
  assert.equal(response.status, 201, `inbound-email answered ${response.status}: ${body}`)
  return JSON.parse(body)
}

const message = ({ from, id, subject, text, inReplyTo }) =>
  [
    `From: ${from}`,
    'To: board@localhost',
    `Subject: ${subject}`,
    `Message-ID: <${id}>`,
    ...(inReplyTo ? [`In-Reply-To: <${inReplyTo}>`] : []),
    '',
    text,
    ''
  ].join('\r\n')

/** The e-mail entries of the open card's timeline, read through the DOM contract. */
async function mailEntries (panel) {
  return panel.locator('[data-timeline-mail]').evaluateAll((entries) => entries.map((entry) => entry.textContent.replace(/\s+/g, ' ').trim()))
}

test('mail: a deal from an e-mail shows live, its timeline shows the e-mail and a reply, settings show the address', { timeout: TEST_TIMEOUT }, async () => {
  const boardId = await createBoard(server, { name: `e2e mail ${shortId()}` })
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await openBoard(browser, server, boardId, 'ann', { testName: 'mail' })
    const id = `${shortId()}@client.example`
    const created = await postMail(boardId, message({
      from: 'Ada Lovelace <ada@client.example>',
      id,
      subject: 'Forty engines',
      text: 'What would forty engines cost?'
    }))
    assert.equal(created.action, 'created')
    const deal = card(ann.page, created.cardId)
    await deal.waitFor({ state: 'visible', timeout: WAIT_MS })
    assert.match(await deal.textContent(), /Forty engines/)

    const panel = await openCard(ann.page, created.cardId)
    await eventually('the timeline to show the e-mail', async () => {
      const entries = await mailEntries(panel)
      assert.equal(entries.length, 1, `entries: ${JSON.stringify(entries)}`)
      assert.match(entries[0], /Forty engines/)
      assert.match(entries[0], /Ada Lovelace <ada@client\.example>/)
      assert.match(entries[0], /What would forty engines cost\?/)
    }, { describe: () => describe(ann.page) })

    // A reply lands on the same card; the open panel refetches its timeline by itself.
    const reply = await postMail(boardId, message({
      from: 'grace@client.example',
      id: `${shortId()}@client.example`,
      subject: 'Re: Forty engines',
      text: 'By March, please.',
      inReplyTo: id
    }))
    assert.equal(reply.action, 'appended')
    assert.equal(reply.cardId, created.cardId)
    await eventually('the reply to join the timeline', async () => {
      const entries = await mailEntries(panel)
      assert.equal(entries.length, 2, `entries: ${JSON.stringify(entries)}`)
      assert.match(entries[0], /Re: Forty engines/)
      assert.match(entries[0], /grace@client\.example/)
    }, { describe: () => describe(ann.page) })
    await ann.page.keyboard.press('Escape')

    // Local mode: everyone is an admin, and the address is the board id at --mail-domain.
    await ann.page.locator('[data-action="open-settings"]').first().click()
    const settings = ann.page.locator('[data-panel="settings"]').first()
    await settings.waitFor({ state: 'visible' })
    const address = settings.locator('[data-inbound-address]').first()
    await address.waitFor({ state: 'visible', timeout: WAIT_MS })
    assert.equal(await address.inputValue(), `${boardId}@localhost`)
    assert.deepEqual(consoleLog.errors, [])
  } catch (error) {
    failed = true
    throw error
  } finally {
    await saveArtifacts(FILE, 'mail', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})
