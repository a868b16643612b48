// Two funnel instances of one cluster (PostgreSQL + Redis) behind nginx, configured with the very
// template deploy/compose.yaml uses (deploy/nginx/funnel.conf.template), and stock y-websocket
// clients that only know the balancer's port. A rolling restart of both instances, each
// draining on SIGTERM, loses no write and shows the clients no close but 1012.
// Needs nginx (Debian's package), PostgreSQL on 127.0.0.1:5432 (database test) and Redis on
// 127.0.0.1:6379, as the Rust cluster tests do (the test makes its own schema with psql);
// .ci/run installs and starts them.

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { connectClient, newBoardId, sortedStages, startFunnel, waitFor, waitSynced } from './helpers.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const TEMPLATE = path.resolve(HERE, '../../deploy/nginx/funnel.conf.template')
const DATABASE_URL = process.env.FUNNEL_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.FUNNEL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const DRAIN_ARGS = ['--redis-url', REDIS_URL, '--drain-delay', '300ms', '--drain-window', '1s']
const WRITERS = 6

/** A TCP port free right now on 127.0.0.1. */
function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** nginx in the foreground with the deploy template rendered as envsubst would. */
async function startNginx (dir, vars) {
  const which = spawnSync('nginx', ['-v'])
  if (which.error) throw new Error('nginx is not installed: apt-get install nginx (.ci/run does)')
  const template = await readFile(TEMPLATE, 'utf8')
  const site = template.replace(/\$\{(FUNNEL_[A-Z0-9_]+)\}/g, (_, name) => {
    if (!(name in vars)) throw new Error(`the template needs ${name}`)
    return vars[name]
  })
  await writeFile(path.join(dir, 'funnel.conf'), site)
  await writeFile(
    path.join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi;`,
      `  scgi_temp_path ${dir}/scgi;`,
      `  include ${dir}/funnel.conf;`,
      '}',
      ''
    ].join('\n')
  )
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  const port = Number(vars.FUNNEL_BALANCER_LISTEN)
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok
    } catch {
      return false
    }
  }, { message: () => `nginx to answer on ${port}: ${stderr}` })
  return {
    wsBase: `ws://127.0.0.1:${port}/ws/boards`,
    /** nginx's error log so far (why it gave up on an upstream). */
    errors: () => readFile(path.join(dir, 'error.log'), 'utf8').catch(() => ''),
    async stop () {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    }
  }
}

/**
 * A schema of the test database for this run alone (so it meets no tables of another run or
 * version), made and dropped with psql; the URL puts funnel's tables in it.
 */
function freshSchema () {
  const name = `funnel_balancer_${randomUUID().replaceAll('-', '')}`
  const psql = (sql) => {
    const run = spawnSync('psql', ['-w', '-X', '-q', '-v', 'ON_ERROR_STOP=1', DATABASE_URL, '-c', sql], { encoding: 'utf8' })
    if (run.error || run.status !== 0) throw new Error(`psql ${sql}: ${run.error ?? run.stderr}`)
  }
  psql(`CREATE SCHEMA ${name}`)
  const separator = DATABASE_URL.includes('?') ? '&' : '?'
  return {
    url: `${DATABASE_URL}${separator}options=-csearch_path%3D${name}`,
    drop: () => psql(`DROP SCHEMA ${name} CASCADE`)
  }
}

async function ready (port) {
  await waitFor(async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok
    } catch {
      return false
    }
  }, { message: `instance on ${port} to be ready` })
}

test('a rolling restart behind nginx loses nothing and closes only with 1012', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'funnel-balancer-'))
  const schema = freshSchema()
  const CLUSTER_ARGS = ['--database-url', schema.url, ...DRAIN_ARGS]
  const ports = [await freePort(), await freePort()]
  const balancerPort = await freePort()
  const instances = []
  const start = async (i) => {
    const server = await startFunnel({ args: CLUSTER_ARGS, listen: `127.0.0.1:${ports[i]}` })
    instances[i] = server
    await ready(ports[i])
    return server
  }
  await start(0)
  await start(1)
  const nginx = await startNginx(dir, {
    FUNNEL_UPSTREAM_1: `127.0.0.1:${ports[0]}`,
    FUNNEL_UPSTREAM_2: `127.0.0.1:${ports[1]}`,
    FUNNEL_BALANCER_LISTEN: String(balancerPort)
  })
  const clients = []
  t.after(async () => {
    for (const client of clients) client.destroy()
    await nginx.stop()
    for (const server of instances) await server?.stop()
    schema.drop()
    await rm(dir, { recursive: true, force: true })
  })

  const board = newBoardId()
  for (let i = 0; i < WRITERS; i++) {
    const client = connectClient(nginx, board, { t })
    clients.push(client)
    await waitSynced(client, `client ${i}`)
  }
  const stage = sortedStages(clients[0].doc)[0].id
  // Each client writes a card every 50 ms for the whole roll (bounded: at most 400 each).
  const written = clients.map(() => [])
  let writing = true
  const writers = clients.map(async (client, i) => {
    for (let n = 0; writing && n < 400; n++) {
      const id = randomUUID()
      client.doc.transact(() => {
        const card = new (client.doc.getMap('cards').constructor)()
        client.doc.getMap('cards').set(id, card)
        card.set('title', `writer ${i} card ${n}`)
        card.set('stage', stage)
        card.set('pos', `V${String(n).padStart(4, '0')}`)
      })
      written[i].push(id)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })

  for (const i of [0, 1]) {
    const status = await instances[i].stop()
    assert.deepEqual(status, { code: 0, signal: null, killed: false }, `instance ${i} drains and exits 0:\n${instances[i].stderr()}`)
    await start(i)
  }
  writing = false
  await Promise.all(writers)

  const all = written.flat()
  assert.ok(all.length >= WRITERS * 10, `the clients kept writing during the roll (${all.length} cards)`)
  for (const [i, client] of clients.entries()) {
    await waitFor(() => client.provider.synced && all.every((id) => client.doc.getMap('cards').has(id)), {
      timeout: 30_000,
      message: () => {
        const missing = all.filter((id) => !client.doc.getMap('cards').has(id)).length
        return `client ${i} to hold all ${all.length} cards (missing ${missing})`
      }
    })
    // A socket that was open is closed only by a drain (1012). A reconnect attempt that failed
    // before it became a socket is the provider's business (it retries), but is told.
    const seen = client.closes.filter(Boolean)
    const failedAttempts = seen.filter((close) => !close.opened).length
    if (failedAttempts > 0) t.diagnostic(`client ${i}: ${failedAttempts} failed connection attempts`)
    assert.ok(
      seen.filter((close) => close.opened).every((close) => close.code === 1012),
      `client ${i} saw only 1012 closes: ${JSON.stringify(client.closes)}\nnginx: ${await nginx.errors()}`
    )
  }
  // A fresh client through the balancer agrees.
  const late = connectClient(nginx, board, { t })
  clients.push(late)
  await waitSynced(late, 'a late client')
  await waitFor(() => all.every((id) => late.doc.getMap('cards').has(id)), { message: 'the late client to hold every card' })
})
