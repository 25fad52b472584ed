//! The SHA-NI mining kernel: two nonces hashed side by side with the x86 SHA extensions.
//!
//! Per nonce it runs the tail compression from round 8 (rounds 0–7 only see the template's
//! constant words, so they run once per scan) and the full second compression. The two nonces'
//! rounds alternate instruction by instruction: each `sha256rnds2` waits for the previous one of
//! its own hash, and the other lane's fills that latency.
//!
//! The SHA-NI state layout: one register holds words A, B, E, F (lanes 3 to 0), another C, D, G, H;
//! `sha256rnds2(cdgh, abef, wk)` does two rounds and returns the new ABEF, and the old ABEF becomes
//! the new CDGH. Message registers hold four schedule words, the earliest in lane 0.

// The intrinsics are only callable where the `sha` and `sse4.1` target features are enabled, and
// entering such a function from ordinary code is `unsafe`. This module is the one place in the
// crate that does so, once, behind a run-time CPU check.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_cvtsi128_si64, _mm_extract_epi32, _mm_set_epi32,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
    _mm_unpackhi_epi64, _mm_unpacklo_epi64,
};
use std::ops::Range;

use super::threshold::Threshold;
use crate::pow::midstate::{HeaderMidstate, SHA256_IV};

/// Proof that this CPU has the SHA and SSE4.1 extensions: only [`ShaNi::detect`] makes one, so
/// holding one is what makes calling the kernel sound.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShaNi(());

impl ShaNi {
    /// `Some` if the CPU supports the kernel.
    pub(super) fn detect() -> Option<ShaNi> {
        (is_x86_feature_detected!("sha") && is_x86_feature_detected!("sse4.1")).then_some(ShaNi(()))
    }

    /// The first nonce in `nonces` whose hash meets `threshold`, with its state words.
    pub(super) fn scan(
        self,
        midstate: &HeaderMidstate,
        threshold: &Threshold,
        nonces: Range<u64>,
    ) -> Option<(u64, [u32; 8])> {
        // SAFETY: `scan_pairs` needs the `sha` and `sse4.1` features and nothing else; a `ShaNi`
        // exists only if `detect` found both on this CPU at run time.
        unsafe { scan_pairs(midstate, threshold, nonces) }
    }
}

/// SHA-256 round constants (FIPS 180-4, 4.2.2).
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// A SHA-256 state in the SHA-NI layout.
#[derive(Clone, Copy)]
struct State {
    abef: __m128i,
    cdgh: __m128i,
}

/// Message words of one 64-byte block for both lanes, as four groups of four.
type Schedule = [[__m128i; 4]; 2];

/// What every nonce of one scan shares.
struct Template {
    /// State after the prefix: added back at the end of the tail compression.
    prefix: State,
    /// State after rounds 0–7 of the tail compression.
    after_eight_rounds: State,
    /// The tail block's message words; group 2 holds zeros where the nonce goes.
    tail: [__m128i; 4],
    /// Tail words 10 and 11 (padding), which share group 2 with the nonce.
    tail_words_10_11: (u32, u32),
    /// The initial state of the second SHA-256.
    iv: State,
}

/// Four message words, the first in lane 0.
#[target_feature(enable = "sha,sse4.1")]
fn message(w0: u32, w1: u32, w2: u32, w3: u32) -> __m128i {
    _mm_set_epi32(w3 as i32, w2 as i32, w1 as i32, w0 as i32)
}

/// A state given as the words A to H, in the SHA-NI layout.
#[target_feature(enable = "sha,sse4.1")]
fn state_from_words(w: &[u32; 8]) -> State {
    State {
        abef: _mm_set_epi32(w[0] as i32, w[1] as i32, w[4] as i32, w[5] as i32),
        cdgh: _mm_set_epi32(w[2] as i32, w[3] as i32, w[6] as i32, w[7] as i32),
    }
}

/// The words A to H of a state (the block id's words, for a finished second hash).
#[target_feature(enable = "sha,sse4.1")]
fn words_from_state(s: State) -> [u32; 8] {
    [
        _mm_extract_epi32::<3>(s.abef) as u32,
        _mm_extract_epi32::<2>(s.abef) as u32,
        _mm_extract_epi32::<3>(s.cdgh) as u32,
        _mm_extract_epi32::<2>(s.cdgh) as u32,
        _mm_extract_epi32::<1>(s.abef) as u32,
        _mm_extract_epi32::<0>(s.abef) as u32,
        _mm_extract_epi32::<1>(s.cdgh) as u32,
        _mm_extract_epi32::<0>(s.cdgh) as u32,
    ]
}

/// Word-wise sum: the feed-forward that ends each compression.
#[target_feature(enable = "sha,sse4.1")]
fn add_states(a: State, b: State) -> State {
    State {
        abef: _mm_add_epi32(a.abef, b.abef),
        cdgh: _mm_add_epi32(a.cdgh, b.cdgh),
    }
}

/// The hash's most significant 64 bits as a number (see `threshold::top_limb`): words G and H,
/// which sit in lanes 1 and 0 of CDGH, byte-reversed as one 64-bit value.
#[target_feature(enable = "sha,sse4.1")]
fn top_limb(s: State) -> u64 {
    (_mm_cvtsi128_si64(s.cdgh) as u64).swap_bytes()
}

/// Rounds 4g to 4g+3 on both lanes, first extending the schedule by group `g` if g ≥ 4.
#[inline]
#[target_feature(enable = "sha,sse4.1")]
fn four_rounds(state: &mut [State; 2], schedule: &mut Schedule, g: usize) {
    let k = message(K[4 * g], K[4 * g + 1], K[4 * g + 2], K[4 * g + 3]);
    for (s, w) in state.iter_mut().zip(schedule.iter_mut()) {
        if g >= 4 {
            // W[4g..4g+4] from the previous sixteen words, which the four slots hold, oldest in
            // slot g % 4: σ0 terms by msg1, W[i−7] by the byte shift, σ1 terms by msg2.
            let oldest = w[g % 4];
            let older = w[(g + 1) % 4];
            let newer = w[(g + 2) % 4];
            let newest = w[(g + 3) % 4];
            let partial = _mm_add_epi32(
                _mm_sha256msg1_epu32(oldest, older),
                _mm_alignr_epi8::<4>(newest, newer),
            );
            w[g % 4] = _mm_sha256msg2_epu32(partial, newest);
        }
        let wk = _mm_add_epi32(w[g % 4], k);
        let after_two = _mm_sha256rnds2_epu32(s.cdgh, s.abef, wk);
        let after_four = _mm_sha256rnds2_epu32(s.abef, after_two, _mm_shuffle_epi32::<0x0e>(wk));
        s.cdgh = after_two;
        s.abef = after_four;
    }
}

/// Runs the listed four-round groups on both lanes, unrolled: with each group number a literal,
/// the schedule's slot indices are constants and the whole schedule stays in registers (a loop
/// would keep it in memory and compute the slots at run time).
macro_rules! groups {
    ($state:expr, $schedule:expr, $($g:literal)+) => {
        $(four_rounds($state, $schedule, $g);)+
    };
}

/// The per-scan constants, including rounds 0–7 of the tail compression.
#[target_feature(enable = "sha,sse4.1")]
fn prepare(midstate: &HeaderMidstate) -> Template {
    let w = midstate.tail_words();
    let prefix = state_from_words(&midstate.prefix_state());
    let tail = [
        message(w[0], w[1], w[2], w[3]),
        message(w[4], w[5], w[6], w[7]),
        message(w[8], w[9], w[10], w[11]),
        message(w[12], w[13], w[14], w[15]),
    ];
    let mut state = [prefix; 2];
    let mut schedule = [tail; 2];
    groups!(&mut state, &mut schedule, 0 1);
    Template {
        prefix,
        after_eight_rounds: state[0],
        tail,
        tail_words_10_11: (w[10], w[11]),
        iv: state_from_words(&SHA256_IV),
    }
}

/// The second-digest states of the template with two nonces.
#[inline]
#[target_feature(enable = "sha,sse4.1")]
fn hash_pair(t: &Template, nonces: [u64; 2]) -> [State; 2] {
    // The nonce is bytes 32..40 of the tail block, little-endian: message words 8 and 9 are its
    // halves byte-reversed.
    let nonce_group = |nonce: u64| {
        message(
            (nonce as u32).swap_bytes(),
            ((nonce >> 32) as u32).swap_bytes(),
            t.tail_words_10_11.0,
            t.tail_words_10_11.1,
        )
    };
    let mut state = [t.after_eight_rounds; 2];
    let mut schedule = [
        [t.tail[0], t.tail[1], nonce_group(nonces[0]), t.tail[3]],
        [t.tail[0], t.tail[1], nonce_group(nonces[1]), t.tail[3]],
    ];
    groups!(&mut state, &mut schedule, 2 3 4 5 6 7 8 9 10 11 12 13 14 15);

    // The second SHA-256 hashes the 32-byte digest: words A..D, then E..H, then padding.
    let digest_groups = |s: State| {
        let digest = add_states(s, t.prefix);
        [
            _mm_shuffle_epi32::<0x1b>(_mm_unpackhi_epi64(digest.cdgh, digest.abef)),
            _mm_shuffle_epi32::<0x1b>(_mm_unpacklo_epi64(digest.cdgh, digest.abef)),
            message(0x8000_0000, 0, 0, 0),
            message(0, 0, 0, 256),
        ]
    };
    let mut schedule = [digest_groups(state[0]), digest_groups(state[1])];
    let mut state = [t.iv; 2];
    groups!(&mut state, &mut schedule, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    [add_states(state[0], t.iv), add_states(state[1], t.iv)]
}

/// The first nonce in `nonces` whose hash meets `threshold`, two nonces per step.
#[target_feature(enable = "sha,sse4.1")]
fn scan_pairs(
    midstate: &HeaderMidstate,
    threshold: &Threshold,
    nonces: Range<u64>,
) -> Option<(u64, [u32; 8])> {
    let template = prepare(midstate);
    let top = threshold.top();
    let mut nonce = nonces.start;
    while nonce < nonces.end {
        // An odd last nonce runs in both lanes; the duplicate cannot change the answer.
        let second = if nonces.end - nonce >= 2 {
            nonce + 1
        } else {
            nonce
        };
        let states = hash_pair(&template, [nonce, second]);
        for (candidate, state) in [nonce, second].into_iter().zip(states) {
            if top_limb(state) <= top {
                let words = words_from_state(state);
                if threshold.is_met_by(&words) {
                    return Some((candidate, words));
                }
            }
        }
        nonce = second + 1;
    }
    None
}
