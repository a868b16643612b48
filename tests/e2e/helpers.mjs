// Shared helpers for the end-to-end tests: start and stop a funnel server that serves the built
// web client, drive real Chromium with playwright-core, seed boards through a stock Yjs client,
// read what the pages show through the DOM contract, and wait for conditions with a bound.
//
// This file is deliberately not named *.test.mjs so that `node --test` does not run it.

import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import { chromium } from 'playwright-core'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))

/** Where each test's final screenshots (and, on failure, the page's HTML) go. */
export const ARTIFACTS = path.join(HERE, 'artifacts')

/** Default bound of every wait, in milliseconds. */
export const WAIT_MS = 10_000

/** Bound of one whole test, in milliseconds. */
export const TEST_TIMEOUT = 90_000

/** How long a stopping server may take after SIGTERM before it is killed with SIGKILL. */
const STOP_GRACE_MS = 5_000

/** The Chromium every test drives: Debian's package (browsers cannot be downloaded here). */
const CHROMIUM = process.env.FUNNEL_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run'
]

/** Wide enough for the seven default deal columns side by side, so drags need no scrolling. */
const VIEWPORT = { width: 2200, height: 1000 }

/** Every server still running, so that a crashing test process does not leave one behind. */
const running = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

// ---------------------------------------------------------------------------------------------
// The server

/** The funnel binary: `FUNNEL_BIN`, else the debug build of this workspace. */
export function funnelBinary () {
  const bin = path.resolve(process.env.FUNNEL_BIN ?? path.join(HERE, '../../target/debug/funnel'))
  if (!existsSync(bin)) {
    throw new Error(
      `funnel binary not found at ${bin}: build it with \`cargo build -p funnel-server\` ` +
        '(from the workspace root), or point FUNNEL_BIN at it'
    )
  }
  return bin
}

/** The built web client: `FUNNEL_WEB_DIR`, else `clients/web/dist` of this workspace. */
export function webDir () {
  const dir = path.resolve(process.env.FUNNEL_WEB_DIR ?? path.join(HERE, '../../clients/web/dist'))
  if (!existsSync(path.join(dir, 'index.html'))) {
    throw new Error(
      `web client build not found: no ${path.join(dir, 'index.html')}. Build it with ` +
        '`cd clients/web && npm ci && npm run build` (from the workspace root), or point ' +
        'FUNNEL_WEB_DIR at a build'
    )
  }
  return dir
}

/**
 * Poll `condition` until it returns a truthy value and return that value; fail after `timeout`
 * milliseconds with `message` (a string, or a function giving one, for the current state).
 */
export async function waitFor (condition, { timeout = WAIT_MS, interval = 20, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() >= deadline) {
      const text = typeof message === 'function' ? await message() : message
      throw new Error(`timed out after ${timeout} ms waiting for ${text}`)
    }
    await sleep(interval)
  }
}

/**
 * Run `check` (an async function that throws, e.g. with `assert`) until it passes, and return
 * what it returns. After `timeout` ms, throw its last error, prefixed with `what` and followed
 * by `describe()` (what the page showed), so a failure says what was expected and what was seen.
 */
export async function eventually (what, check, { timeout = WAIT_MS, interval = 50, describe } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    try {
      return await check()
    } catch (error) {
      if (Date.now() >= deadline) {
        let seen = ''
        if (describe) {
          try {
            seen = `\n--- what was shown ---\n${await describe()}`
          } catch (e) {
            seen = `\n(could not describe the page: ${e.message})`
          }
        }
        const wrapped = new Error(`${what}: still failing after ${timeout} ms: ${error.message}${seen}`)
        wrapped.cause = error
        throw wrapped
      }
    }
    await sleep(interval)
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Start `funnel serve` on an ephemeral loopback port (or `port`) with a fresh temporary data
 * directory (or `dataDir`, which the caller then owns) and the built web client. Resolves once it
 * logs `listening on 127.0.0.1:PORT`; `stop()` ends it and removes the data directory it made.
 */
export async function startFunnel ({ port: wantedPort = 0, dataDir: givenDataDir, args: extraArgs = [] } = {}) {
  const bin = funnelBinary()
  const web = webDir()
  const ownsDataDir = givenDataDir === undefined
  const dataDir = givenDataDir ?? await mkdtemp(path.join(tmpdir(), 'funnel-e2e-'))

  const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${wantedPort}`, '--data-dir', dataDir, '--web-dir', web, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' }
  })
  running.add(child)

  let stderr = ''
  let exitStatus = null
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child)
      exitStatus = { code, signal }
      resolve(exitStatus)
    })
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => { stderr += chunk })

  const server = {
    child,
    dataDir,
    stderr: () => stderr,
    port: 0,
    /** `http://127.0.0.1:PORT` */
    url: '',
    /** Base URL for WebsocketProvider: it appends `/<boardId>`. */
    wsBase: '',
    exitStatus: () => exitStatus,
    /** SIGTERM, then SIGKILL after a grace period; resolves to `{ code, signal, killed }`. */
    async stop () {
      let killed = false
      if (exitStatus === null) {
        child.kill('SIGTERM')
        let timer
        const grace = new Promise((resolve) => { timer = setTimeout(resolve, STOP_GRACE_MS, 'timeout') })
        const first = await Promise.race([exited, grace])
        clearTimeout(timer)
        if (first === 'timeout') {
          killed = true
          child.kill('SIGKILL')
        }
      }
      const status = await exited
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true })
      return { ...status, killed }
    }
  }

  try {
    const port = await waitFor(
      () => {
        if (exitStatus !== null) {
          throw new Error(`funnel exited early (${JSON.stringify(exitStatus)}); stderr:\n${stderr}`)
        }
        // eslint-disable-next-line no-control-regex
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr.replace(/\x1b\[[0-9;]*m/g, ''))
        return match && Number(match[1])
      },
      { message: () => `funnel to log "listening on"; stderr so far:\n${stderr}` }
    )
    server.port = port
    server.url = `http://127.0.0.1:${port}`
    server.wsBase = `ws://127.0.0.1:${port}/ws/boards`
  } catch (error) {
    await server.stop()
    throw error
  }
  return server
}

/**
 * `funnel token`: a token signed with `secret` for `user` with `role` (`viewer`, `member`,
 * `admin`), limited to `boards` when given.
 */
export async function funnelToken ({ secret, user, role, name, boards = [], ttl }) {
  const args = ['token', '--user', user, '--role', role, '--auth-secret', secret]
  if (name !== undefined) args.push('--name', name)
  if (ttl !== undefined) args.push('--ttl', ttl)
  for (const board of boards) args.push('--board', board)
  const stdout = await new Promise((resolve, reject) => {
    execFile(funnelBinary(), args, { timeout: WAIT_MS, env: { ...process.env, NO_COLOR: '1' } }, (error, out, err) => {
      if (error) reject(new Error(`funnel token failed: ${error.message}\n${err}`))
      else resolve(out)
    })
  })
  const token = stdout.trim()
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `funnel token printed no token: ${JSON.stringify(stdout)}`)
  return token
}

/** `POST /api/v1/boards`: a new board with the default stages of `entity`; returns its id. */
export async function createBoard (server, { entity = 'deal', name = `e2e ${randomUUID().slice(0, 8)}`, token } = {}) {
  const response = await fetch(`${server.url}/api/v1/boards`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ entity, name }),
    signal: AbortSignal.timeout(WAIT_MS)
  })
  const body = await response.text()
  assert.equal(response.status, 201, `POST /api/v1/boards answered ${response.status}: ${body}`)
  const board = JSON.parse(body)
  assert.equal(typeof board.id, 'string', `POST /api/v1/boards gave no id: ${body}`)
  return board.id
}

/** `GET /api/v1/boards`: the list of boards. */
export async function listBoards (server) {
  const response = await fetch(`${server.url}/api/v1/boards`, { signal: AbortSignal.timeout(WAIT_MS) })
  assert.equal(response.status, 200)
  return (await response.json()).boards
}

// ---------------------------------------------------------------------------------------------
// A stock Yjs client beside the browsers: seeds boards and checks what the document holds

const byBytes = (a, b) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * A plain Y.Doc synced with the board through the stock y-websocket provider, as in
 * tests/interop. The tests seed cards with it (so that a test of, say, dragging does not depend
 * on quick-create working) and read the document with it to tell a client that wrote the wrong
 * thing from one that shows the right thing wrongly.
 */
export async function docClient (server, boardId, { token } = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.wsBase, boardId, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params: token ? { token } : {}
  })
  let destroyed = false
  const client = {
    doc,
    provider,
    destroy () {
      if (destroyed) return
      destroyed = true
      provider.destroy()
      doc.destroy()
    },
    /** Stages as `[{ id, name, color, kind, pos }]`, sorted as every replica sorts them. */
    stages () {
      const rank = { initial: 0, progress: 1 }
      return Object.entries(doc.getMap('stages').toJSON())
        .map(([id, stage]) => ({ id, ...stage }))
        .sort((a, b) => (rank[a.kind] ?? 2) - (rank[b.kind] ?? 2) || byBytes(a.pos, b.pos) || byBytes(a.id, b.id))
    },
    /** The id of the stage called `name`. */
    stageId (name) {
      const stage = client.stages().find((s) => s.name === name)
      if (!stage) throw new Error(`no stage named ${JSON.stringify(name)} in ${JSON.stringify(client.stages())}`)
      return stage.id
    },
    /** A card as plain JSON, or undefined. */
    card (id) {
      return doc.getMap('cards').toJSON()[id]
    },
    /** Every activity of a card as plain JSON, with its id. */
    activities (cardId) {
      return Object.entries(doc.getMap('activities').toJSON())
        .map(([id, a]) => ({ id, ...a }))
        .filter((a) => a.card === cardId)
    },
    /**
     * A card written the way the web client's `createCard` writes one (one transaction, every
     * key set before the map is integrated). `pos` sets its place: `a0` < `a1` < ...
     */
    addCard ({ stage, pos = 'a0', title, amount = 0, client: clientName = '', responsible = '', fields = {} }) {
      const id = randomUUID()
      doc.transact(() => {
        const card = new Y.Map()
        card.set('title', title)
        card.set('stage', stage)
        card.set('pos', pos)
        card.set('amount', amount)
        card.set('currency', 'USD')
        card.set('responsible', responsible)
        card.set('client', clientName)
        card.set('createdAt', Date.now())
        card.set('fields', new Y.Map(Object.entries(fields)))
        doc.getMap('cards').set(id, card)
      })
      return id
    },
    /** An open activity of a card, written as the web client's `addActivity` writes one. */
    addActivity ({ card: cardId, kind = 'call', direction = 'outgoing', subject, deadline, responsible = '' }) {
      const id = randomUUID()
      doc.transact(() => {
        const activity = new Y.Map()
        activity.set('card', cardId)
        activity.set('kind', kind)
        activity.set('direction', direction)
        activity.set('subject', subject)
        activity.set('responsible', responsible)
        activity.set('done', false)
        if (deadline !== undefined) activity.set('deadline', deadline)
        doc.getMap('activities').set(id, activity)
      })
      return id
    },
    /** Sets a key of the `board` map (e.g. `counterThresholdMin`). */
    setBoard (key, value) {
      doc.transact(() => doc.getMap('board').set(key, value))
    },
    /** The `board` map as plain JSON. */
    board () {
      return doc.getMap('board').toJSON()
    },
    /** The `forms` map as plain JSON. */
    forms () {
      return doc.getMap('forms').toJSON()
    },
    /** The `views` map as plain JSON. */
    views () {
      return doc.getMap('views').toJSON()
    }
  }
  try {
    await waitFor(() => provider.synced, { message: `a Yjs client to sync board ${boardId}` })
  } catch (error) {
    client.destroy()
    throw error
  }
  return client
}

// ---------------------------------------------------------------------------------------------
// The browser

/** Headless Chromium, the Debian package. */
export async function launchBrowser () {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (set FUNNEL_CHROMIUM)`)
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
}

/**
 * Console errors and uncaught page errors of every page of one test file. Each file ends with
 * a test that fails when this holds anything. Chromium's own log line for a WebSocket that could
 * not connect while the test had deliberately cut the network (the context taken offline, or the
 * server stopped) is what a browser says about the network, not an error of the client: it is
 * kept apart in `expectedWhileOffline`.
 */
export const consoleLog = { errors: [], expectedWhileOffline: [], expectedRefusals: [] }

/**
 * One user's browser: its own context (cookies, storage, network) and page, whose console
 * errors and uncaught errors go to `consoleLog`. Console errors matching one of
 * `expectedErrors` (say, the browser's own line for a request the server refuses with 401, on a
 * page the test opens without a token) go to `consoleLog.expectedRefusals` instead. `locale` is
 * the browser's language (en-US unless a test asks for another).
 */
export async function newSession (browser, user, { testName = '', expectedErrors = [], viewport = VIEWPORT, mobile = false, locale = 'en-US' } = {}) {
  const context = await browser.newContext({
    viewport,
    locale,
    timezoneId: 'UTC',
    ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {})
  })
  context.setDefaultTimeout(WAIT_MS)
  const page = await context.newPage()
  const session = { user, context, page, networkDown: false }
  const where = () => `[${testName}] page of ${user}`
  page.on('console', (message) => {
    if (message.type() !== 'error') return
    const text = message.text()
    const entry = `${where()}: console.error: ${text}${locationOf(message)}`
    if (session.networkDown && /^WebSocket connection to .* failed/.test(text)) {
      consoleLog.expectedWhileOffline.push(entry)
    } else if (expectedErrors.some((pattern) => pattern.test(text))) {
      consoleLog.expectedRefusals.push(entry)
    } else {
      consoleLog.errors.push(entry)
    }
  })
  page.on('pageerror', (error) => {
    consoleLog.errors.push(`${where()}: uncaught ${error.name}: ${error.message}\n${error.stack ?? ''}`)
  })
  /** Takes the context off the network (or back on); opens the network-down window of the log. */
  session.setOffline = async (offline) => {
    if (offline) session.networkDown = true
    await context.setOffline(offline)
  }
  /** Opens the network-down window of the log, for a cut the test makes some other way. */
  session.networkCut = () => { session.networkDown = true }
  /** Ends the network-down window (call once the page says it is connected again). */
  session.backOnline = () => { session.networkDown = false }
  return session
}

/**
 * One user's session on a board: a page open at `/boards/{boardId}?user={user}` (or, with
 * `token`, `?token={token}`), ready once the board shows its columns and says it is connected.
 */
export async function openBoard (browser, server, boardId, user, { testName = '', expectColumns = 7, token, viewport, mobile } = {}) {
  const session = await newSession(browser, user, { testName, viewport, mobile })
  const { page } = session
  const query = token ? `token=${encodeURIComponent(token)}` : `user=${encodeURIComponent(user)}`
  const response = await page.goto(`${server.url}/boards/${encodeURIComponent(boardId)}?${query}`, {
    waitUntil: 'domcontentloaded',
    timeout: WAIT_MS
  })
  assert.ok(response, `no response for the board page of ${user}`)
  assert.equal(response.status(), 200, `GET /boards/${boardId} answered ${response.status()}`)
  await waitUntilReady(session, expectColumns)
  return session
}

/** Waits until a board page shows its columns and says it is connected. */
export async function waitUntilReady (session, expectColumns = 7) {
  await eventually(`the board page of ${session.user} to show ${expectColumns} columns and be connected`, async () => {
    const s = await snapshot(session.page)
    assert.equal(s.columns.length, expectColumns, `columns shown: ${s.columns.length}`)
    assert.equal(s.connection, 'connected', `[data-connection-state] is ${s.connection}`)
  }, { describe: () => describe(session.page) })
}

function locationOf (message) {
  const { url, lineNumber } = message.location() ?? {}
  return url ? ` (${url}:${lineNumber})` : ''
}

/**
 * Run one end-to-end scenario: a fresh board made through the API, a seeding Yjs client, and one
 * browser session per user. Whatever the outcome, each page's final state is saved as
 * `artifacts/<file>--<test>--<user>.png` (and, when the scenario failed, the page's HTML beside
 * it), and everything is closed.
 */
export async function scenario ({ browser, server, file, name, users = ['ann', 'bob'], seed }, body) {
  const boardId = await createBoard(server, { name: `e2e ${name}` })
  const yjs = await docClient(server, boardId)
  const sessions = {}
  let failed = false
  try {
    const seeded = seed ? await seed(yjs) : {}
    for (const user of users) {
      sessions[user] = await openBoard(browser, server, boardId, user, { testName: name })
    }
    await body({ boardId, yjs, seeded, ...sessions, sessions })
  } catch (error) {
    failed = true
    throw error
  } finally {
    const saved = await saveArtifacts(file, name, sessions, failed)
    for (const session of Object.values(sessions)) await session.context.close().catch(() => {})
    yjs.destroy()
    if (failed) console.error(`[${name}] final state saved: ${saved.join(', ')}`)
  }
}

/** Saves a screenshot of each session's page (and its HTML after a failure). */
export async function saveArtifacts (file, name, sessions, failed) {
  const saved = []
  mkdirSync(ARTIFACTS, { recursive: true })
  const slug = `${path.basename(file).replace(/\.test\.mjs$/, '')}--${name}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
  for (const [user, session] of Object.entries(sessions)) {
    if (session.page.isClosed()) continue
    const base = path.join(ARTIFACTS, `${slug}--${user}`)
    try {
      await session.page.screenshot({ path: `${base}.png`, fullPage: true, timeout: WAIT_MS })
      saved.push(path.relative(process.cwd(), `${base}.png`))
      if (failed) {
        await writeFile(`${base}.html`, await session.page.content())
        saved.push(path.relative(process.cwd(), `${base}.html`))
      } else {
        await rm(`${base}.html`, { force: true })
      }
    } catch (error) {
      console.error(`could not save the artifacts of ${user} for ${name}: ${error.message}`)
    }
  }
  return saved
}

// ---------------------------------------------------------------------------------------------
// Reading the page through the DOM contract

/**
 * What a board page shows, read through the DOM contract only: the columns in order with their
 * name, count, sum and visible cards (each with its displayed fields, counter, avatar and who
 * else is on it), the connection state and the presence list. Nested matches (an element with
 * `data-stage-id` inside a column, say a drop zone) are not counted twice: only the outermost
 * `[data-stage-id]`, and within a column the outermost `[data-card-id]`, count.
 */
export async function snapshot (page) {
  return page.evaluate(() => {
    const text = (el) => (el ? el.textContent.replace(/\s+/g, ' ').trim() : null)
    const rendered = (el) => el.getClientRects().length > 0
    const columns = [...document.querySelectorAll('[data-stage-id]')]
      .filter((el) => !el.parentElement?.closest('[data-stage-id]'))
      .map((col) => ({
        id: col.getAttribute('data-stage-id'),
        name: text(col.querySelector('[data-stage-name]')),
        count: text(col.querySelector('[data-stage-count]')),
        sum: text(col.querySelector('[data-stage-sum]')),
        cards: [...col.querySelectorAll('[data-card-id]')]
          .filter((card) => !card.parentElement.closest('[data-card-id]') && rendered(card))
          .map((card) => {
            const counter = card.querySelector('[data-counter]')
            return {
              id: card.getAttribute('data-card-id'),
              text: text(card),
              fields: Object.fromEntries(
                [...card.querySelectorAll('[data-card-field]')].map((f) => [f.getAttribute('data-card-field'), text(f)])
              ),
              counter: counter ? { state: counter.getAttribute('data-counter-state'), text: text(counter) } : null,
              avatar: card.querySelector('[data-avatar]') ? (card.querySelector('[data-avatar]').getAttribute('data-avatar') || text(card.querySelector('[data-avatar]'))) : null,
              presenceBy: card.getAttribute('data-presence-by')
            }
          })
      }))
    const connection = document.querySelector('[data-connection]')
    return {
      url: location.pathname + location.search,
      connection: connection ? connection.getAttribute('data-connection-state') : null,
      presence: [...document.querySelectorAll('[data-presence-user]')].map((el) => el.getAttribute('data-presence-user')),
      panels: [...document.querySelectorAll('[data-panel]')].map((el) => el.getAttribute('data-panel')),
      columns
    }
  })
}

/** A readable account of a page for failure messages. */
export async function describe (page) {
  const s = await snapshot(page)
  const lines = [
    `url ${s.url}; connection=${s.connection}; presence=[${s.presence.join(', ')}]; open panels=[${s.panels.join(', ')}]`
  ]
  if (s.columns.length === 0) {
    const body = await page.evaluate(() => document.body?.innerText.slice(0, 600) ?? '(no body)')
    lines.push(`no [data-stage-id] column; the page says: ${JSON.stringify(body)}`)
  }
  for (const col of s.columns) {
    lines.push(`column ${JSON.stringify(col.name)} (${col.id}) count=${JSON.stringify(col.count)} sum=${JSON.stringify(col.sum)}`)
    for (const card of col.cards) {
      lines.push(
        `  card ${card.id}: fields=${JSON.stringify(card.fields)} counter=${JSON.stringify(card.counter)}` +
          `${card.presenceBy ? ` presenceBy=${card.presenceBy}` : ''} text=${JSON.stringify(card.text)}`
      )
    }
  }
  return lines.join('\n')
}

/** The column of a stage in a snapshot (throws when it is not shown). */
export function columnOf (s, stageId) {
  const col = s.columns.find((c) => c.id === stageId)
  if (!col) throw new Error(`no column [data-stage-id="${stageId}"]`)
  return col
}

/** Where a card shows in a snapshot: `[{ column, index, card }]`, one entry per element. */
export function placesOf (s, cardId) {
  const places = []
  for (const col of s.columns) {
    col.cards.forEach((card, index) => {
      if (card.id === cardId) places.push({ column: col.id, name: col.name, index, card })
    })
  }
  return places
}

/** The one card element of `cardId` on a page, wherever it is (throws when not exactly one). */
export function cardOf (s, cardId) {
  const places = placesOf(s, cardId)
  assert.equal(places.length, 1, `card ${cardId} shows ${places.length} times, expected once`)
  return places[0].card
}

/** The integer in a count text ("3", "3 deals"); null when there is none. */
export function countValue (text) {
  const match = /-?\d+/.exec(text ?? '')
  return match ? Number(match[0]) : null
}

/**
 * The amount in a money text shown in the en-US locale ("$1,250.00", "1,250 USD", "$1,250"), in
 * major units; 0 when the text holds no number (an empty column may show no sum).
 */
export function moneyValue (text) {
  const match = /-?\d[\d,]*(\.\d+)?/.exec(text ?? '')
  return match ? Number(match[0].replace(/,/g, '')) : 0
}

/** Asserts a column's count and sum (in major units) as shown. */
export function assertColumn (s, stageId, { count, sum }) {
  const col = columnOf(s, stageId)
  if (count !== undefined) {
    assert.equal(countValue(col.count), count, `[data-stage-count] of ${col.name} is ${JSON.stringify(col.count)}, expected ${count}`)
    assert.equal(col.cards.length, count, `column ${col.name} shows ${col.cards.length} cards, expected ${count}`)
  }
  if (sum !== undefined) {
    assert.equal(moneyValue(col.sum), sum, `[data-stage-sum] of ${col.name} is ${JSON.stringify(col.sum)}, expected ${sum}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Acting on the page

/** A column by stage id. */
export const column = (page, stageId) => page.locator(`[data-stage-id="${stageId}"]`).first()

/** A card element by id, inside a column when `stageId` is given. */
export const card = (page, cardId, stageId) =>
  (stageId ? column(page, stageId) : page).locator(`[data-card-id="${cardId}"]`).first()

/**
 * Drag a card onto a column with real mouse moves: press on the card, nudge it so that the
 * browser starts a native drag, glide to the target column in steps, release. Chromium under
 * Playwright turns these into native HTML5 drag events, which pragmatic-drag-and-drop listens to.
 */
export async function dragCard (page, cardId, stageId) {
  const source = card(page, cardId)
  const target = column(page, stageId)
  await source.scrollIntoViewIfNeeded()
  const from = await grabPoint(source)
  const box = await target.boundingBox()
  assert.ok(box, `column ${stageId} has no box (not visible?)`)
  const viewport = page.viewportSize()
  const to = {
    x: box.x + box.width / 2,
    y: Math.min(box.y + Math.min(box.height / 2, 200), viewport.height - 10)
  }
  await page.mouse.move(from.x, from.y)
  await page.mouse.down()
  await page.mouse.move(from.x + 8, from.y + 8, { steps: 4 })
  await page.mouse.move(to.x, to.y, { steps: 15 })
  await page.mouse.move(to.x + 2, to.y + 2, { steps: 2 })
  await page.mouse.up()
}

/** A point on a card away from its buttons (counter, avatar): on its title when shown. */
async function grabPoint (cardLocator) {
  const title = cardLocator.locator('[data-card-field="title"]').first()
  const onTitle = (await title.count()) > 0 && (await title.isVisible())
  const box = onTitle ? await title.boundingBox() : await cardLocator.boundingBox()
  assert.ok(box, 'the card has no box (not visible?)')
  return { x: box.x + Math.min(box.width / 2, 30), y: box.y + Math.min(box.height / 2, 10) }
}

/** Click a card (on its title when shown) to open its panel. */
export async function openCard (page, cardId) {
  const target = card(page, cardId)
  const title = target.locator('[data-card-field="title"]').first()
  if ((await title.count()) > 0 && (await title.isVisible())) await title.click()
  else await target.click({ position: { x: 12, y: 8 } })
  const panel = page.locator('[data-panel="card"]').first()
  await panel.waitFor({ state: 'visible' })
  return panel
}

/**
 * Edits one field of an open card panel in place: a click on its value opens the input, `value`
 * is typed, and `key` (Enter, or Tab to leave the field) saves it. Returns the row.
 */
export async function editCardField (panel, field, value, key = 'Enter') {
  const row = panel.locator(`[data-card-detail="${field}"]`).first()
  await row.locator('[data-action="edit-field"]').click()
  const input = row.locator(`[name="${field}"]`).first()
  await input.waitFor({ state: 'visible' })
  if ((await input.evaluate((el) => el.tagName)) === 'SELECT') await input.selectOption(value)
  else await input.fill(value)
  await input.press(key)
  return row
}

/**
 * The settings panel: opens it, lets `change(panel)` act on it, saves, and closes it if saving
 * left it open (Escape), so that it covers nothing afterwards.
 */
export async function changeSettings (page, change) {
  await page.locator('[data-action="open-settings"]').first().click()
  const panel = page.locator('[data-panel="settings"]').first()
  await panel.waitFor({ state: 'visible' })
  await change(panel)
  await panel.locator('[data-action="save-settings"]').first().click()
  await closeIfOpen(page, panel)
}

/** Waits a moment for `locator` to go away by itself, then presses Escape if it did not. */
export async function closeIfOpen (page, locator) {
  try {
    await locator.waitFor({ state: 'hidden', timeout: 2_000 })
  } catch {
    await page.keyboard.press('Escape')
    await locator.waitFor({ state: 'hidden', timeout: 2_000 }).catch(() => {})
  }
}

/** Sets a checkbox of the settings panel (`input[data-<kind>-field="<id>"]`) if it exists. */
export async function setFieldBox (panel, attribute, fieldId, checked) {
  const box = panel.locator(`input[${attribute}="${fieldId}"]`).first()
  if ((await box.count()) === 0) return false
  await box.setChecked(checked)
  return true
}

/** The ids of every `input[<attribute>]` checkbox in the settings panel. */
export async function fieldBoxes (panel, attribute) {
  return panel.locator(`input[${attribute}]`).evaluateAll((els, attr) => els.map((el) => el.getAttribute(attr)), attribute)
}

/**
 * `YYYY-MM-DDTHH:MM` for `ms` from now, in the page's own time zone: what a user types into an
 * `<input type=datetime-local>`.
 */
export async function localDateTime (page, msFromNow) {
  return page.evaluate((offset) => {
    const d = new Date(Date.now() + offset)
    const pad = (n) => String(n).padStart(2, '0')
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
  }, msFromNow)
}

/**
 * Adds an activity to a card through the UI: open the card, "+ Activity", fill the form, save.
 * `kind` is picked if the select offers it, else its first option.
 */
export async function addActivity (page, cardId, { kind = 'call', subject, msFromNow, responsible }) {
  const panel = await openCard(page, cardId)
  await panel.locator('[data-action="add-activity"]').first().click()
  const form = page.locator('form[data-form="activity"]').first()
  await form.waitFor({ state: 'visible' })
  const select = form.locator('select[name="kind"]')
  const values = await select.locator('option').evaluateAll((options) => options.map((o) => o.value))
  await select.selectOption(values.includes(kind) ? kind : values[0])
  await form.locator('input[name="subject"]').fill(subject)
  await form.locator('input[name="deadline"]').fill(await localDateTime(page, msFromNow))
  // The people picker: typed text that names someone (or, in local mode, any id) is taken.
  await form.locator('[data-person-picker="responsible"] input[role="combobox"]').fill(responsible)
  await form.locator('button[type="submit"]').first().click()
  return panel
}

/**
 * axe-core's check of what the page shows now (the package's own script, injected): the
 * violations of impact `critical` or `serious`, each as "rule: target (summary)".
 */
export async function seriousViolations (page) {
  const require = createRequire(import.meta.url)
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.addScriptTag({ content: source })
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] })
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1, 2).join('').trim()}`)
    }))
  })
  return violations
    .filter((v) => v.impact === 'critical' || v.impact === 'serious')
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n}`))
}

/** A fresh id for things a test names itself. */
export const shortId = () => randomUUID().slice(0, 8)


/**
 * One funnel and one Chromium for a whole test file: started before its tests (handed to
 * `onStart`), both stopped after them; the server's log is printed if it did not stop cleanly.
 */
export function serverAndBrowser (onStart, { args } = {}) {
  let started
  before(async () => {
    started = { server: await startFunnel({ args }), browser: await launchBrowser() }
    onStart(started)
  })
  after(async () => {
    await started?.browser?.close()
    const status = await started?.server?.stop()
    if (status && (status.killed || status.code !== 0)) {
      console.error(`funnel did not stop cleanly: ${JSON.stringify(status)}\n${started.server.stderr()}`)
    }
  })
}

/** Both sessions' pages, each described, for failure messages. */
export const describeBoth = (ann, bob) => async () =>
  `page of ann:\n${await describe(ann.page)}\npage of bob:\n${await describe(bob.page)}`
