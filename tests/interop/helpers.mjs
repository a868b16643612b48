// Shared helpers for the interop tests: start and stop a funnel server, connect stock Yjs
// clients (Y.Doc + the y-websocket WebsocketProvider) and wait for conditions with a bound.
//
// This file is deliberately not named *.test.mjs so that `node --test` does not run it.

import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))

/** Default bound of every wait, in milliseconds. */
export const WAIT_MS = 10_000

/** How long a stopping server may take after SIGTERM before it is killed with SIGKILL. */
const STOP_GRACE_MS = 5_000

/** Every server still running, so that a crashing test process does not leave one behind. */
const running = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** The funnel binary: `FUNNEL_BIN`, else the debug build of this workspace. */
export function funnelBinary () {
  const bin = process.env.FUNNEL_BIN ?? path.resolve(HERE, '../../target/debug/funnel')
  if (!existsSync(bin)) {
    throw new Error(
      `funnel binary not found at ${bin}: build it with cargo build -p funnel-server ` +
        '(from the workspace root), or point FUNNEL_BIN at it'
    )
  }
  return bin
}

/**
 * Poll `condition` until it returns a truthy value and return that value; fail after `timeout`
 * milliseconds with `message` (a string, or a function giving one, for the current state).
 */
export async function waitFor (condition, { timeout = WAIT_MS, interval = 20, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = condition()
    if (value) return value
    if (Date.now() >= deadline) {
      const text = typeof message === 'function' ? message() : message
      throw new Error(`timed out after ${timeout} ms waiting for ${text}`)
    }
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/**
 * Start `funnel serve` on an ephemeral loopback port. Resolves once it logs
 * `listening on 127.0.0.1:PORT`. Without `dataDir` a fresh temporary directory is used and
 * removed again by `stop()`; a given `dataDir` is left in place (the caller owns it). `args` are
 * more flags for `serve`; `listen` a fixed address (a balancer's upstream) instead of port 0.
 */
export async function startFunnel ({ dataDir, args = [], listen = '127.0.0.1:0' } = {}) {
  const bin = funnelBinary()
  const ownsDataDir = dataDir === undefined
  if (ownsDataDir) dataDir = await mkdtemp(path.join(tmpdir(), 'funnel-interop-'))

  const child = spawn(bin, ['serve', '--listen', listen, '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // The log format is not ours to choose here: ask for no colours, and strip them anyway below.
    env: { ...process.env, NO_COLOR: '1' }
  })
  running.add(child)

  let stderr = ''
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal })
    })
  })
  let exitStatus = null
  exited.then((status) => { exitStatus = status })

  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => { stderr += chunk })

  const server = {
    child,
    dataDir,
    /** Everything the server has written to stderr so far. */
    stderr: () => stderr,
    port: 0,
    /** Base URL for WebsocketProvider: it appends `/<boardId>`. */
    wsBase: '',
    /** `{ code, signal }` once the process exited, else null. */
    exitStatus: () => exitStatus,
    /**
     * SIGTERM, then SIGKILL if the process has not exited within the grace period. Resolves to
     * `{ code, signal, killed }` where `killed` says whether SIGKILL was needed.
     */
    async stop () {
      let killed = false
      if (exitStatus === null) {
        child.kill('SIGTERM')
        let timer
        const grace = new Promise((resolve) => { timer = setTimeout(resolve, STOP_GRACE_MS, 'timeout') })
        const first = await Promise.race([exited, grace])
        clearTimeout(timer) // a pending timer would keep the test process alive
        if (first === 'timeout') {
          killed = true
          child.kill('SIGKILL')
        }
      }
      const status = await exited
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true })
      return { ...status, killed }
    },
    /** SIGKILL at once, like a crash or a power cut: no chance to flush or say goodbye. */
    async crash () {
      if (exitStatus === null) child.kill('SIGKILL')
      return exited
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
    server.wsBase = `ws://127.0.0.1:${port}/ws/boards`
  } catch (error) {
    await server.stop()
    throw error
  }
  return server
}

/** A fresh board id: opening it creates a new deal pipeline. */
export function newBoardId () {
  return `interop-${randomUUID()}`
}

/**
 * A stock Yjs client: a Y.Doc synced through y-websocket's WebsocketProvider with the `ws`
 * package as the WebSocket implementation. If a test context `t` is given, the client is
 * destroyed when that test ends, whatever its outcome. `params` go on the URL (`{ token }`).
 */
export function connectClient (server, boardId, { t, connect = true, params = {} } = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.wsBase, boardId, doc, {
    WebSocketPolyfill: WebSocket,
    connect,
    params,
    // Providers of one room in one process otherwise also talk to each other through a
    // BroadcastChannel, so updates could reach a peer without going through funnel at all.
    disableBc: true
  })
  /**
   * Close events the provider saw (`null` for a close it made itself), each with `opened`: false
   * for an attempt that never became a socket (a refused or failed handshake, seen as 1006).
   * The provider still holds its connected flag when it emits the event.
   */
  const closes = []
  provider.on('connection-close', (event) => {
    closes.push(event && { code: event.code, reason: event.reason, opened: provider.wsconnected })
  })
  let destroyed = false
  const client = {
    doc,
    provider,
    closes,
    /** Disconnect and free the doc (its awareness has a timer that would keep Node alive). */
    destroy () {
      if (destroyed) return
      destroyed = true
      provider.destroy()
      doc.destroy()
    }
  }
  t?.after(() => client.destroy())
  return client
}

/** Wait until the provider has completed the sync handshake with the server. */
export function waitSynced (client, what = 'client') {
  return waitFor(() => client.provider.synced, { message: `${what} to sync` })
}

/** Connect a client and wait until it has synced. */
export async function syncedClient (server, boardId, options = {}) {
  const client = connectClient(server, boardId, options)
  await waitSynced(client)
  return client
}

const byBytes = (a, b) => (a < b ? -1 : a > b ? 1 : 0)

/** The stages of a board as `[{ id, name, color, kind, pos }]`, sorted by (pos, id). */
export function sortedStages (doc) {
  return Object.entries(doc.getMap('stages').toJSON())
    .map(([id, stage]) => ({ id, ...stage }))
    .sort((a, b) => byBytes(a.pos, b.pos) || byBytes(a.id, b.id))
}

/** The `cards` root map as plain JSON (order of keys does not matter to deepStrictEqual). */
export function cardsJson (doc) {
  return doc.getMap('cards').toJSON()
}

/** Insert a card (one transaction) and return its id. */
export function createCard (doc, { stage, pos, title, amount = 0, currency = 'USD' }) {
  const id = randomUUID()
  doc.transact(() => {
    const card = new Y.Map()
    // Set the fields before the map is integrated: the card arrives whole in one update.
    card.set('title', title)
    card.set('stage', stage)
    card.set('pos', pos)
    card.set('amount', amount)
    card.set('currency', currency)
    card.set('responsible', 'user-interop')
    card.set('client', 'Interop Ltd')
    card.set('createdAt', Date.now())
    card.set('fields', new Y.Map())
    doc.getMap('cards').set(id, card)
  })
  return id
}

/** Move a card the way the contract says: one transaction setting its `stage` and `pos`. */
export function moveCard (doc, cardId, stage, pos) {
  const card = doc.getMap('cards').get(cardId)
  if (!(card instanceof Y.Map)) throw new Error(`no card ${cardId} in this doc`)
  doc.transact(() => {
    card.set('stage', stage)
    card.set('pos', pos)
  })
}
