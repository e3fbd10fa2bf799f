//! Dense integer ids: every external id (contact, product, order, campaign) is read once into a
//! `u32` index that all later stages share, so features, models and scores are plain arrays.

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// Marks "no id" in `u32` id columns (e.g. a web event without a product).
pub const NONE: u32 = u32::MAX;

/// Reads an external id into its canonical text: trimmed, and `17850.0` read as `17850`, so that
/// integer ids exported through a float column match the same ids elsewhere. Empty means null,
/// and so do the spellings of a missing value that exporters write as text ([`NULL_SPELLINGS`],
/// any case: pandas' `astype(str)` turns a missing float id into `nan`), which would otherwise
/// become one contact holding every row without an id.
pub fn canonical_id(raw: &str) -> Option<Cow<'_, str>> {
    let s = raw.trim();
    if s.is_empty() || is_null_spelling(s) {
        return None;
    }
    if let Some((whole, frac)) = s.split_once('.') {
        let integral = !whole.is_empty()
            && whole
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
            && frac.bytes().all(|b| b == b'0');
        if integral {
            return Some(Cow::Borrowed(whole));
        }
    }
    Some(Cow::Borrowed(s))
}

/// Text that means "no id" (compared without case).
pub const NULL_SPELLINGS: [&str; 4] = ["nan", "null", "none", "n/a"];

/// Whether `s` (trimmed) is one of the [`NULL_SPELLINGS`].
pub(crate) fn is_null_spelling(s: &str) -> bool {
    NULL_SPELLINGS.iter().any(|n| s.eq_ignore_ascii_case(n))
}

/// A two-way map between external ids and dense indexes `0..len`, in first-seen order.
#[derive(Debug, Default, Clone)]
pub struct IdIndex {
    /// Each id is allocated once and shared by `names` and `index`.
    names: Vec<Arc<str>>,
    index: FxHashMap<Arc<str>, u32>,
    /// The id looked up last: exports often repeat one id on consecutive rows.
    last: Option<u32>,
}

impl IdIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty index with room for `n` ids (no rehashing while they are added).
    pub fn with_capacity(n: usize) -> Self {
        Self {
            names: Vec::with_capacity(n),
            index: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            last: None,
        }
    }

    /// The dense index of `id`, adding it if new. `id` must already be canonical.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(i) = self.last
            && *self.names[i as usize] == *id
        {
            return i;
        }
        let i = self.intern_uncached(id);
        self.last = Some(i);
        i
    }

    fn intern_uncached(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(NONE - 1);
        let name: Arc<str> = Arc::from(id);
        self.names.push(name.clone());
        self.index.insert(name, i);
        i
    }

    /// The dense index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The external id of a dense index.
    pub fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", |s| s)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no id was added.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// External ids in dense order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.names.iter().map(|s| &**s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_looking_ids_are_integers() {
        assert_eq!(canonical_id(" 17850.0 ").as_deref(), Some("17850"));
        assert_eq!(canonical_id("17850").as_deref(), Some("17850"));
        assert_eq!(canonical_id("-3.00").as_deref(), Some("-3"));
        assert_eq!(canonical_id("85123A").as_deref(), Some("85123A"));
        assert_eq!(canonical_id("1.5").as_deref(), Some("1.5"));
        assert_eq!(canonical_id("  "), None);
        for missing in ["nan", "NaN", " NULL ", "None", "N/A"] {
            assert_eq!(canonical_id(missing), None, "{missing}");
        }
        assert_eq!(canonical_id("nana").as_deref(), Some("nana"));
    }

    #[test]
    fn interning_is_dense_and_stable() {
        let mut ids = IdIndex::new();
        assert_eq!(ids.intern("b"), 0);
        assert_eq!(ids.intern("a"), 1);
        assert_eq!(ids.intern("b"), 0);
        assert_eq!(ids.name(1), "a");
        assert_eq!(ids.get("c"), None);
        assert_eq!(ids.len(), 2);
    }
}
