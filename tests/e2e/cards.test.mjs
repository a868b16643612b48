// What a card shows: each user's own display form, and the activity counter (colour by deadline,
// number of open activities) as both users see it; the workload panel and the unprocessed filter.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  addActivity,
  card,
  cardOf,
  changeSettings,
  consoleLog,
  countValue,
  describe,
  eventually,
  fieldBoxes,
  moneyValue,
  scenario,
  snapshot,
  TEST_TIMEOUT,
  WAIT_MS,
  waitFor,
  waitUntilReady,
  serverAndBrowser,
  describeBoth
} from './helpers.mjs'

const FILE = import.meta.url

let server
let browser
serverAndBrowser((started) => ({ server, browser } = started))

const both = describeBoth

/**
 * Sets the current user's display form in the settings panel: every `data-display-field`
 * checkbox is checked exactly when its field is in `fields`. Returns the checkboxes offered.
 */
async function setDisplayForm (page, fields) {
  let offered = []
  await changeSettings(page, async (panel) => {
    offered = await fieldBoxes(panel, 'data-display-field')
    for (const id of offered) {
      await panel.locator(`input[data-display-field="${id}"]`).first().setChecked(fields.includes(id))
    }
  })
  return offered
}

test('4. two users with different display forms see different faces of the same card', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: '4 display forms per user',
    seed: (yjs) => ({
      deal: yjs.addCard({ stage: yjs.stageId('New'), title: 'Globex expansion', amount: 4200_00, client: 'Globex Corporation', responsible: 'ann' })
    })
  }, async ({ ann, bob, yjs, seeded: { deal } }) => {
    // Title stays on both, so the card can be told apart; ann adds the client, bob the amount.
    const offered = await setDisplayForm(ann.page, ['title', 'client'])
    assert.ok(offered.includes('client') && offered.includes('amount'),
      `the settings panel offers display-field checkboxes for client and amount: ${JSON.stringify(offered)}`)
    await setDisplayForm(bob.page, ['title', 'amount'])

    await waitFor(() => {
      const views = yjs.views()
      return views.ann?.includes('client') && !views.ann.includes('amount') &&
        views.bob?.includes('amount') && !views.bob.includes('client')
    }, { message: () => `views.ann = [.., client] and views.bob = [.., amount] in the document: ${JSON.stringify(yjs.views())}` })

    const check = async () => {
      await eventually('ann to see the client and no amount on the card', async () => {
        const face = cardOf(await snapshot(ann.page), deal)
        assert.ok(face.fields.client?.includes('Globex Corporation'), `[data-card-field="client"] is ${JSON.stringify(face.fields.client)}`)
        assert.ok(!('amount' in face.fields), `ann's card shows [data-card-field="amount"] ${JSON.stringify(face.fields.amount)}`)
        assert.ok(!/4,?200/.test(face.text), `ann's card text shows the amount: ${JSON.stringify(face.text)}`)
      }, { describe: both(ann, bob) })
      await eventually('bob to see the amount and no client on the card', async () => {
        const face = cardOf(await snapshot(bob.page), deal)
        assert.equal(moneyValue(face.fields.amount), 4200, `[data-card-field="amount"] is ${JSON.stringify(face.fields.amount)}`)
        assert.ok(!('client' in face.fields), `bob's card shows [data-card-field="client"] ${JSON.stringify(face.fields.client)}`)
        assert.ok(!face.text.includes('Globex Corporation'), `bob's card text shows the client: ${JSON.stringify(face.text)}`)
      }, { describe: both(ann, bob) })
    }
    await check()
    // The display form changes the fields, not the avatar: both faces show the responsible's.
    for (const session of [ann, bob]) {
      const face = cardOf(await snapshot(session.page), deal)
      assert.equal(face.avatar, 'ann', `${session.user}'s card: [data-avatar] is ${JSON.stringify(face.avatar)}, expected the responsible, ann`)
    }

    // Each user's form is kept: after a reload both still see their own face.
    for (const session of [ann, bob]) {
      await session.page.reload({ waitUntil: 'domcontentloaded', timeout: WAIT_MS })
      await waitUntilReady(session)
    }
    await check()
  })
)

test('5. an activity due in 10 minutes (threshold 15) lights the counter red with 1 in both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: '5 red counter',
    seed: (yjs) => {
      yjs.setBoard('counterThresholdMin', 15)
      return { deal: yjs.addCard({ stage: yjs.stageId('New'), title: 'Hooli pilot', amount: 800_00, client: 'Hooli', responsible: 'ann' }) }
    }
  }, async ({ ann, bob, yjs, seeded: { deal } }) => {
    const subject = 'Call Hooli about the pilot'
    const typedAt = Date.now()
    await addActivity(ann.page, deal, { kind: 'call', subject, msFromNow: 10 * 60_000, responsible: 'ann' })

    const [activity] = await waitFor(() => yjs.activities(deal).length > 0 && yjs.activities(deal), {
      message: () => `an activity of the card in the document: ${JSON.stringify(yjs.doc.getMap('activities').toJSON())}`
    })
    assert.equal(yjs.activities(deal).length, 1, 'exactly one activity was added')
    assert.equal(activity.subject, subject)
    assert.equal(activity.done, false)
    assert.ok(typeof activity.deadline === 'number', `deadline is a number of milliseconds: ${JSON.stringify(activity.deadline)}`)
    // datetime-local has minutes: the deadline is 9 to 10 minutes from when it was typed.
    const minutes = (activity.deadline - typedAt) / 60_000
    assert.ok(minutes > 8.9 && minutes <= 10.1, `the deadline is ${minutes.toFixed(2)} minutes ahead, expected about 10`)

    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show a red counter with 1`, async () => {
        const face = cardOf(await snapshot(session.page), deal)
        assert.ok(face.counter, 'the card has a [data-counter]')
        assert.equal(face.counter.state, 'due', `data-counter-state is ${JSON.stringify(face.counter.state)}`)
        assert.equal(countValue(face.counter.text), 1, `the counter reads ${JSON.stringify(face.counter.text)}`)
      }, { describe: both(ann, bob) })
    }

    // Clicking the counter shows the activities.
    await card(bob.page, deal).locator('[data-counter]').first().click()
    const panel = bob.page.locator('[data-panel="activities"]').first()
    await panel.waitFor({ state: 'visible' })
    await eventually('bob\'s activities panel to list the activity', async () => {
      const rows = await panel.locator('[data-activity-id]').evaluateAll((els) => els.map((el) => ({ id: el.getAttribute('data-activity-id'), text: el.textContent })))
      assert.deepEqual(rows.map((r) => r.id), [activity.id])
      assert.ok(rows[0].text.includes(subject), `the row reads ${JSON.stringify(rows[0].text)}`)
    })
  })
)

test('the counter threshold is a board setting: raising it from 5 to 15 turns a 10-minute activity red', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'threshold setting',
    seed: (yjs) => {
      yjs.setBoard('counterThresholdMin', 5)
      return { deal: yjs.addCard({ stage: yjs.stageId('New'), title: 'Pied Piper demo', amount: 50_00, responsible: 'bob' }) }
    }
  }, async ({ ann, bob, yjs, seeded: { deal } }) => {
    await addActivity(ann.page, deal, { kind: 'meeting', subject: 'Demo for Pied Piper', msFromNow: 10 * 60_000, responsible: 'bob' })
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show a grey (planned) counter with 1 while the threshold is 5`, async () => {
        const face = cardOf(await snapshot(session.page), deal)
        assert.equal(face.counter?.state, 'planned', `data-counter-state is ${JSON.stringify(face.counter?.state)}`)
        assert.equal(countValue(face.counter.text), 1, `the counter reads ${JSON.stringify(face.counter.text)}`)
      }, { describe: both(ann, bob) })
    }

    await changeSettings(bob.page, async (panel) => {
      const threshold = panel.locator('input[name="threshold"]').first()
      assert.equal(await threshold.inputValue(), '5', 'the settings panel shows the board threshold')
      await threshold.fill('15')
    })
    await waitFor(() => yjs.board().counterThresholdMin === 15, {
      message: () => `board.counterThresholdMin to be 15: ${JSON.stringify(yjs.board())}`
    })
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show a red counter once the threshold is 15`, async () => {
        const face = cardOf(await snapshot(session.page), deal)
        assert.equal(face.counter?.state, 'due', `data-counter-state is ${JSON.stringify(face.counter?.state)}`)
        assert.equal(countValue(face.counter.text), 1, `the counter reads ${JSON.stringify(face.counter.text)}`)
      }, { describe: both(ann, bob) })
    }
  })
)

test('completing the only activity from the activities panel puts the counter out in both pages', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'complete an activity',
    seed: (yjs) => {
      const deal = yjs.addCard({ stage: yjs.stageId('In progress'), title: 'Massive Dynamic audit', amount: 60_00, responsible: 'bob' })
      const activity = yjs.addActivity({ card: deal, kind: 'call', subject: 'Call Massive Dynamic', deadline: Date.now() + 5 * 60_000, responsible: 'bob' })
      return { deal, activity }
    }
  }, async ({ ann, bob, yjs, seeded: { deal, activity } }) => {
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show a red counter with 1`, async () => {
        const face = cardOf(await snapshot(session.page), deal)
        assert.equal(face.counter?.state, 'due', `data-counter-state is ${JSON.stringify(face.counter?.state)}`)
        assert.equal(countValue(face.counter.text), 1, `the counter reads ${JSON.stringify(face.counter.text)}`)
      }, { describe: both(ann, bob) })
    }

    await card(bob.page, deal).locator('[data-counter]').first().click()
    const panel = bob.page.locator('[data-panel="activities"]').first()
    await panel.waitFor({ state: 'visible' })
    await panel.locator(`[data-activity-id="${activity}"] [data-action="complete-activity"]`).first().click()

    await waitFor(() => yjs.activities(deal)[0]?.done === true, {
      message: () => `the activity to be done in the document: ${JSON.stringify(yjs.activities(deal))}`
    })
    // Nothing open on a card in a progress stage: an unprocessed card (idle), 0 open activities.
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show the counter out (idle, 0)`, async () => {
        const face = cardOf(await snapshot(session.page), deal)
        assert.equal(face.counter?.state, 'idle', `data-counter-state is ${JSON.stringify(face.counter?.state)}`)
        assert.ok([0, null].includes(countValue(face.counter.text)), `the counter reads ${JSON.stringify(face.counter.text)}`)
      }, { describe: both(ann, bob) })
    }
  })
)

test('workload lists each manager with their cards; the unprocessed filter shows only cards with nothing open', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'workload and unprocessed',
    seed: (yjs) => {
      const stage = yjs.stageId('New')
      const a = yjs.addCard({ stage, pos: 'a0', title: 'Ann idle deal', amount: 100_00, responsible: 'ann' })
      const b = yjs.addCard({ stage, pos: 'a1', title: 'Bob idle deal', amount: 200_00, responsible: 'bob' })
      const c = yjs.addCard({ stage, pos: 'a2', title: 'Bob planned deal', amount: 300_00, responsible: 'bob' })
      yjs.addActivity({ card: c, kind: 'meeting', subject: 'Meet next week', deadline: Date.now() + 7 * 24 * 3600_000, responsible: 'bob' })
      return { a, b, c }
    }
  }, async ({ ann, seeded: { a, b, c } }) => {
    await ann.page.locator('[data-action="toggle-workload"]').first().click()
    const panel = ann.page.locator('[data-panel="workload"]').first()
    await panel.waitFor({ state: 'visible' })
    await eventually('the workload panel to have a row for ann (1 card, $100) and bob (2 cards, $500)', async () => {
      const rows = Object.fromEntries(await panel.locator('[data-workload-user]').evaluateAll((els) =>
        // innerText separates table cells (and other blocks), where textContent runs them together.
        els.map((el) => [el.getAttribute('data-workload-user'), el.innerText.replace(/\s+/g, ' ').trim()])))
      assert.deepEqual(Object.keys(rows).sort(), ['ann', 'bob'], `rows: ${JSON.stringify(rows)}`)
      assert.match(rows.ann, /\b1\b/, `ann's row: ${rows.ann}`)
      assert.match(rows.ann, /100(\.00)?\b/, `ann's row: ${rows.ann}`)
      assert.match(rows.bob, /\b2\b/, `bob's row: ${rows.bob}`)
      assert.match(rows.bob, /500(\.00)?\b/, `bob's row: ${rows.bob}`)
    })
    await ann.page.locator('[data-action="toggle-workload"]').first().click()

    const shown = async () => (await snapshot(ann.page)).columns.flatMap((col) => col.cards.map((x) => x.id)).sort()
    await ann.page.locator('[data-action="filter-unprocessed"]').first().click()
    await eventually('the unprocessed filter to show only the two cards with nothing open', async () => {
      assert.deepEqual(await shown(), [a, b].sort())
    }, { describe: () => describe(ann.page) })
    await ann.page.locator('[data-action="filter-unprocessed"]').first().click()
    await eventually('all three cards to show again once the filter is off', async () => {
      assert.deepEqual(await shown(), [a, b, c].sort())
    }, { describe: () => describe(ann.page) })
  })
)

test('an incoming activity (a call that came in) shows a green counter: state incoming, 1', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'incoming counter',
    users: ['ann'],
    seed: (yjs) => {
      const deal = yjs.addCard({ stage: yjs.stageId('In progress'), title: 'Stark callback', amount: 10_00, responsible: 'ann' })
      yjs.addActivity({ card: deal, kind: 'call', direction: 'incoming', subject: 'Missed call from Stark', responsible: 'ann' })
      return { deal }
    }
  }, async ({ ann, seeded: { deal } }) => {
    await eventually('ann to show a green counter with 1', async () => {
      const face = cardOf(await snapshot(ann.page), deal)
      assert.equal(face.counter?.state, 'incoming', `data-counter-state is ${JSON.stringify(face.counter?.state)}`)
      assert.equal(countValue(face.counter.text), 1, `the counter reads ${JSON.stringify(face.counter.text)}`)
    }, { describe: () => describe(ann.page) })
  })
)

test('the counter turns red by itself when the threshold is crossed, with nothing written to the board', { timeout: TEST_TIMEOUT }, () =>
  scenario({
    browser,
    server,
    file: FILE,
    name: 'counter turns red on time',
    seed: (yjs) => {
      yjs.setBoard('counterThresholdMin', 15)
      const deal = yjs.addCard({ stage: yjs.stageId('New'), title: 'Oscorp renewal', amount: 10_00, responsible: 'bob' })
      // Lights at deadline - 15 min, that is about 8 s after the pages open.
      const deadline = Date.now() + 15 * 60_000 + 8_000
      yjs.addActivity({ card: deal, kind: 'call', subject: 'Call Oscorp', deadline, responsible: 'bob' })
      return { deal, lightsAt: deadline - 15 * 60_000 }
    }
  }, async ({ ann, bob, seeded: { deal, lightsAt } }) => {
    for (const session of [ann, bob]) {
      const face = cardOf(await snapshot(session.page), deal)
      if (Date.now() < lightsAt - 500) {
        assert.equal(face.counter?.state, 'planned', `${session.user}: before the threshold data-counter-state is ${JSON.stringify(face.counter?.state)}`)
      }
    }
    for (const session of [ann, bob]) {
      await eventually(`${session.user} to show a red counter once the threshold is crossed`, async () => {
        const face = cardOf(await snapshot(session.page), deal)
        assert.equal(face.counter?.state, 'due', `data-counter-state is ${JSON.stringify(face.counter?.state)}`)
        assert.equal(countValue(face.counter.text), 1, `the counter reads ${JSON.stringify(face.counter.text)}`)
      }, { timeout: Math.max(0, lightsAt - Date.now()) + 5_000, describe: both(ann, bob) })
    }
  })
)

test('7. no console errors or uncaught page errors in the tests above', () => {
  assert.deepEqual(consoleLog.errors, [], `console errors:\n${consoleLog.errors.join('\n')}`)
})
