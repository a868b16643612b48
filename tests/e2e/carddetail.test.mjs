// The card panel's details, in English and in French: every kind of field edited in place (click,
// type, Enter or leaving the field saves, Escape cancels, a refused value says why), each change
// reaching a second page live, the focus kept on the value after a save, a comment posted from
// the comment box appearing in the timeline and moving the card's avatar to its author, and
// axe-core finding no critical or serious violation on the open panel.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'

import {
  consoleLog,
  card,
  describe,
  describeBoth,
  docClient,
  createBoard,
  editCardField,
  eventually,
  newSession,
  openBoard,
  openCard,
  saveArtifacts,
  seriousViolations,
  serverAndBrowser,
  snapshot,
  cardOf,
  TEST_TIMEOUT,
  waitUntilReady,
  WAIT_MS
} from './helpers.mjs'

const FILE = import.meta.url

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

/** Intl's no-break spaces as plain spaces. */
const spaces = (text) => text.replace(/[\u00a0\u202f]/g, ' ')

/** A custom field of each type, written as `defineField` writes them. */
function defineFields (yjs) {
  const defs = {
    f_text: { label: 'Source', type: 'string' },
    f_number: { label: 'Seats', type: 'number' },
    f_money: { label: 'Setup fee', type: 'money' },
    f_date: { label: 'Kick-off', type: 'date' },
    f_enum: { label: 'Tier', type: 'enum', options: ['Bronze', 'Gold'] },
    f_bool: { label: 'Signed NDA', type: 'bool' },
    f_user: { label: 'Reviewer', type: 'user' }
  }
  yjs.doc.transact(() => {
    for (const [id, def] of Object.entries(defs)) {
      yjs.doc.getMap('fields').set(id, new Y.Map([['label', def.label], ['type', def.type], ['options', def.options ?? []]]))
    }
  })
}

/** The text of a detail row's value (what it reads as when not being edited). */
const valueOf = (panel, field) => panel.locator(`[data-card-detail="${field}"] [data-action="edit-field"]`).first().innerText()

/** Whether the focus is on the value of `field`'s row. */
const focusedOn = (page, field) => page.evaluate((f) => {
  const active = document.activeElement
  return active?.getAttribute('data-action') === 'edit-field' && active.closest('[data-card-detail]')?.getAttribute('data-card-detail') === f
}, field)

/** The local date `days` from now as a date input's value. */
const dateIn = (days) => {
  const d = new Date(Date.now() + days * 86_400_000)
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}
const localMidnight = (text) => {
  const [y, m, d] = text.split('-').map(Number)
  return new Date(y, m - 1, d).getTime()
}

test('card detail: every kind of field edits in place and reaches the other page, the comment moves the avatar, axe passes', { timeout: TEST_TIMEOUT }, async () => {
  const boardId = await createBoard(server, { name: 'e2e card detail' })
  const yjs = await docClient(server, boardId)
  defineFields(yjs)
  const cardId = yjs.addCard({ stage: yjs.stageId('New'), title: 'Acme rollout', amount: 100_00, client: 'Acme', responsible: 'bob' })
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await openBoard(browser, server, boardId, 'ann', { testName: 'carddetail' })
    const bob = sessions.bob = await openBoard(browser, server, boardId, 'bob', { testName: 'carddetail' })
    const { page } = ann
    await eventually('both pages to show the card', async () => {
      for (const session of [ann, bob]) assert.ok(cardOf(await snapshot(session.page), cardId))
    }, { describe: describeBoth(ann, bob) })

    const panel = await openCard(page, cardId)
    await page.waitForTimeout(400) // the panel slides in: check it standing still
    assert.deepEqual(await seriousViolations(page), [], 'the open card panel')

    // Title: a click opens the input, Enter saves, the focus is back on the value.
    await editCardField(panel, 'title', 'Acme rollout, phase 2')
    await eventually('the title saved, the focus on its value', async () => {
      assert.equal(yjs.card(cardId)?.title, 'Acme rollout, phase 2')
      assert.equal(await valueOf(panel, 'title'), 'Acme rollout, phase 2')
      assert.equal(await focusedOn(page, 'title'), true)
    })
    // Keyboard only: Enter on the focused value edits, Escape cancels and keeps the panel open.
    await page.keyboard.press('Enter')
    const titleInput = panel.locator('[data-card-detail="title"] [name="title"]')
    await titleInput.waitFor({ state: 'visible' })
    assert.equal(await titleInput.evaluate((el) => el === document.activeElement), true, 'the input has the focus')
    await page.keyboard.type(' (draft)')
    await page.keyboard.press('Escape')
    await titleInput.waitFor({ state: 'detached' })
    assert.equal(yjs.card(cardId)?.title, 'Acme rollout, phase 2', 'Escape saved nothing')
    assert.equal(await page.locator('[data-panel="card"]').count(), 1, 'Escape closed the edit, not the panel')
    await eventually('the focus back on the title', async () => {
      assert.equal(await focusedOn(page, 'title'), true)
    })

    // Leaving a field and closing the panel at once (Tab then Escape, the second key reaching the
    // page before the row's focus-out settles): the panel closes and what was typed is saved.
    const client = panel.locator('[data-card-detail="client"]')
    await client.locator('[data-action="edit-field"]').click()
    await client.locator('[name="client"]').fill('Acme, in a hurry')
    await page.evaluate(() => {
      const input = document.querySelector('[data-panel="card"] [name="client"]')
      const drawer = input.closest('[data-panel="card"]')
      input.blur()
      drawer.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }))
    })
    await page.locator('[data-panel="card"]').waitFor({ state: 'detached' })
    await eventually('what was typed saved though the panel closed', async () => {
      assert.equal(yjs.card(cardId)?.client, 'Acme, in a hurry')
    })
    await openCard(page, cardId)

    // Amount and currency, client, e-mail (refused first), expected close date.
    await editCardField(panel, 'amount', '1,500.50')
    await editCardField(panel, 'currency', 'eur')
    await editCardField(panel, 'client', 'Acme Corp', 'Tab')
    const email = await editCardField(panel, 'email', 'not an address')
    const alert = email.locator('[role="alert"]')
    await alert.waitFor({ state: 'visible' })
    assert.match(await alert.innerText(), /E-mail: enter an address/)
    assert.equal(await email.locator('[name="email"]').getAttribute('aria-invalid'), 'true')
    await email.locator('[name="email"]').fill('buyer@acme.example')
    await email.locator('[name="email"]').press('Enter')
    const close = dateIn(30)
    await editCardField(panel, 'closeDate', close)
    await eventually('the built-in fields in the document', async () => {
      const c = yjs.card(cardId)
      assert.deepEqual(
        { amount: c.amount, currency: c.currency, client: c.client, email: c.email, closeDate: c.closeDate },
        { amount: 150050, currency: 'EUR', client: 'Acme Corp', email: 'buyer@acme.example', closeDate: localMidnight(close) }
      )
    })
    assert.match(spaces(await valueOf(panel, 'amount')), /€1,500\.50/)

    // Responsible through the people picker: typed, Enter picks.
    await panel.locator('[data-card-detail="responsible"] [data-action="edit-field"]').click()
    const picker = panel.locator('[data-card-detail="responsible"] input[role="combobox"]')
    await picker.waitFor({ state: 'visible' })
    await picker.fill('carol')
    await picker.press('Enter')
    await eventually('the responsible saved', async () => assert.equal(yjs.card(cardId)?.responsible, 'carol'))

    // Custom fields: text, number, money, date, a choice, a person, a yes/no box.
    await editCardField(panel, 'f_text', 'Trade fair')
    await editCardField(panel, 'f_number', '12')
    await editCardField(panel, 'f_money', '250')
    const kickoff = dateIn(7)
    await editCardField(panel, 'f_date', kickoff)
    await editCardField(panel, 'f_enum', 'Gold')
    await panel.locator('[data-card-detail="f_user"] [data-action="edit-field"]').click()
    const reviewer = panel.locator('[data-card-detail="f_user"] input[role="combobox"]')
    await reviewer.fill('dan')
    await reviewer.press('Enter')
    await panel.locator('[data-card-detail="f_bool"] input[name="f_bool"]').check()
    // An emptied title and a currency that is no code are refused, each saying why.
    const title = await editCardField(panel, 'title', '')
    await title.locator('[role="alert"]').waitFor({ state: 'visible' })
    assert.match(await title.locator('[role="alert"]').innerText(), /Title: a card needs a title/)
    await title.locator('[name="title"]').press('Escape')
    const currency = await editCardField(panel, 'currency', 'E1')
    await currency.locator('[role="alert"]').waitFor({ state: 'visible' })
    assert.match(await currency.locator('[role="alert"]').innerText(), /three-letter code/)
    await currency.locator('[name="currency"]').press('Escape')
    assert.equal(yjs.card(cardId)?.title, 'Acme rollout, phase 2')
    assert.equal(yjs.card(cardId)?.currency, 'EUR')
    // A number the browser cannot read ("1e") is refused, not saved as an empty field.
    const seats = panel.locator('[data-card-detail="f_number"]')
    await seats.locator('[data-action="edit-field"]').click()
    await seats.locator('[name="f_number"]').press('Control+a')
    await page.keyboard.type('1e')
    await page.keyboard.press('Enter')
    await seats.locator('[role="alert"]').waitFor({ state: 'visible' })
    assert.match(await seats.locator('[role="alert"]').innerText(), /Seats: enter a number/)
    await page.keyboard.press('Escape')
    assert.equal(yjs.card(cardId)?.fields?.f_number, 12, 'the number stays')
    await eventually('the custom fields in the document', async () => {
      assert.deepEqual(yjs.card(cardId)?.fields, {
        f_text: 'Trade fair',
        f_number: 12,
        f_money: 25000,
        f_date: localMidnight(kickoff),
        f_enum: 'Gold',
        f_user: 'dan',
        f_bool: true
      })
    })

    // Bob's page has every change live: the card's face and his own panel.
    await eventually('bob to see the new title', async () => {
      const shown = cardOf(await snapshot(bob.page), cardId)
      assert.equal(shown?.fields?.title, 'Acme rollout, phase 2', JSON.stringify(shown))
      assert.equal(shown?.fields?.client, 'Client: Acme Corp')
    }, { describe: () => describe(bob.page) })
    const bobPanel = await openCard(bob.page, cardId)
    await eventually('bob\'s panel to show the fields', async () => {
      assert.equal(await valueOf(bobPanel, 'client'), 'Acme Corp')
      assert.equal(await valueOf(bobPanel, 'f_enum'), 'Gold')
      assert.equal(await valueOf(bobPanel, 'f_text'), 'Trade fair')
      assert.equal(await bobPanel.locator('input[name="f_bool"]').isChecked(), true)
    })
    // And a change of bob's reaches ann's open panel.
    await editCardField(bobPanel, 'f_text', 'Referral')
    await eventually('ann\'s panel to show bob\'s edit', async () => assert.equal(await valueOf(panel, 'f_text'), 'Referral'))

    // A comment: posted from the box, in the timeline of both pages, and ann becomes the avatar.
    assert.equal(yjs.card(cardId)?.avatar ?? 'carol', 'carol')
    const box = panel.locator('form[data-form="comment"] textarea[name="comment"]')
    await box.fill('Called them, they want a demo')
    await box.press('Control+Enter')
    await eventually('the comment in ann\'s timeline', async () => {
      const rows = await panel.locator('[data-timeline] [data-timeline-kind="comment"]').allInnerTexts()
      assert.ok(rows.some((r) => r.includes('Called them, they want a demo')), JSON.stringify(rows))
      assert.equal(await box.inputValue(), '', 'the box is empty again')
      assert.equal(await box.evaluate((el) => el === document.activeElement), true, 'the focus stays in the box')
    })
    await eventually('the avatar moved to ann, in the document and on bob\'s page', async () => {
      const c = yjs.card(cardId)
      assert.equal(c?.avatar, 'ann')
      assert.equal(c?.avatarReason, 'comment')
      assert.equal(await card(bob.page, cardId).locator('[data-avatar]').first().getAttribute('data-avatar'), 'ann')
      const rows = await bobPanel.locator('[data-timeline] [data-timeline-kind="comment"]').allInnerTexts()
      assert.ok(rows.some((r) => r.includes('Called them')), JSON.stringify(rows))
    }, { describe: () => describe(bob.page) })
    // An empty comment is refused on the page, with a reason.
    await box.fill('   ')
    await panel.locator('[data-action="post-comment"]').click()
    await panel.locator('form[data-form="comment"] [role="alert"]').waitFor({ state: 'visible' })

    assert.deepEqual(await seriousViolations(page), [], 'the card panel after the edits')
    // Escape from the panel closes it.
    await page.locator('[data-panel="card"] [data-action="edit-field"]').first().focus()
    await page.keyboard.press('Escape')
    await page.locator('[data-panel="card"]').waitFor({ state: 'detached' })
  } catch (error) {
    failed = true
    throw error
  } finally {
    yjs.destroy()
    await saveArtifacts(FILE, 'carddetail', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})

test('card detail in French: labels, amounts typed the French way, refusals and the comment in French', { timeout: TEST_TIMEOUT }, async () => {
  const boardId = await createBoard(server, { name: 'e2e fiche' })
  const yjs = await docClient(server, boardId)
  const cardId = yjs.addCard({ stage: yjs.stageId('New'), title: 'Contrat annuel', amount: 100_00, responsible: 'bob' })
  const sessions = {}
  let failed = false
  try {
    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'carddetail-fr', locale: 'fr-FR' })
    await ann.page.goto(`${server.url}/boards/${boardId}?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await waitUntilReady(ann)
    const { page } = ann
    const panel = await openCard(page, cardId)
    assert.equal(await panel.locator('[data-card-detail="amount"] .field-label').innerText(), 'Montant')
    assert.equal(spaces(await panel.locator('[data-card-detail="amount"] [data-action="edit-field"]').getAttribute('aria-label')), 'Montant : 100,00 $US. Modifier')

    const amount = await editCardField(panel, 'amount', 'beaucoup')
    await amount.locator('[role="alert"]').waitFor({ state: 'visible' })
    assert.match(await amount.locator('[role="alert"]').innerText(), /Montant : saisissez un montant/)
    await amount.locator('[name="amount"]').fill('2 500,75')
    await amount.locator('[name="amount"]').press('Enter')
    await eventually('the amount typed the French way', async () => assert.equal(yjs.card(cardId)?.amount, 250075))
    assert.equal(spaces(await valueOf(panel, 'amount')), '2 500,75 $US')
    await page.waitForTimeout(300)
    assert.deepEqual(await seriousViolations(page), [], 'the French card panel')

    assert.equal(await panel.locator('[data-action="post-comment"]').innerText(), 'Publier le commentaire')
    await panel.locator('textarea[name="comment"]').fill('Rappeler lundi')
    await panel.locator('[data-action="post-comment"]').click()
    await eventually('the comment in the French timeline', async () => {
      const row = panel.locator('[data-timeline-kind="comment"]').first()
      assert.match(await row.innerText(), /Rappeler lundi/)
      assert.equal(await row.locator('[data-timeline-label]').innerText(), 'Commentaire')
      assert.equal(yjs.card(cardId)?.avatar, 'ann')
    })
  } catch (error) {
    failed = true
    throw error
  } finally {
    yjs.destroy()
    await saveArtifacts(FILE, 'carddetail-fr', sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})

test('no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
