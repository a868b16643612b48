//! The card rules the server's scheduler maintains and the browser mirrors: a card's activity
//! counter (`counter` in the card map), when that counter will next change by itself, the
//! reminders that have fired, and the card's avatar.
//!
//! Every function here is pure: no I/O and no clock of its own. The current time is a parameter
//! (`now`, milliseconds since the Unix epoch), so the scheduler, the tests and the browser's
//! mirror compute the same answer for the same inputs. The server writes the results into the
//! board document; clients only display them, which is why the colour of a counter changes on
//! every client at the same moment.
//!
//! The contract is docs/board-document.md, "Counters, avatars…". Where it is silent, the
//! choice made here is the contract, and each one is written beside the code as "Decision:".

use crate::schema::StageKind;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// One minute, in [`Millis`]: `remindMin` and `counterThresholdMin` count minutes.
pub const MINUTE_MS: Millis = 60_000;

/// Which way an activity goes: `activities.<id>.direction` in the board document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A call, e-mail or chat that came in: shown green on the counter, never "lit".
    Incoming,
    /// Anything the team plans or sends: a "planned" activity, which lights before its deadline.
    Outgoing,
}

impl Direction {
    /// The value stored in `direction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        }
    }

    /// Reads a stored `direction`. Callers decide what an unknown value means; the rules only
    /// single out `incoming`, so treating anything else as [`Direction::Outgoing`] (planned) is
    /// consistent with them.
    pub fn parse(raw: &str) -> Result<Self, UnknownRuleValue> {
        match raw {
            "incoming" => Ok(Direction::Incoming),
            "outgoing" => Ok(Direction::Outgoing),
            _ => Err(UnknownRuleValue::new(
                "direction",
                raw,
                "incoming or outgoing",
            )),
        }
    }
}

/// What the rules need of one activity of a card.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityFacts {
    /// `deadline`; an activity without one never lights.
    pub deadline: Option<Millis>,
    /// `remindMin`: minutes before the deadline at which the activity lights. `None` means the
    /// board's `counterThresholdMin`; a negative value counts as 0.
    pub remind_min: Option<i64>,
    pub direction: Direction,
    /// `done`: a done activity no longer counts at all.
    pub done: bool,
    /// `responsible` (user id): whose avatar the card shows when this activity's reminder fires.
    pub responsible: String,
}

/// `counter.state`: how the client draws a card's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterState {
    /// At least one planned activity is lit (red; with a green mark when some incoming are open).
    Due,
    /// No planned activity is lit and some incoming are open (green).
    Incoming,
    /// Only planned activities that have not lit yet are open (grey with a dot).
    Planned,
    /// Nothing is open and the card is in an initial or progress stage: an unprocessed card.
    Idle,
    /// Nothing is open and the card is in a final stage.
    None,
}

impl CounterState {
    /// The value stored in `counter.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            CounterState::Due => "due",
            CounterState::Incoming => "incoming",
            CounterState::Planned => "planned",
            CounterState::Idle => "idle",
            CounterState::None => "none",
        }
    }

    /// Reads a stored `counter.state`.
    pub fn parse(raw: &str) -> Result<Self, UnknownRuleValue> {
        match raw {
            "due" => Ok(CounterState::Due),
            "incoming" => Ok(CounterState::Incoming),
            "planned" => Ok(CounterState::Planned),
            "idle" => Ok(CounterState::Idle),
            "none" => Ok(CounterState::None),
            _ => Err(UnknownRuleValue::new(
                "counter state",
                raw,
                "due, incoming, planned, idle or none",
            )),
        }
    }
}

/// A card's `counter` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Open incoming + open planned activities: the number on the card.
    pub count: u32,
    /// Lit planned activities (overdue included).
    pub lit: u32,
    /// Open incoming activities.
    pub incoming: u32,
    /// The earliest deadline among open activities that have one, incoming included.
    pub next: Option<Millis>,
    pub state: CounterState,
}

/// When an open planned activity lights (and its reminder fires).
///
/// It is `deadline − remind_min` minutes, with `remind_min` defaulting to `threshold_min` (the
/// board's `counterThresholdMin`). `None` for an incoming activity (incoming ones are green, they
/// never light), a done one, or one without a deadline.
///
/// Decision: a negative reminder counts as 0, whether it comes from `remind_min` or from a
/// negative board threshold, so an activity never lights after its deadline.
/// Decision: the arithmetic saturates, so absurd deadlines or reminders give an extreme instant
/// (`Millis::MIN` lights at once, `Millis::MAX` never in practice) instead of overflowing.
pub fn lights_at(activity: &ActivityFacts, threshold_min: i64) -> Option<Millis> {
    if !is_planned(activity) {
        return None;
    }
    let deadline = activity.deadline?;
    let remind_min = activity.remind_min.unwrap_or(threshold_min).max(0);
    Some(deadline.saturating_sub(remind_min.saturating_mul(MINUTE_MS)))
}

/// The card's counter at `now`, given all of the card's activities and the kind of its stage.
///
/// A planned activity is lit from its [`lights_at`] on (`now == lights_at` is lit) until it is
/// done.
///
/// Decision: the counts saturate at `u32::MAX` rather than wrap.
pub fn counter(
    activities: &[ActivityFacts],
    stage: StageKind,
    threshold_min: i64,
    now: Millis,
) -> Counter {
    let mut incoming = 0u32;
    let mut planned = 0u32;
    let mut lit = 0u32;
    let mut next: Option<Millis> = None;
    for activity in activities.iter().filter(|activity| is_open(activity)) {
        if is_incoming(activity) {
            incoming = incoming.saturating_add(1);
        } else {
            planned = planned.saturating_add(1);
            if lights_at(activity, threshold_min).is_some_and(|lights| lights <= now) {
                lit = lit.saturating_add(1);
            }
        }
        if let Some(deadline) = activity.deadline {
            next = Some(next.map_or(deadline, |earliest| earliest.min(deadline)));
        }
    }
    let state = if lit > 0 {
        CounterState::Due
    } else if incoming > 0 {
        CounterState::Incoming
    } else if planned > 0 {
        CounterState::Planned
    } else {
        match stage {
            StageKind::Initial | StageKind::Progress => CounterState::Idle,
            // Final stages are never "unprocessed": the work on the card is over.
            StageKind::Success | StageKind::Failure => CounterState::None,
        }
    };
    Counter {
        count: incoming.saturating_add(planned),
        lit,
        incoming,
        next,
        state,
    }
}

/// The first instant strictly after `now` at which [`counter`] would change without any edit to
/// the card, or `None` if it never will: the earliest [`lights_at`] after `now` among open planned
/// activities. The scheduler sleeps until then.
///
/// Only lighting changes a counter over time: `count`, `incoming` and `next` change by edits, and
/// the state follows `lit`, `incoming` and the stage. The result does not depend on the stage.
pub fn next_counter_change(
    activities: &[ActivityFacts],
    threshold_min: i64,
    now: Millis,
) -> Option<Millis> {
    activities
        .iter()
        .filter_map(|activity| lights_at(activity, threshold_min))
        .filter(|&lights| lights > now)
        .min()
}

/// Why a card shows the avatar it shows: `avatarReason` in the card map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarReason {
    /// The card's responsible: the default, and whenever the responsible changes.
    Responsible,
    /// The user left a timeline comment.
    Comment,
    /// The user is responsible for an incoming or missed call.
    Call,
    /// The user is responsible for an incoming e-mail.
    Email,
    /// The user is responsible for a chat.
    Chat,
    /// The user is responsible for the activity whose reminder fired.
    Reminder,
}

impl AvatarReason {
    /// The value stored in `avatarReason`.
    pub fn as_str(self) -> &'static str {
        match self {
            AvatarReason::Responsible => "responsible",
            AvatarReason::Comment => "comment",
            AvatarReason::Call => "call",
            AvatarReason::Email => "email",
            AvatarReason::Chat => "chat",
            AvatarReason::Reminder => "reminder",
        }
    }

    /// Reads a stored `avatarReason`.
    pub fn parse(raw: &str) -> Result<Self, UnknownRuleValue> {
        match raw {
            "responsible" => Ok(AvatarReason::Responsible),
            "comment" => Ok(AvatarReason::Comment),
            "call" => Ok(AvatarReason::Call),
            "email" => Ok(AvatarReason::Email),
            "chat" => Ok(AvatarReason::Chat),
            "reminder" => Ok(AvatarReason::Reminder),
            _ => Err(UnknownRuleValue::new(
                "avatar reason",
                raw,
                "responsible, comment, call, email, chat or reminder",
            )),
        }
    }
}

/// Something that moves a card's avatar to `user` at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarEvent {
    pub at: Millis,
    pub user: String,
    pub reason: AvatarReason,
}

/// A card's `avatar`, `avatarAt` and `avatarReason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avatar {
    pub user: String,
    pub at: Millis,
    pub reason: AvatarReason,
}

/// The reminders that have fired by `now`, as avatar events: one per open planned activity whose
/// [`lights_at`] is at or before `now`, at that instant, for the activity's responsible.
///
/// Decision: the events are sorted by (`at`, `user`), not left in slice order, so the result (and
/// the [`avatar`] tie-break among reminders firing at the same instant: the greatest user id
/// wins) does not depend on the order in which the caller gathered the activities; a yrs map
/// does not promise one.
/// Decision: only open activities count, as for the counter. Once an activity is done its
/// reminder is no longer listed, so an avatar recomputed from this list alone goes back to the
/// previous event; a caller that wants a fired reminder to stick must keep the event itself.
pub fn fired_reminders(
    activities: &[ActivityFacts],
    threshold_min: i64,
    now: Millis,
) -> Vec<AvatarEvent> {
    let mut events: Vec<AvatarEvent> = activities
        .iter()
        .filter_map(|activity| {
            let at = lights_at(activity, threshold_min).filter(|&lights| lights <= now)?;
            Some(AvatarEvent {
                at,
                user: activity.responsible.clone(),
                reason: AvatarReason::Reminder,
            })
        })
        .collect();
    events.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.user.cmp(&b.user)));
    events
}

/// The card's avatar: it starts as, and follows, the responsible (who became responsible at
/// `responsible_since`), and the latest event wins.
///
/// The candidates are the responsible change, then `events` in slice order; the candidate with
/// the greatest `at` wins.
/// Decision: on equal `at` the later candidate in that order wins, so an event at the same
/// instant as the responsible change beats it, and of two events at one instant the one later in
/// the slice wins. An event before the responsible change loses to it: a new responsible takes
/// the avatar back.
pub fn avatar(responsible: &str, responsible_since: Millis, events: &[AvatarEvent]) -> Avatar {
    let mut winner = Avatar {
        user: responsible.to_owned(),
        at: responsible_since,
        reason: AvatarReason::Responsible,
    };
    for event in events {
        // `>=` rather than `>`: of equal instants, the later candidate wins.
        if event.at >= winner.at {
            winner = Avatar {
                user: event.user.clone(),
                at: event.at,
                reason: event.reason,
            };
        }
    }
    winner
}

/// A stored value that names no known direction, counter state or avatar reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {raw:?}: use {expected}")]
pub struct UnknownRuleValue {
    /// What was being read, e.g. "direction".
    pub what: &'static str,
    /// The value as stored.
    pub raw: String,
    /// The values that are accepted, for the message.
    pub expected: &'static str,
}

impl UnknownRuleValue {
    fn new(what: &'static str, raw: &str, expected: &'static str) -> Self {
        UnknownRuleValue {
            what,
            raw: raw.to_owned(),
            expected,
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = UnknownRuleValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Direction::parse(raw)
    }
}

impl std::str::FromStr for CounterState {
    type Err = UnknownRuleValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        CounterState::parse(raw)
    }
}

impl std::str::FromStr for AvatarReason {
    type Err = UnknownRuleValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        AvatarReason::parse(raw)
    }
}

fn is_open(activity: &ActivityFacts) -> bool {
    !activity.done
}

fn is_incoming(activity: &ActivityFacts) -> bool {
    is_open(activity) && activity.direction == Direction::Incoming
}

fn is_planned(activity: &ActivityFacts) -> bool {
    is_open(activity) && activity.direction != Direction::Incoming
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arbitrary "now": 2023-11-14T22:13:20Z.
    const T: Millis = 1_700_000_000_000;
    /// The default `counterThresholdMin`.
    const THRESHOLD: i64 = 15;

    fn planned(deadline: Millis) -> ActivityFacts {
        ActivityFacts {
            deadline: Some(deadline),
            remind_min: None,
            direction: Direction::Outgoing,
            done: false,
            responsible: "manager".into(),
        }
    }

    fn incoming(deadline: Option<Millis>) -> ActivityFacts {
        ActivityFacts {
            deadline,
            remind_min: None,
            direction: Direction::Incoming,
            done: false,
            responsible: "manager".into(),
        }
    }

    fn done(activity: ActivityFacts) -> ActivityFacts {
        ActivityFacts {
            done: true,
            ..activity
        }
    }

    fn reminding(activity: ActivityFacts, remind_min: i64) -> ActivityFacts {
        ActivityFacts {
            remind_min: Some(remind_min),
            ..activity
        }
    }

    fn owned_by(activity: ActivityFacts, user: &str) -> ActivityFacts {
        ActivityFacts {
            responsible: user.into(),
            ..activity
        }
    }

    fn minutes(count: i64) -> Millis {
        count * MINUTE_MS
    }

    fn event(at: Millis, user: &str, reason: AvatarReason) -> AvatarEvent {
        AvatarEvent {
            at,
            user: user.into(),
            reason,
        }
    }

    const ALL_STAGES: [StageKind; 4] = [
        StageKind::Initial,
        StageKind::Progress,
        StageKind::Success,
        StageKind::Failure,
    ];

    // ---- counter: nothing open ----

    #[test]
    fn no_activities_in_initial_or_progress_is_idle() {
        for stage in [StageKind::Initial, StageKind::Progress] {
            assert_eq!(
                counter(&[], stage, THRESHOLD, T),
                Counter {
                    count: 0,
                    lit: 0,
                    incoming: 0,
                    next: None,
                    state: CounterState::Idle
                },
                "{stage:?}"
            );
        }
    }

    #[test]
    fn no_activities_in_a_final_stage_is_none() {
        for stage in [StageKind::Success, StageKind::Failure] {
            assert_eq!(
                counter(&[], stage, THRESHOLD, T),
                Counter {
                    count: 0,
                    lit: 0,
                    incoming: 0,
                    next: None,
                    state: CounterState::None
                },
                "{stage:?}"
            );
        }
    }

    #[test]
    fn only_done_activities_count_as_nothing_open() {
        let activities = [
            done(planned(T - minutes(60))),
            done(planned(T + minutes(60))),
            done(incoming(Some(T - minutes(5)))),
            done(incoming(None)),
        ];
        for stage in ALL_STAGES {
            let got = counter(&activities, stage, THRESHOLD, T);
            assert_eq!(
                (got.count, got.lit, got.incoming, got.next),
                (0, 0, 0, None)
            );
            let idle = matches!(stage, StageKind::Initial | StageKind::Progress);
            let expected = if idle {
                CounterState::Idle
            } else {
                CounterState::None
            };
            assert_eq!(got.state, expected, "{stage:?}");
        }
    }

    // ---- counter: incoming ----

    #[test]
    fn an_incoming_only_is_incoming_in_every_stage() {
        for stage in ALL_STAGES {
            let got = counter(&[incoming(None)], stage, THRESHOLD, T);
            assert_eq!(
                got,
                Counter {
                    count: 1,
                    lit: 0,
                    incoming: 1,
                    next: None,
                    state: CounterState::Incoming
                },
                "{stage:?}"
            );
        }
    }

    #[test]
    fn an_overdue_incoming_never_lights() {
        let activity = incoming(Some(T - minutes(600)));
        assert_eq!(lights_at(&activity, THRESHOLD), None);
        let got = counter(&[activity], StageKind::Progress, THRESHOLD, T);
        assert_eq!(got.lit, 0);
        assert_eq!(got.state, CounterState::Incoming);
        assert_eq!(got.next, Some(T - minutes(600)));
    }

    #[test]
    fn incoming_beats_a_future_planned() {
        let activities = [planned(T + minutes(60)), incoming(None)];
        let got = counter(&activities, StageKind::Initial, THRESHOLD, T);
        assert_eq!((got.count, got.lit, got.incoming), (2, 0, 1));
        assert_eq!(got.state, CounterState::Incoming);
    }

    // ---- counter: planned and lighting ----

    #[test]
    fn a_future_planned_is_planned_in_every_stage() {
        let deadline = T + minutes(60);
        for stage in ALL_STAGES {
            let got = counter(&[planned(deadline)], stage, THRESHOLD, T);
            assert_eq!(
                got,
                Counter {
                    count: 1,
                    lit: 0,
                    incoming: 0,
                    next: Some(deadline),
                    state: CounterState::Planned
                },
                "{stage:?}"
            );
        }
    }

    #[test]
    fn a_planned_lights_exactly_at_the_threshold() {
        let deadline = T + minutes(THRESHOLD);
        let activities = [planned(deadline)];
        assert_eq!(lights_at(&activities[0], THRESHOLD), Some(T));
        let before = counter(&activities, StageKind::Progress, THRESHOLD, T - 1);
        assert_eq!((before.lit, before.state), (0, CounterState::Planned));
        let at = counter(&activities, StageKind::Progress, THRESHOLD, T);
        assert_eq!((at.count, at.lit, at.state), (1, 1, CounterState::Due));
    }

    #[test]
    fn an_overdue_planned_stays_lit() {
        let activities = [planned(T - minutes(60 * 24 * 365))];
        let got = counter(&activities, StageKind::Progress, THRESHOLD, T);
        assert_eq!((got.count, got.lit, got.state), (1, 1, CounterState::Due));
        assert_eq!(got.next, Some(T - minutes(60 * 24 * 365)));
    }

    #[test]
    fn a_lit_planned_stays_due_in_a_final_stage() {
        let got = counter(&[planned(T)], StageKind::Success, THRESHOLD, T);
        assert_eq!(got.state, CounterState::Due);
    }

    #[test]
    fn threshold_zero_lights_exactly_at_the_deadline() {
        let activities = [planned(T)];
        assert_eq!(lights_at(&activities[0], 0), Some(T));
        assert_eq!(
            counter(&activities, StageKind::Progress, 0, T - 1).state,
            CounterState::Planned
        );
        assert_eq!(
            counter(&activities, StageKind::Progress, 0, T).state,
            CounterState::Due
        );
    }

    #[test]
    fn remind_min_overrides_the_threshold() {
        let deadline = T + minutes(60);
        let early = reminding(planned(deadline), 60);
        assert_eq!(lights_at(&early, THRESHOLD), Some(T));
        assert_eq!(
            counter(
                std::slice::from_ref(&early),
                StageKind::Progress,
                THRESHOLD,
                T
            )
            .state,
            CounterState::Due
        );
        // An explicit 0 is not "unset": it lights at the deadline, not 15 minutes before.
        let at_deadline = reminding(planned(deadline), 0);
        assert_eq!(lights_at(&at_deadline, THRESHOLD), Some(deadline));
        assert_eq!(
            counter(&[at_deadline], StageKind::Progress, THRESHOLD, deadline - 1).state,
            CounterState::Planned
        );
    }

    #[test]
    fn a_negative_remind_min_counts_as_zero() {
        let activity = reminding(planned(T), -30);
        assert_eq!(lights_at(&activity, THRESHOLD), Some(T));
        let activity = reminding(planned(T), i64::MIN);
        assert_eq!(lights_at(&activity, THRESHOLD), Some(T));
    }

    #[test]
    fn a_negative_threshold_counts_as_zero() {
        assert_eq!(lights_at(&planned(T), -15), Some(T));
        assert_eq!(lights_at(&planned(T), i64::MIN), Some(T));
        // An activity's own reminder still applies.
        assert_eq!(
            lights_at(&reminding(planned(T), 10), -15),
            Some(T - minutes(10))
        );
    }

    #[test]
    fn a_planned_without_deadline_never_lights() {
        let activity = ActivityFacts {
            deadline: None,
            ..planned(T)
        };
        assert_eq!(lights_at(&activity, THRESHOLD), None);
        let activities = [activity];
        for now in [Millis::MIN, T, Millis::MAX] {
            let got = counter(&activities, StageKind::Initial, THRESHOLD, now);
            assert_eq!(
                got,
                Counter {
                    count: 1,
                    lit: 0,
                    incoming: 0,
                    next: None,
                    state: CounterState::Planned
                }
            );
        }
        assert_eq!(next_counter_change(&activities, THRESHOLD, T), None);
        assert!(fired_reminders(&activities, THRESHOLD, Millis::MAX).is_empty());
    }

    #[test]
    fn a_done_planned_is_neither_counted_nor_lit() {
        let activity = done(planned(T - minutes(60)));
        assert_eq!(lights_at(&activity, THRESHOLD), None);
        let got = counter(
            &[activity, planned(T + minutes(60))],
            StageKind::Progress,
            THRESHOLD,
            T,
        );
        assert_eq!(
            (got.count, got.lit, got.state),
            (1, 0, CounterState::Planned)
        );
    }

    #[test]
    fn two_lit_and_one_incoming_is_due_with_incoming() {
        let activities = [
            planned(T - minutes(30)),
            planned(T + minutes(5)),
            planned(T + minutes(120)),
            incoming(None),
        ];
        let got = counter(&activities, StageKind::Progress, THRESHOLD, T);
        assert_eq!(
            got,
            Counter {
                count: 4,
                lit: 2,
                incoming: 1,
                next: Some(T - minutes(30)),
                state: CounterState::Due
            }
        );
    }

    #[test]
    fn next_is_the_earliest_open_deadline_over_incoming_and_planned() {
        let activities = [
            planned(T + minutes(90)),
            incoming(Some(T + minutes(40))),
            done(planned(T + minutes(10))),
            done(incoming(Some(T + minutes(20)))),
            incoming(None),
        ];
        let got = counter(&activities, StageKind::Progress, THRESHOLD, T);
        assert_eq!(got.next, Some(T + minutes(40)));

        let activities = [incoming(Some(T + minutes(90))), planned(T + minutes(40))];
        let got = counter(&activities, StageKind::Progress, THRESHOLD, T);
        assert_eq!(got.next, Some(T + minutes(40)));
    }

    #[test]
    fn a_card_walks_through_every_state() {
        let deadline = T + minutes(60);
        let call = planned(deadline);
        let stage = StageKind::Progress;
        // Nothing planned yet: unprocessed.
        assert_eq!(counter(&[], stage, THRESHOLD, T).state, CounterState::Idle);
        // A call is planned an hour ahead.
        let open = [call.clone()];
        assert_eq!(
            counter(&open, stage, THRESHOLD, T).state,
            CounterState::Planned
        );
        // The scheduler wakes when it lights, 15 minutes before.
        let wake = next_counter_change(&open, THRESHOLD, T);
        assert_eq!(wake, Some(deadline - minutes(THRESHOLD)));
        let wake = wake.unwrap_or(Millis::MAX);
        assert_eq!(
            counter(&open, stage, THRESHOLD, wake).state,
            CounterState::Due
        );
        // The client calls in meanwhile: still red, with the green mark.
        let with_incoming = [call.clone(), incoming(None)];
        let got = counter(&with_incoming, stage, THRESHOLD, wake);
        assert_eq!((got.state, got.incoming), (CounterState::Due, 1));
        // The call is made: the incoming is left.
        let after_call = [done(call.clone()), incoming(None)];
        let got = counter(&after_call, stage, THRESHOLD, wake);
        assert_eq!(got.state, CounterState::Incoming);
        // The incoming is handled: unprocessed again.
        let all_done = [done(call), done(incoming(None))];
        let got = counter(&all_done, stage, THRESHOLD, wake);
        assert_eq!(got.state, CounterState::Idle);
        // The deal is won: nothing to show.
        let got = counter(&all_done, StageKind::Success, THRESHOLD, wake);
        assert_eq!(got.state, CounterState::None);
    }

    // ---- next_counter_change ----

    #[test]
    fn next_change_is_the_earliest_future_lighting() {
        let activities = [
            planned(T + minutes(120)),                // lights at +105
            reminding(planned(T + minutes(120)), 90), // lights at +30
            planned(T - minutes(10)),                 // already lit
            incoming(Some(T + minutes(16))),          // never lights
            done(planned(T + minutes(20))),           // done: lights never
            reminding(planned(T + minutes(50)), 0),   // lights at +50
        ];
        assert_eq!(
            next_counter_change(&activities, THRESHOLD, T),
            Some(T + minutes(30))
        );
        assert_eq!(
            next_counter_change(&activities, THRESHOLD, T + minutes(30)),
            Some(T + minutes(50))
        );
        assert_eq!(
            next_counter_change(&activities, THRESHOLD, T + minutes(50)),
            Some(T + minutes(105))
        );
        assert_eq!(
            next_counter_change(&activities, THRESHOLD, T + minutes(105)),
            None
        );
    }

    #[test]
    fn next_change_is_strictly_after_now() {
        let activities = [planned(T + minutes(THRESHOLD))];
        assert_eq!(next_counter_change(&activities, THRESHOLD, T - 1), Some(T));
        assert_eq!(next_counter_change(&activities, THRESHOLD, T), None);
    }

    #[test]
    fn next_change_is_none_without_future_lighting() {
        assert_eq!(next_counter_change(&[], THRESHOLD, T), None);
        let activities = [
            incoming(Some(T + minutes(60))),
            done(planned(T + minutes(60))),
            planned(T - minutes(60)),
        ];
        assert_eq!(next_counter_change(&activities, THRESHOLD, T), None);
    }

    // ---- extremes ----

    #[test]
    fn absurd_deadlines_and_reminders_saturate() {
        let far_past = reminding(planned(Millis::MIN), i64::MAX);
        assert_eq!(lights_at(&far_past, THRESHOLD), Some(Millis::MIN));
        let far_future = planned(Millis::MAX);
        assert_eq!(
            lights_at(&far_future, THRESHOLD),
            Some(Millis::MAX - minutes(THRESHOLD))
        );
        let huge_reminder = reminding(planned(Millis::MAX), i64::MAX);
        // The reminder saturates at `Millis::MAX` milliseconds before the deadline.
        assert_eq!(lights_at(&huge_reminder, THRESHOLD), Some(0));
        assert_eq!(lights_at(&planned(0), i64::MAX), Some(-Millis::MAX));

        let activities = [
            far_past,
            far_future,
            huge_reminder,
            incoming(Some(Millis::MIN)),
        ];
        for now in [Millis::MIN, -1, 0, T, Millis::MAX] {
            for threshold in [i64::MIN, -1, 0, THRESHOLD, i64::MAX] {
                let got = counter(&activities, StageKind::Initial, threshold, now);
                assert_eq!(got.count, 4);
                assert_eq!(got.next, Some(Millis::MIN));
                let _ = next_counter_change(&activities, threshold, now);
                let fired = fired_reminders(&activities, threshold, now);
                assert_eq!(fired.len() as u32, got.lit);
            }
        }
        // Lit from the first representable instant: nothing left to wait for.
        assert_eq!(
            next_counter_change(&[planned(Millis::MIN)], THRESHOLD, Millis::MIN),
            None
        );
    }

    // ---- fired_reminders ----

    #[test]
    fn fired_reminders_lists_lit_planned_activities_at_their_lighting() {
        let activities = [
            owned_by(planned(T + minutes(60)), "later"), // lights at +45: not yet
            owned_by(planned(T + minutes(THRESHOLD)), "exact"), // lights at T
            owned_by(reminding(planned(T + minutes(30)), 40), "early"), // lights at -10
            owned_by(done(planned(T - minutes(5))), "done"),
            owned_by(incoming(Some(T - minutes(5))), "incoming"),
            owned_by(
                ActivityFacts {
                    deadline: None,
                    ..planned(T)
                },
                "no-deadline",
            ),
        ];
        assert_eq!(
            fired_reminders(&activities, THRESHOLD, T),
            vec![
                event(T - minutes(10), "early", AvatarReason::Reminder),
                event(T, "exact", AvatarReason::Reminder),
            ]
        );
        assert_eq!(
            fired_reminders(&activities, THRESHOLD, T - minutes(10) - 1),
            vec![]
        );
    }

    #[test]
    fn fired_reminders_do_not_depend_on_activity_order() {
        let activities = vec![
            owned_by(planned(T), "zoe"),
            owned_by(planned(T - minutes(5)), "bob"),
            owned_by(planned(T), "amy"),
        ];
        let mut reversed = activities.clone();
        reversed.reverse();
        let expected = vec![
            event(T - minutes(20), "bob", AvatarReason::Reminder),
            event(T - minutes(15), "amy", AvatarReason::Reminder),
            event(T - minutes(15), "zoe", AvatarReason::Reminder),
        ];
        assert_eq!(fired_reminders(&activities, THRESHOLD, T), expected);
        assert_eq!(fired_reminders(&reversed, THRESHOLD, T), expected);
        // Of two reminders at one instant, the greatest user id shows.
        let shown = avatar("manager", 0, &fired_reminders(&reversed, THRESHOLD, T));
        assert_eq!(shown.user, "zoe");
    }

    // ---- avatar ----

    #[test]
    fn avatar_without_events_is_the_responsible() {
        assert_eq!(
            avatar("manager", T, &[]),
            Avatar {
                user: "manager".into(),
                at: T,
                reason: AvatarReason::Responsible
            }
        );
    }

    #[test]
    fn a_later_event_takes_the_avatar() {
        let events = [event(T + 1, "colleague", AvatarReason::Comment)];
        assert_eq!(
            avatar("manager", T, &events),
            Avatar {
                user: "colleague".into(),
                at: T + 1,
                reason: AvatarReason::Comment
            }
        );
    }

    #[test]
    fn an_event_at_the_responsible_change_wins_the_tie() {
        let events = [event(T, "caller", AvatarReason::Call)];
        let got = avatar("manager", T, &events);
        assert_eq!(
            (got.user.as_str(), got.reason),
            ("caller", AvatarReason::Call)
        );
    }

    #[test]
    fn a_responsible_change_after_the_events_takes_the_avatar_back() {
        let events = [
            event(T - 20, "colleague", AvatarReason::Comment),
            event(T - 10, "support", AvatarReason::Chat),
        ];
        assert_eq!(
            avatar("new-manager", T, &events),
            Avatar {
                user: "new-manager".into(),
                at: T,
                reason: AvatarReason::Responsible
            }
        );
    }

    #[test]
    fn the_latest_event_wins_whatever_the_slice_order() {
        let events = [
            event(T + 30, "emailer", AvatarReason::Email),
            event(T + 50, "reminded", AvatarReason::Reminder),
            event(T + 10, "commenter", AvatarReason::Comment),
        ];
        let got = avatar("manager", T, &events);
        assert_eq!(
            got,
            Avatar {
                user: "reminded".into(),
                at: T + 50,
                reason: AvatarReason::Reminder
            }
        );
    }

    #[test]
    fn of_events_at_one_instant_the_later_in_the_slice_wins() {
        let events = [
            event(T + 5, "first", AvatarReason::Comment),
            event(T + 5, "second", AvatarReason::Chat),
            event(T + 1, "earlier", AvatarReason::Call),
        ];
        let got = avatar("manager", T, &events);
        assert_eq!(
            (got.user.as_str(), got.reason),
            ("second", AvatarReason::Chat)
        );
    }

    #[test]
    fn avatar_handles_extreme_instants() {
        let events = [
            event(Millis::MIN, "oldest", AvatarReason::Comment),
            event(Millis::MAX, "newest", AvatarReason::Chat),
        ];
        assert_eq!(avatar("manager", Millis::MAX, &events).user, "newest");
        assert_eq!(avatar("manager", Millis::MIN, &events[..1]).user, "oldest");
    }

    #[test]
    fn a_fired_reminder_moves_the_avatar_to_the_activity_responsible() {
        let activities = [owned_by(planned(T + minutes(60)), "assistant")];
        let lights = T + minutes(60 - THRESHOLD);
        let before = fired_reminders(&activities, THRESHOLD, lights - 1);
        assert_eq!(avatar("manager", T, &before).user, "manager");
        let after = fired_reminders(&activities, THRESHOLD, lights);
        assert_eq!(
            avatar("manager", T, &after),
            Avatar {
                user: "assistant".into(),
                at: lights,
                reason: AvatarReason::Reminder
            }
        );
    }

    // ---- stored names ----

    #[test]
    fn stored_names_round_trip() {
        for direction in [Direction::Incoming, Direction::Outgoing] {
            assert_eq!(Direction::parse(direction.as_str()), Ok(direction));
            assert_eq!(direction.as_str().parse::<Direction>(), Ok(direction));
        }
        for state in [
            CounterState::Due,
            CounterState::Incoming,
            CounterState::Planned,
            CounterState::Idle,
            CounterState::None,
        ] {
            assert_eq!(CounterState::parse(state.as_str()), Ok(state));
            assert_eq!(state.as_str().parse::<CounterState>(), Ok(state));
        }
        for reason in [
            AvatarReason::Responsible,
            AvatarReason::Comment,
            AvatarReason::Call,
            AvatarReason::Email,
            AvatarReason::Chat,
            AvatarReason::Reminder,
        ] {
            assert_eq!(AvatarReason::parse(reason.as_str()), Ok(reason));
            assert_eq!(reason.as_str().parse::<AvatarReason>(), Ok(reason));
        }
        assert_eq!(Direction::Incoming.as_str(), "incoming");
        assert_eq!(CounterState::Due.as_str(), "due");
        assert_eq!(AvatarReason::Email.as_str(), "email");
    }

    #[test]
    fn unknown_stored_names_are_errors_that_say_what_to_use() {
        let error = Direction::parse("Incoming").err();
        assert_eq!(
            error.map(|error| error.to_string()).as_deref(),
            Some("unknown direction \"Incoming\": use incoming or outgoing")
        );
        assert!(CounterState::parse("").is_err());
        assert!(CounterState::parse("lit").is_err());
        assert!(AvatarReason::parse("missed").is_err());
    }

    // ---- properties, over generated cards ----

    /// A small deterministic generator (xorshift64*), so the property checks need no dependency
    /// and a failure names the seed that reproduces it.
    struct Generator(u64);

    impl Generator {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }

        /// Mostly instants near `T`, sometimes an extreme one.
        fn instant(&mut self) -> Millis {
            match self.below(10) {
                0 => Millis::MIN,
                1 => Millis::MAX,
                2 => self.next() as i64,
                _ => T + (self.below(240) as i64 - 120) * MINUTE_MS + self.below(3) as i64 - 1,
            }
        }

        fn minutes(&mut self) -> i64 {
            match self.below(8) {
                0 => i64::MIN,
                1 => i64::MAX,
                2 => -(self.below(30) as i64),
                _ => self.below(90) as i64,
            }
        }

        fn activity(&mut self) -> ActivityFacts {
            ActivityFacts {
                deadline: (self.below(5) != 0).then(|| self.instant()),
                remind_min: (self.below(2) == 0).then(|| self.minutes()),
                direction: if self.below(3) == 0 {
                    Direction::Incoming
                } else {
                    Direction::Outgoing
                },
                done: self.below(4) == 0,
                responsible: format!("user-{}", self.below(4)),
            }
        }

        fn activities(&mut self) -> Vec<ActivityFacts> {
            let count = self.below(7);
            (0..count).map(|_| self.activity()).collect()
        }

        fn stage(&mut self) -> StageKind {
            ALL_STAGES[self.below(4) as usize]
        }
    }

    const CASES: u64 = 4_000;

    #[test]
    fn property_counter_fields_agree_with_each_other() {
        for seed in 1..=CASES {
            let mut generator = Generator(seed);
            let activities = generator.activities();
            let stage = generator.stage();
            let threshold = generator.minutes();
            let now = generator.instant();
            let got = counter(&activities, stage, threshold, now);
            let open = activities.iter().filter(|activity| !activity.done).count() as u32;
            assert_eq!(got.count, open, "seed {seed}");
            assert!(got.incoming <= got.count, "seed {seed}");
            assert!(got.lit <= got.count - got.incoming, "seed {seed}");
            let expected = if got.lit > 0 {
                CounterState::Due
            } else if got.incoming > 0 {
                CounterState::Incoming
            } else if got.count > 0 {
                CounterState::Planned
            } else if matches!(stage, StageKind::Initial | StageKind::Progress) {
                CounterState::Idle
            } else {
                CounterState::None
            };
            assert_eq!(got.state, expected, "seed {seed}");
            let fired = fired_reminders(&activities, threshold, now);
            assert_eq!(fired.len() as u32, got.lit, "seed {seed}");
            assert!(fired.iter().all(|event| event.at <= now), "seed {seed}");
        }
    }

    #[test]
    fn property_the_counter_holds_until_the_next_change_and_changes_there() {
        for seed in 1..=CASES {
            let mut generator = Generator(seed);
            let activities = generator.activities();
            let stage = generator.stage();
            let threshold = generator.minutes();
            let now = generator.instant();
            let current = counter(&activities, stage, threshold, now);
            match next_counter_change(&activities, threshold, now) {
                None => {
                    let last = counter(&activities, stage, threshold, Millis::MAX);
                    assert_eq!(last, current, "seed {seed}");
                }
                Some(change) => {
                    assert!(change > now, "seed {seed}");
                    let just_before = counter(&activities, stage, threshold, change - 1);
                    assert_eq!(just_before, current, "seed {seed}");
                    // In i128: `change - now` can exceed `Millis::MAX`.
                    let midway = ((i128::from(now) + i128::from(change)) / 2) as Millis;
                    let midway = counter(&activities, stage, threshold, midway);
                    assert_eq!(midway, current, "seed {seed}");
                    let after = counter(&activities, stage, threshold, change);
                    assert!(after.lit > current.lit, "seed {seed}");
                    assert_eq!(after.state, CounterState::Due, "seed {seed}");
                }
            }
        }
    }

    #[test]
    fn property_the_avatar_is_the_last_candidate_with_the_greatest_instant() {
        for seed in 1..=CASES {
            let mut generator = Generator(seed);
            let since = generator.instant();
            let count = generator.below(5);
            let reasons = [
                AvatarReason::Comment,
                AvatarReason::Call,
                AvatarReason::Email,
                AvatarReason::Chat,
                AvatarReason::Reminder,
            ];
            let events: Vec<AvatarEvent> = (0..count)
                .map(|index| {
                    // Few distinct instants, so that ties are common.
                    let at = if generator.below(2) == 0 {
                        since
                    } else {
                        generator.instant()
                    };
                    event(
                        at,
                        &format!("user-{index}"),
                        reasons[generator.below(5) as usize],
                    )
                })
                .collect();
            let got = avatar("manager", since, &events);
            let latest = events.iter().map(|event| event.at).fold(since, Millis::max);
            assert_eq!(got.at, latest, "seed {seed}");
            match events.iter().rposition(|event| event.at == latest) {
                Some(index) => {
                    assert_eq!(got.user, events[index].user, "seed {seed}");
                    assert_eq!(got.reason, events[index].reason, "seed {seed}");
                }
                None => {
                    assert_eq!(got.user, "manager", "seed {seed}");
                    assert_eq!(got.reason, AvatarReason::Responsible, "seed {seed}");
                }
            }
        }
    }
}
