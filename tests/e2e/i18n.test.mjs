// Languages: a browser in French opens the app in French (home page, a board made from the
// form with French stage names, money in the French format), the header's switch turns it to
// English without a reload, and the choice outlives a reload.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  createBoard,
  describe,
  docClient,
  editCardField,
  eventually,
  listBoards,
  newSession,
  openCard,
  saveArtifacts,
  snapshot,
  TEST_TIMEOUT,
  WAIT_MS,
  waitFor,
  waitUntilReady,
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

test('languages: the settings, stage rules, card detail, history, People and invite screens in French', { timeout: TEST_TIMEOUT }, async () => {
  const sessions = {}
  let failed = false
  let yjs = null
  try {
    const boardId = await createBoard(server, { name: 'e2e écrans' })
    yjs = await docClient(server, boardId)
    const cardId = yjs.addCard({ stage: yjs.stageId('New'), title: 'Contrat cadre', amount: 50_00 })
    const ann = sessions.ann = await newSession(browser, 'ann', { testName: 'i18n-screens', locale: 'fr-FR' })
    const { page } = ann
    await page.goto(`${server.url}/boards/${boardId}?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await waitUntilReady(ann)
    const textOf = async (locator) => spaces((await locator.first().innerText()).replace(/\s+/g, ' ').trim())

    // Settings: the hints, the counter's label, the custom field form and its types.
    await page.locator('[data-action="open-settings"]').first().click()
    const settings = page.locator('[data-panel="settings"]').first()
    await settings.waitFor({ state: 'visible' })
    assert.match(await textOf(settings), /Ce que montrent vos fiches\. Vous seul voyez ce choix\./)
    assert.match(await textOf(settings), /Passe au rouge ce nombre de minutes avant une échéance/)
    const newField = settings.locator('form[data-form="new-field"]')
    assert.equal(await textOf(newField.locator('legend')), 'Nouveau champ personnalisé')
    assert.deepEqual(await newField.locator('select[name="type"] option').allInnerTexts(),
      ['Texte', 'Nombre', 'Montant', 'Date', 'Liste de choix', 'Personne', 'Oui ou non'])
    // A custom field made from the French form shows under its French-typed label in the card.
    await newField.locator('input[name="label"]').fill('Origine')
    await newField.locator('button[type="submit"]').click()
    await eventually('the field defined', async () => {
      assert.ok(Object.values(yjs.doc.getMap('fields').toJSON()).some((f) => f.label === 'Origine'))
    })
    await page.keyboard.press('Escape')
    await settings.waitFor({ state: 'detached' })

    // The stage editor's rules.
    await page.locator(`[data-stage-id="${yjs.stageId('Won')}"] [data-action="edit-stage"]`).first().click()
    const rules = page.locator('form[data-form="stage-rules"]').first()
    await rules.waitFor({ state: 'visible' })
    assert.match(await textOf(rules), /Probabilité de gain \(%\)/)
    assert.match(await textOf(rules), /Pour entrer dans cette étape, une fiche doit avoir/)
    assert.equal(await textOf(rules.locator('[data-action="save-stage-rules"]')), 'Enregistrer les règles')
    await page.keyboard.press('Escape')

    // The card panel: details, the comment box, the history's sentences, archive and delete.
    const panel = await openCard(page, cardId)
    assert.equal(await textOf(panel.locator('[data-card-detail="title"] .field-label')), 'Titre')
    assert.match(await textOf(panel), /Cliquez sur une valeur, ou appuyez sur Entrée, pour la modifier/)
    assert.equal(await panel.locator('[data-card-detail] .field-label', { hasText: 'Origine' }).count(), 1, 'the custom field has its row')
    assert.equal(await textOf(panel.locator('[data-action="delete-card"]')), 'Supprimer la fiche')
    await editCardField(panel, 'client', 'Société Générale des Eaux')
    await eventually('the history to say it in French', async () => {
      const lines = await panel.locator('[data-history] [data-history-text]').allInnerTexts()
      assert.ok(lines.some((l) => /a changé Client de rien à « Société Générale des Eaux »/.test(l)), JSON.stringify(lines))
      assert.equal(await panel.locator('[data-history] h3').textContent(), 'Historique des modifications')
    }, { describe: () => describe(page) })
    await page.keyboard.press('Escape')

    // People in local mode, and invite links that cannot be used, in French.
    await page.goto(`${server.url}/people?user=ann`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the People page in French', async () => {
      assert.equal(await textOf(page.locator('[data-people-refused="local"] .refusal-message')), "Ce funnel n'a pas de comptes")
      assert.equal(await textOf(page.locator('[data-page="people"] h1')), 'Personnes')
    }, { describe: () => describe(page) })
    await page.goto(`${server.url}/invite#not-a-real-secret`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('an invite on a server without accounts, in French', async () => {
      assert.match(await textOf(page.locator('[data-invite-error]')), /Ce serveur n'a pas de comptes \(mode local\)|Ce lien d'invitation a déjà servi/)
    }, { describe: () => describe(page) })
    await page.goto(`${server.url}/invite`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('an incomplete invite link, in French', async () => {
      assert.match(await textOf(page.locator('[data-invite-error]')), /Ce lien d'invitation est incomplet/)
      assert.match(await textOf(page.locator('[data-invite-error]')), /Vous avez déjà un mot de passe \?/)
    }, { describe: () => describe(page) })
  } catch (error) {
    failed = true
    throw error
  } finally {
    yjs?.destroy()
    const saved = await saveArtifacts(FILE, 'i18n-screens', sessions, failed)
    if (failed) console.error(`[i18n-screens] final state saved: ${saved.join(', ')}`)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
  }
})
