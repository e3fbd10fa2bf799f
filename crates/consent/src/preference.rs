//! One contact's choices and what they allow: unsubscribed from everything, topics turned off,
//! at most one message a week or a month, a pause. They act at the moment a message is planned
//! and again when it is sent, like an unsubscribe and a frequency cap do.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// At most one message per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// At most one a week.
    Weekly,
    /// At most one a month (30 days).
    Monthly,
}

impl Frequency {
    /// The shortest gap between two messages, in seconds.
    pub fn gap_seconds(self) -> i64 {
        match self {
            Self::Weekly => 7 * 86_400,
            Self::Monthly => 30 * 86_400,
        }
    }

    /// The form's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }

    /// Reads the form's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }
}

/// What a contact chose. The default allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preference {
    /// Unsubscribed from everything at (Unix seconds).
    pub unsubscribed_at: Option<i64>,
    /// Topics turned off.
    pub topics_off: BTreeSet<String>,
    /// At most one message per period.
    pub frequency: Option<Frequency>,
    /// No message before (Unix seconds).
    pub paused_until: Option<i64>,
}

/// Why a contact's own choice stops a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Unsubscribed from everything.
    Unsubscribed,
    /// Turned this message's topic off.
    TopicOff,
    /// Paused until after the send instant.
    Paused,
    /// Another message lies within the chosen frequency's gap.
    Frequency,
}

impl Block {
    /// Name used in the outbox and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unsubscribed => "unsubscribed",
            Self::TopicOff => "topic_opt_out",
            Self::Paused => "paused",
            Self::Frequency => "frequency_choice",
        }
    }
}

impl Preference {
    /// Whether a message of `topic` sent at `at` (Unix seconds) is stopped, given the instants
    /// of the contact's other messages (planned or sent, of any campaign or series).
    pub fn blocks(
        &self,
        topic: Option<&str>,
        at: i64,
        others: impl IntoIterator<Item = i64>,
    ) -> Option<Block> {
        if self.unsubscribed_at.is_some() {
            return Some(Block::Unsubscribed);
        }
        if topic.is_some_and(|t| self.topics_off.contains(t)) {
            return Some(Block::TopicOff);
        }
        if self.paused_until.is_some_and(|until| at < until) {
            return Some(Block::Paused);
        }
        let gap = self.frequency?.gap_seconds();
        others
            .into_iter()
            .any(|o| (o - at).abs() < gap)
            .then_some(Block::Frequency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_choice_stops_what_it_names_and_nothing_else() {
        let day = 86_400;
        let mut p = Preference::default();
        assert_eq!(p.blocks(Some("offers"), 0, [1]), None);
        p.topics_off.insert("offers".into());
        assert_eq!(p.blocks(Some("offers"), 0, []), Some(Block::TopicOff));
        assert_eq!(p.blocks(Some("news"), 0, []), None);
        assert_eq!(p.blocks(None, 0, []), None);
        p.paused_until = Some(30 * day);
        assert_eq!(p.blocks(None, 29 * day, []), Some(Block::Paused));
        assert_eq!(p.blocks(None, 30 * day, []), None);
        p.frequency = Some(Frequency::Weekly);
        assert_eq!(p.blocks(None, 40 * day, [34 * day]), Some(Block::Frequency));
        assert_eq!(p.blocks(None, 40 * day, [33 * day]), None);
        p.unsubscribed_at = Some(0);
        assert_eq!(
            p.blocks(Some("news"), 90 * day, []),
            Some(Block::Unsubscribed)
        );
    }
}
