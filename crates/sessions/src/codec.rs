//! A session as bytes, for a store outside the process (Redis): a fixed little-endian layout
//! with a version byte, about 90 bytes for a session with no states and no waiting calls.
//! The player and SDK labels are numbers of the process that made them, so the bytes carry
//! their names (at most 255 bytes each) and the reader maps them to its own numbers.
//! [`decode`] checks every length: bytes that are not a session (another version, a truncated
//! value) decode to `None`, and the caller treats the session as unknown.

use crate::observation::{Content, Kind};
use crate::session::{Closed, Pending, Session, States, MAX_STATES};

const VERSION: u8 = 2;
/// The layout before label names: read still (labels unknown), so that sessions stored by an
/// older replica stay judged across an upgrade.
const VERSION_1: u8 = 1;

/// `s` as bytes, with `names` the names of its player and SDK labels.
pub fn encode(s: &Session, names: [&str; 2]) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + s.pending.len() * 21);
    out.push(VERSION);
    for v in [s.started_ms, s.last_call_ms, s.moved_ms, s.closed_ms] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [s.last_ts, s.close_ts, s.last_ping_ts, s.last_beat_ts] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&s.playhead.to_le_bytes());
    out.extend_from_slice(&s.length.to_le_bytes());
    out.extend_from_slice(&s.events.to_le_bytes());
    out.extend_from_slice(&[s.content as u8, s.flags, s.closed as u8]);
    for name in names {
        let name = &name.as_bytes()[..name.len().min(255)];
        out.push(name.len() as u8);
        out.extend_from_slice(name);
    }
    match &s.states {
        None => out.push(0),
        Some(st) => {
            out.push(st.names.len() as u8);
            for n in &st.names {
                out.extend_from_slice(&n.to_le_bytes());
            }
            out.extend_from_slice(&st.open.to_le_bytes());
        }
    }
    out.push(s.pending.len().min(255) as u8);
    for p in s.pending.iter().take(255) {
        out.extend_from_slice(&p.ts.to_le_bytes());
        out.extend_from_slice(&p.arrival_ms.to_le_bytes());
        out.push(p.kind as u8);
        out.extend_from_slice(&p.state.to_le_bytes());
    }
    out
}

/// Reads what [`encode`] wrote; `label(0, name)` is the reader's number of a player name,
/// `label(1, name)` of an SDK name.
pub fn decode(bytes: &[u8], label: &dyn Fn(usize, &str) -> u16) -> Option<Session> {
    let mut r = Reader(bytes);
    let version = r.u8()?;
    if version != VERSION && version != VERSION_1 {
        return None;
    }
    let (started_ms, last_call_ms, moved_ms, closed_ms) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let (last_ts, close_ts, last_ping_ts, last_beat_ts) = (r.i64()?, r.i64()?, r.i64()?, r.i64()?);
    let playhead = f32::from_bits(r.u32()?);
    let length = f32::from_bits(r.u32()?);
    let events = r.u32()?;
    let (content, flags, closed) = (r.u8()?, r.u8()?, r.u8()?);
    let mut names = [0u16; 2];
    for (which, id) in names.iter_mut().enumerate() {
        *id = match version {
            VERSION_1 => {
                r.u16()?;
                label(which, "")
            }
            _ => {
                let n = usize::from(r.u8()?);
                let name = std::str::from_utf8(r.bytes(n)?).ok()?;
                label(which, name)
            }
        };
    }
    let [player, sdk] = names;
    let states = match r.u8()? {
        0 => None,
        n if usize::from(n) <= MAX_STATES => {
            let names = (0..n).map(|_| r.u32()).collect::<Option<Vec<u32>>>()?;
            Some(Box::new(States {
                names,
                open: r.u16()?,
            }))
        }
        _ => return None,
    };
    let waiting = r.u8()?;
    let pending = (0..waiting)
        .map(|_| {
            Some(Pending {
                ts: r.i64()?,
                arrival_ms: r.u64()?,
                kind: Kind::from_u8(r.u8()?),
                state: r.u32()?,
            })
        })
        .collect::<Option<Vec<Pending>>>()?
        .into();
    if !r.0.is_empty() {
        return None;
    }
    Some(Session {
        started_ms,
        last_call_ms,
        moved_ms,
        closed_ms,
        last_ts,
        close_ts,
        last_ping_ts,
        last_beat_ts,
        playhead,
        length,
        events,
        content: Content::from_u8(content),
        flags,
        closed: Closed::from_u8(closed),
        player,
        sdk,
        states,
        pending,
    })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
}
