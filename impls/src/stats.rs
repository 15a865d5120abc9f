//! What a walk reports: [`WalkStats`] (and, for aging, [`AgeStats`]), and
//! why an optimistic walk started over ([`RestartReason`]).

/// Why a lockless walk started over, or a seqlock walk retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RestartReason {
    /// A `more` link was 0: the descriptor was being initialised (seed 3.b).
    DescInit,
    /// The walk ended on the nulls marker of another rmap (seed 3.c.2).
    ForeignNulls,
    /// `lockless-gen`: a descriptor's sequence count was odd or moved while
    /// its slots and `more` link were read.
    DescSeq,
    /// `seqlock`: the rmap's sequence count was odd or moved.
    RmapSeq,
    /// A walker with the `stale-head-restart` bug gave up after too many
    /// restarts from the same stale head (only that bug can loop forever).
    Limit,
    /// A weaker repair's walker (the model checker's only) found the head
    /// changed when it reached its own nulls.
    HeadMoved,
}

impl RestartReason {
    pub const ALL: [RestartReason; RestartReason::COUNT] = [
        RestartReason::DescInit,
        RestartReason::ForeignNulls,
        RestartReason::DescSeq,
        RestartReason::RmapSeq,
        RestartReason::Limit,
        RestartReason::HeadMoved,
    ];

    /// How many reasons there are.
    pub const COUNT: usize = 6;

    pub fn name(self) -> &'static str {
        match self {
            RestartReason::DescInit => "desc-init",
            RestartReason::ForeignNulls => "foreign-nulls",
            RestartReason::DescSeq => "desc-seq",
            RestartReason::RmapSeq => "rmap-seq",
            RestartReason::Limit => "restart-limit",
            RestartReason::HeadMoved => "head-moved",
        }
    }
}

/// What one walk (or a batch of walks) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Rmaps walked (gfns).
    pub walks: u64,
    /// spte references visited, counting revisits after a restart.
    pub visited: u64,
    /// sptes whose W bit this walk cleared.
    pub protected: u64,
    /// Restarts (retries for `seqlock`), indexed like [`RestartReason::ALL`].
    pub restarts: [u64; RestartReason::COUNT],
}

impl WalkStats {
    /// The stats of one walk that has visited nothing yet.
    pub fn one_walk() -> Self {
        WalkStats {
            walks: 1,
            ..WalkStats::default()
        }
    }

    #[inline]
    pub fn restart(&mut self, why: RestartReason) {
        self.restarts[why as usize] += 1;
    }

    pub fn total_restarts(&self) -> u64 {
        self.restarts.iter().sum()
    }

    pub fn add(&mut self, other: &WalkStats) {
        self.walks += other.walks;
        self.visited += other.visited;
        self.protected += other.protected;
        for (a, b) in self.restarts.iter_mut().zip(other.restarts.iter()) {
            *a += b;
        }
    }
}

/// What an aging call ([`crate::Rmap::age`]) did: its walks, one per gfn of
/// the range, and the sptes whose Accessed bit it found set and cleared.
/// Kept apart from [`WalkStats`] so that the write-protect path, which has no
/// use for the count, does not carry it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgeStats {
    pub walk: WalkStats,
    /// sptes found young (Accessed set), and cleared.
    pub young: u64,
}

impl AgeStats {
    pub fn add(&mut self, other: &AgeStats) {
        self.walk.add(&other.walk);
        self.young += other.young;
    }
}
