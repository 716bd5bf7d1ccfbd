//! The envelope reader against serde_json on realistic frames with random damage, by the
//! fuzz target's check ([`fuzz_bodies::check_envelope`]): valid JSON is always read, and to
//! the same `op`, `s`, `t` and `d` as serde_json; what the reader accepts is valid JSON
//! except inside object and array values, which are delimited as the reader promises. The
//! lenient reader of the error path reads what the strict one accepts alike, and never
//! returns a `d` it did not delimit ([`fuzz_bodies::check_salvage`]).

#[path = "../benches/support/frames.rs"]
mod frames;
#[path = "support/fuzz_bodies.rs"]
mod fuzz_bodies;

use std::sync::OnceLock;

use discord_gateway_proto::protocol::envelope::read_envelope;
use frames::{render, FrameGen, KeyOrder, SEED};
use proptest::prelude::*;

fn pool() -> &'static [String] {
    static POOL: OnceLock<Vec<String>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut g = FrameGen::new(SEED);
        let mut frames = vec![g.heartbeat_ack(), g.hello(41_250), g.ready(3)];
        frames.extend((0..40).map(|_| g.busy_event()));
        let mut texts = render(&frames, KeyOrder::Discord);
        texts.extend(render(&frames[..10], KeyOrder::DataFirst));
        texts
    })
}

const BYTES: &[u8] = b"\"\\{}[],: 0-.eEntfu\n\x01a9/";

#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = proptest::sample::select(BYTES);
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let n = bytes.len().max(1);
        match *edit {
            Edit::Replace(i, b) if !bytes.is_empty() => bytes[i % n] = b,
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % n);
            }
            _ => {}
        }
    }
    String::from_utf8(bytes).ok()
}

fn compare(text: &str) -> Result<(), TestCaseError> {
    let strict = read_envelope(text);
    fuzz_bodies::check_envelope(text, strict);
    fuzz_bodies::check_salvage(text, strict);
    Ok(())
}

#[test]
fn undamaged_frames_agree() {
    for text in pool() {
        compare(text).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn damaged_frames_agree(which in any::<usize>(), edits in proptest::collection::vec(edit(), 1..4)) {
        let frames = pool();
        if let Some(text) = apply(&frames[which % frames.len()], &edits) {
            compare(&text)?;
        }
    }
}
