// The README's pictures of the board in French: starts funnel on a fresh data directory, makes a
// deal pipeline in French through the API with a few deals, their activities and a timeline, and
// photographs it in Chromium (locale fr-FR) into docs/screenshots/. Not a test: run it by hand
// after a change of the look, from the repository root:
//
//   cargo build -p funnel-server && (cd clients/web && npx vite build)
//   node tests/e2e/screenshots.mjs
//
// Every step is bounded (WAIT_MS); the server stops whatever happens.

import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { launchBrowser, startFunnel, WAIT_MS } from './helpers.mjs'

const OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots')

async function api (server, method, route, body, { user = 'claire' } = {}) {
  const response = await fetch(`${server.url}/api/v1${route}`, {
    method,
    headers: { 'content-type': 'application/json', 'accept-language': 'fr-FR', 'x-funnel-user': user },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS)
  })
  const text = await response.text()
  assert.ok(response.ok, `${method} ${route} answered ${response.status}: ${text}`)
  return text === '' ? null : JSON.parse(text)
}

const DEALS = [
  { title: 'Renouvellement du parc', client: 'Boulangeries Martin', amount: 1_250_000, stage: 0, responsible: 'claire' },
  { title: 'Licences annuelles', client: 'Cabinet Durand', amount: 480_000, stage: 0, responsible: 'hugo' },
  { title: 'Maintenance 2027', client: 'Transports Leroy', amount: 2_200_000, stage: 1, responsible: 'claire' },
  { title: 'Formation des équipes', client: 'Mairie de Lyon', amount: 960_000, stage: 2, responsible: 'ines' },
  { title: 'Migration vers le cloud', client: 'Groupe Bernard', amount: 5_400_000, stage: 3, responsible: 'hugo' },
  { title: 'Audit de sécurité', client: 'Clinique Saint-Jean', amount: 1_800_000, stage: 3, responsible: 'ines' },
  { title: 'Écrans du showroom', client: 'Garage Moreau', amount: 750_000, stage: 4, responsible: 'claire' },
  { title: 'Extension du contrat', client: 'Hôtel du Parc', amount: 320_000, stage: 5, responsible: 'hugo' }
]

async function seed (server) {
  const board = await api(server, 'POST', '/boards', { entity: 'deal', language: 'fr', name: 'Ventes 2027' })
  await api(server, 'PATCH', `/boards/${board.id}`, { currency: 'EUR' })
  const { stages } = await api(server, 'GET', `/boards/${board.id}/stages`)
  const cards = []
  for (const deal of DEALS) {
    const { stage, ...fields } = deal
    const card = await api(server, 'POST', `/boards/${board.id}/cards`, {
      ...fields,
      currency: 'EUR',
      ...(stage === 0 ? {} : { stageId: stages[stage].id })
    }, { user: deal.responsible })
    cards.push(card)
  }
  const soon = Date.now() + 5 * 60_000
  await api(server, 'POST', `/boards/${board.id}/cards/${cards[0].id}/activities`, {
    kind: 'call', subject: 'Rappeler M. Martin', deadline: soon
  })
  await api(server, 'POST', `/boards/${board.id}/cards/${cards[2].id}/activities`, {
    kind: 'meeting', subject: 'Rendez-vous sur site', deadline: Date.now() + 3 * 86_400_000
  })
  await api(server, 'POST', `/boards/${board.id}/cards/${cards[4].id}/timeline`, {
    kind: 'comment', text: 'Devis envoyé, réponse attendue vendredi.'
  }, { user: 'hugo' })
  return { board, cards }
}

const server = await startFunnel()
let browser
try {
  const { board, cards } = await seed(server)
  browser = await launchBrowser()
  await mkdir(OUT, { recursive: true })
  const context = await browser.newContext({ viewport: { width: 1440, height: 860 }, locale: 'fr-FR', timezoneId: 'Europe/Paris' })
  const page = await context.newPage()
  await page.goto(`${server.url}/boards/${board.id}?user=claire`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
  await page.locator('[data-connection-state="connected"]').first().waitFor({ timeout: WAIT_MS })
  await page.locator(`[data-card-id="${cards[0].id}"]`).first().waitFor({ timeout: WAIT_MS })
  await page.screenshot({ path: path.join(OUT, 'board-fr.png') })
  console.log(`wrote ${path.join(OUT, 'board-fr.png')}`)

  await page.locator(`[data-card-id="${cards[4].id}"]`).first().click()
  await page.locator('[data-panel="card"]').first().waitFor({ timeout: WAIT_MS })
  await page.waitForTimeout(500) // the timeline and the history load
  await page.screenshot({ path: path.join(OUT, 'card-fr.png') })
  console.log(`wrote ${path.join(OUT, 'card-fr.png')}`)

  const phone = await browser.newContext({ viewport: { width: 390, height: 780 }, locale: 'fr-FR', timezoneId: 'Europe/Paris', isMobile: true, hasTouch: true, deviceScaleFactor: 2 })
  const small = await phone.newPage()
  await small.goto(`${server.url}/boards/${board.id}?user=claire`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
  await small.locator('[data-connection-state="connected"]').first().waitFor({ timeout: WAIT_MS })
  await small.locator(`[data-card-id="${cards[0].id}"]`).first().waitFor({ timeout: WAIT_MS })
  await small.screenshot({ path: path.join(OUT, 'phone-fr.png') })
  console.log(`wrote ${path.join(OUT, 'phone-fr.png')}`)
} finally {
  await browser?.close().catch(() => {})
  await server.stop()
}
