// Sign-in through a company's identity provider (docs/accounts.md, "How a team signs in with
// an identity provider"), in Chromium, against a real OpenID Provider: panva's `oidc-provider`
// (OpenID Certified), started here on 127.0.0.1 with funnel registered as a client and its
// development login pages, which take any password for an account of ours. An invited person
// signs in through the provider and lands on the board they asked for; an unknown e-mail, a
// disabled person, a cancelled sign-in and a tampered or replayed state are refused on the
// sign-in page with a sentence; a verified e-mail of an allowed domain gets an account.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'

import Provider from 'oidc-provider'

import {
  consoleLog,
  createBoard,
  describe,
  eventually,
  funnelBinary,
  funnelToken,
  launchBrowser,
  newSession,
  saveArtifacts,
  seriousViolations,
  startFunnel,
  TEST_TIMEOUT,
  WAIT_MS,
  waitUntilReady
} from './helpers.mjs'

const FILE = import.meta.url
const SECRET = randomBytes(32).toString('hex')
const CLIENT_SECRET = randomBytes(24).toString('hex')
const PROVIDER_NAME = 'Acme ID'

/** The provider's accounts (its login is the key): claims as a company directory has them. */
const ACCOUNTS = {
  ivy: { email: 'Ivy@Example.com', email_verified: true, name: 'Ivy Invited' },
  // Ivy's old address, given at the provider to a newcomer (another subject).
  ivo: { email: 'ivy@example.com', email_verified: true, name: 'Ivo Newcomer' },
  una: { email: 'una@elsewhere.test', email_verified: true, name: 'Una Unknown' },
  sam: { email: 'sam@staff.test', email_verified: true, name: 'Sam Staff' },
  vic: { email: 'vic@staff.test', email_verified: false, name: 'Vic Unverified' }
}

/**
 * What the browsers log and the tests expect: the 401 of `/me` before signing in, the
 * development login page's web font (fonts.googleapis.com, off this network: refused at once)
 * and the provider's missing favicon.
 */
const EXPECTED = [/status of 401/, /fonts\.googleapis\.com/, /net::ERR_FAILED/, /favicon\.ico/]

let identity
let server
let browser
let adminToken = ''
let boardId = ''
let secretDir = ''

/** A port nobody listens on now: funnel's address must be known before it starts (the redirect URI). */
async function freePort () {
  const probe = net.createServer()
  await new Promise((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** The identity provider on 127.0.0.1 with funnel registered for `redirectUri`. */
async function startProvider (redirectUri) {
  const listener = http.createServer()
  await new Promise((resolve, reject) => listener.once('error', reject).listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${listener.address().port}`
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'funnel',
      client_secret: CLIENT_SECRET,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code']
    }],
    async findAccount (ctx, sub) {
      const account = ACCOUNTS[sub]
      if (account === undefined) return undefined
      return { accountId: sub, claims: async () => ({ sub, ...account }) }
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } }
  })
  // The development pages and keys say so on every start: expected here.
  provider.on('server_error', (ctx, error) => console.error(`oidc-provider: ${error.stack}`))
  listener.on('request', provider.callback())
  return {
    issuer,
    close: () => new Promise((resolve) => {
      listener.closeAllConnections()
      listener.close(resolve)
    })
  }
}

before(async () => {
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}`
  identity = await startProvider(`${publicUrl}/auth/oidc/callback`)
  secretDir = await mkdtemp(path.join(tmpdir(), 'funnel-oidc-'))
  const secretFile = path.join(secretDir, 'client-secret')
  await writeFile(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 })
  server = await startFunnel({
    port,
    args: [
      '--auth-secret', SECRET,
      '--public-url', publicUrl,
      '--oidc-issuer', identity.issuer,
      '--oidc-client-id', 'funnel',
      '--oidc-client-secret-file', secretFile,
      '--oidc-name', PROVIDER_NAME,
      '--oidc-allowed-domains', 'staff.test'
    ]
  })
  browser = await launchBrowser()
  adminToken = await funnelToken({ secret: SECRET, user: 'admin-program', role: 'admin' })
  boardId = await createBoard(server, { token: adminToken, name: 'Pipeline' })
})

after(async () => {
  await browser?.close()
  const status = await server?.stop()
  if (status && (status.killed || status.code !== 0)) {
    console.error(`funnel did not stop cleanly: ${JSON.stringify(status)}\n${server.stderr()}`)
  }
  await identity?.close()
  if (secretDir) await rm(secretDir, { recursive: true, force: true })
})

/** `funnel invite`: makes the person (invited, no password) and prints a link we do not use. */
function invite (email, name) {
  const args = ['invite', email, '--name', name, '--data-dir', server.dataDir, '--url', server.url]
  return new Promise((resolve, reject) => {
    execFile(funnelBinary(), args, { timeout: WAIT_MS, env: { ...process.env, NO_COLOR: '1' } }, (error, out, err) => {
      if (error) reject(new Error(`funnel invite failed: ${error.message}\n${err}`))
      else resolve(out.trim())
    })
  })
}

async function api (method, url, body) {
  const response = await fetch(`${server.url}${url}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS)
  })
  const text = await response.text()
  assert.ok(response.ok, `${method} ${url} answered ${response.status}: ${text}`)
  return JSON.parse(text)
}

async function withSession (name, body, { locale } = {}) {
  const session = await newSession(browser, name, { testName: name, expectedErrors: EXPECTED, locale })
  // Nothing leaves this machine (the provider's page asks for a web font elsewhere).
  await session.context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort())
  let failed = false
  try {
    await body(session)
  } catch (error) {
    failed = true
    throw error
  } finally {
    const saved = await saveArtifacts(FILE, name, { [name]: session }, failed)
    await session.context.close().catch(() => {})
    if (failed) console.error(`[${name}] final state saved: ${saved.join(', ')}\nfunnel's log:\n${server.stderr()}`)
  }
}

const text = (page, selector) =>
  page.locator(selector).first().evaluate((el) => el.textContent.replace(/\s+/g, ' ').trim())

/** From funnel's sign-in page through the provider's login and consent pages as `login`. */
async function signInAtProvider (page, login) {
  const button = page.locator('[data-action="sign-in-provider"]')
  await button.waitFor({ state: 'visible' })
  assert.equal(await text(page, '[data-action="sign-in-provider"]'), `Sign in with ${PROVIDER_NAME}`)
  await button.click()
  await page.locator('input[name="login"]').waitFor({ state: 'visible' })
  assert.equal(new URL(page.url()).origin, identity.issuer, 'the browser is at the identity provider')
  await page.locator('input[name="login"]').fill(login)
  await page.locator('input[name="password"]').fill('whatever the provider checks')
  await page.locator('button.login-submit').click()
  // The provider asks once whether funnel may have the e-mail and the name.
  await page.locator('button.login-submit', { hasText: 'Continue' }).click()
}

/** The sign-in page, saying `message` for the provider's refusal `code`, its code out of the address. */
async function refusedWith (page, code, message, pathname) {
  await eventually(`the sign-in page to say why (${code})`, async () => {
    const url = new URL(page.url())
    assert.equal(url.origin, server.url)
    assert.equal(url.pathname, pathname)
    assert.equal(url.searchParams.get('signInError'), null, 'the code leaves the address')
    assert.equal(await page.locator('form[data-form="sign-in"]').count(), 1, 'not signed in')
    assert.equal(await page.locator(`[data-sign-in-provider-error="${code}"]`).count(), 1)
    const said = await text(page, '[data-sign-in-provider-error]')
    assert.match(said, message)
    assert.doesNotMatch(said, /oidc|nonce|state|token|access_denied/i, 'no protocol words')
  }, { describe: () => describe(page) })
}

test('the sign-in page offers the identity provider, in both languages, and passes axe-core', { timeout: TEST_TIMEOUT }, async () => {
  const methods = await (await fetch(`${server.url}/api/v1/auth/methods`)).json()
  assert.deepEqual(methods, { password: true, oidc: { name: PROVIDER_NAME, start: '/auth/oidc/start' } })
  await withSession('french', async ({ page }) => {
    await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await eventually('the French button', async () => {
      assert.equal(await text(page, '[data-action="sign-in-provider"]'), `Se connecter avec ${PROVIDER_NAME}`)
      assert.equal(await text(page, '.sign-in-or'), 'ou avec votre mot de passe')
    }, { describe: () => describe(page) })
    assert.deepEqual(await seriousViolations(page), [], 'axe-core: no critical or serious violation')
  }, { locale: 'fr-FR' })
})

test('an invited person signs in through the identity provider and lands on the board they opened', { timeout: TEST_TIMEOUT }, async () => {
  await invite('ivy@example.com', 'Ivy Invited')
  await withSession('invited', async (session) => {
    const { page } = session
    await page.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signInAtProvider(page, 'ivy')
    await eventually('Ivy to land on the board, signed in', async () => {
      assert.equal(new URL(page.url()).pathname, `/boards/${boardId}`)
      assert.match(await text(page, '.account'), /Ivy Invited/)
    }, { describe: () => describe(page) })
    await waitUntilReady(session)
    const me = await page.evaluate(async () => (await fetch('/api/v1/me')).json())
    assert.equal(me.email, 'ivy@example.com', 'matched by the e-mail, whatever its case at the provider')
    assert.equal(me.signedInWith, 'session', 'the same session as a password sign-in')
    assert.equal(me.role, 'member')
    const cookies = await session.context.cookies(server.url)
    const sessionCookie = cookies.find((c) => c.name === 'funnel_session')
    assert.ok(sessionCookie?.httpOnly, 'an HttpOnly session cookie')
    assert.equal(sessionCookie.sameSite, 'Lax')
    assert.deepEqual(cookies.filter((c) => c.name.startsWith('funnel_oidc_')), [], 'the flow cookie is gone')
  })
  const ivy = (await api('GET', '/api/v1/people')).people.find((p) => p.email === 'ivy@example.com')
  assert.equal(ivy.active, true, 'the People page shows her active, without a password')
})

test('an e-mail of the directory that the provider gave to someone else is refused', { timeout: TEST_TIMEOUT }, () =>
  withSession('taken', async ({ page }) => {
    await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signInAtProvider(page, 'ivo')
    await refusedWith(page, 'taken', /belongs to another account at your identity provider/, '/')
  })
)

test('an e-mail nobody invited is refused with a clear message', { timeout: TEST_TIMEOUT }, () =>
  withSession('unknown', async ({ page }) => {
    await page.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signInAtProvider(page, 'una')
    await refusedWith(page, 'unknown', /not invited to funnel: ask an administrator/, `/boards/${boardId}`)
    assert.deepEqual(await seriousViolations(page), [], 'axe-core, with the refusal shown')
    const people = await api('GET', '/api/v1/people')
    assert.ok(!people.people.some((p) => p.email === 'una@elsewhere.test'), 'no account was made')
  })
)

test('a verified e-mail of an allowed domain gets an account; an unverified one does not', { timeout: TEST_TIMEOUT }, async () => {
  await withSession('allowed domain', async ({ page }) => {
    await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signInAtProvider(page, 'sam')
    await eventually('Sam to be signed in on the home page', async () => {
      assert.equal(new URL(page.url()).pathname, '/')
      assert.match(await text(page, '.account'), /Sam Staff/)
    }, { describe: () => describe(page) })
  })
  const sam = (await api('GET', '/api/v1/people')).people.find((p) => p.email === 'sam@staff.test')
  assert.equal(sam?.name, 'Sam Staff', 'named as the provider names them')
  assert.equal(sam.role, 'member', 'the default role')
  assert.equal(sam.active, true)
  await withSession('unverified', async ({ page }) => {
    await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signInAtProvider(page, 'vic')
    await refusedWith(page, 'unverified', /did not confirm an e-mail address/, '/')
  })
})

test('a disabled person is refused', { timeout: TEST_TIMEOUT }, async () => {
  const ivy = (await api('GET', '/api/v1/people')).people.find((p) => p.email === 'ivy@example.com')
  await api('PATCH', `/api/v1/people/${ivy.id}`, { disabled: true })
  try {
    await withSession('disabled', async ({ page }) => {
      await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await signInAtProvider(page, 'ivy')
      await refusedWith(page, 'disabled', /account has been disabled/, '/')
    })
  } finally {
    await api('PATCH', `/api/v1/people/${ivy.id}`, { disabled: false })
  }
})

test('a sign-in cancelled at the provider says so', { timeout: TEST_TIMEOUT }, () =>
  withSession('cancelled', async ({ page }) => {
    await page.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await page.locator('[data-action="sign-in-provider"]').click()
    await page.locator('input[name="login"]').waitFor({ state: 'visible' })
    await page.locator('a', { hasText: 'Cancel' }).click()
    await refusedWith(page, 'denied', /cancelled at your identity provider/, `/boards/${boardId}`)
  })
)

test('a state changed on its way is refused; a used answer cannot be replayed', { timeout: TEST_TIMEOUT }, () =>
  withSession('tampered', async ({ page }) => {
    // Change the state in funnel's redirect to the provider, as someone in the middle could: the
    // provider then answers funnel with that state, which no flow of this browser has.
    const startUrl = `${server.url}/auth/oidc/start`
    await page.route(`${startUrl}**`, async (route) => {
      const response = await route.fetch({ maxRedirects: 0 })
      const location = new URL(response.headers().location)
      const state = location.searchParams.get('state')
      assert.ok(state, `funnel sent a state to the provider: ${location}`)
      location.searchParams.set('state', `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`)
      await route.fulfill({ response, headers: { ...response.headers(), location: location.href } })
    })
    await page.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await signInAtProvider(page, 'ivy')
    await refusedWith(page, 'state', /took too long or was interrupted: try again/, '/')
    await page.unroute(`${startUrl}**`)

    // Untouched, the same sign-in works in this browser; its answer is noted on the way.
    let answer = null
    page.on('request', (request) => {
      if (request.url().startsWith(`${server.url}/auth/oidc/callback`)) answer = request.url()
    })
    await page.goto(`${server.url}/boards/${boardId}`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await page.locator('[data-action="sign-in-provider"]').click()
    // The provider remembers Ivy now: no login page, maybe no consent page either.
    await eventually('Ivy to land on the board', async () => {
      assert.equal(new URL(page.url()).pathname, `/boards/${boardId}`)
      assert.match(await text(page, '.account'), /Ivy Invited/)
    }, { describe: () => describe(page) })
    assert.ok(answer, 'the provider answered funnel')

    // A replay of that answer (its flow used up, the browser without a session) is refused.
    await page.context().clearCookies()
    await page.goto(answer, { waitUntil: 'domcontentloaded', timeout: WAIT_MS })
    await refusedWith(page, 'state', /took too long or was interrupted/, '/')
  })
)

test('no console errors or uncaught page errors in the tests above (beyond the expected ones)', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
