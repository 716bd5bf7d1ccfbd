//! The output queue: what the machine has decided and the driver has not yet taken.

use alloc::collections::VecDeque;
use alloc::string::String;
use core::ops::Range;

use super::GatewayMachine;
use crate::output::{CloseFrame, Dispatch, Event, Frame, MessageSpans, Output, OwnedDispatch};
use crate::protocol::opcode::OpCode;
use crate::protocol::payloads;

/// One queued output. Large or borrowed data stays in the machine; the queue holds
/// positions, so queuing a dispatch allocates nothing.
#[derive(Debug)]
pub(crate) enum Pending {
    /// Connect to `machine.url`.
    Connect,
    /// A heartbeat; its `d` is the sequence at the time it is handed out.
    Heartbeat,
    /// A frame built in advance (identify, resume, commands).
    Send { opcode: OpCode, text: String },
    /// Close the socket.
    Close(CloseFrame<'static>),
    /// An event that owns its data.
    Event(Event<'static>),
    /// `Event::Ready` with the machine's stored READY basics.
    Ready,
    /// A dispatch whose name and data are ranges of `machine.rx`.
    Dispatch {
        name: Range<usize>,
        sequence: u64,
        data: Range<usize>,
    },
    /// A dispatch copied out of `rx` (the driver did not drain before the next message).
    Spilled(OwnedDispatch),
}

/// The outputs not yet taken, oldest first. The oldest sits in a slot of its own, so that
/// the common case (one dispatch decided, then taken before the next message) never
/// touches the ring buffer behind it.
#[derive(Debug, Default)]
pub(crate) struct OutputQueue {
    /// The oldest output; `None` only when the queue is empty.
    oldest: Option<Pending>,
    /// The outputs after it.
    rest: VecDeque<Pending>,
}

impl OutputQueue {
    /// Adds `item` after all the others.
    #[inline]
    pub(crate) fn push_back(&mut self, item: Pending) {
        if self.oldest.is_none() {
            self.oldest = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    /// Takes the oldest output.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Pending> {
        // (Swapping, not assigning: the slot's old value needs no drop.)
        core::mem::replace(&mut self.oldest, self.rest.pop_front())
    }

    /// Takes the oldest output if it is a dispatch in `rx`: its name, sequence and data.
    #[inline]
    pub(crate) fn pop_dispatch(&mut self) -> Option<(Range<usize>, u64, Range<usize>)> {
        let Some(Pending::Dispatch {
            name,
            sequence,
            data,
        }) = &self.oldest
        else {
            return None;
        };
        // The fields are copied out where they lie: moving the whole entry out of the slot
        // (as `pop_front` does) costs a 64-byte copy on every dispatch.
        let taken = (name.clone(), *sequence, data.clone());
        let next = self.rest.pop_front();
        // The entry replaced is that dispatch, which owns no memory: forgetting it skips a
        // call to the drop glue of `Pending` on every dispatch, and leaks nothing.
        core::mem::forget(core::mem::replace(&mut self.oldest, next));
        Some(taken)
    }

    /// Whether no output is waiting.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.oldest.is_none()
    }

    /// The waiting outputs, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pending> {
        self.oldest.iter().chain(self.rest.iter())
    }

    /// The waiting outputs, oldest first, to modify in place.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Pending> {
        self.oldest.iter_mut().chain(self.rest.iter_mut())
    }

    /// Heap bytes held (the ring buffer's capacity; the slot is part of the machine).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.rest.capacity() * core::mem::size_of::<Pending>()
    }
}

/// The capacity the receive and send buffers keep across a heartbeat: a heartbeat, its ACK
/// and small messages fit without growing again.
const IDLE_BUFFER_BYTES: usize = 64;

impl GatewayMachine {
    /// Gives back the buffer space that a burst (READY, GUILD_CREATE, Identify) left behind,
    /// so that an idle machine stays small. Called once per heartbeat: a busy connection
    /// pays at most a few buffer re-grows per interval, never one per message.
    pub(crate) fn trim_buffers(&mut self) {
        // Dispatches still queued borrow `rx` (a driver that did not drain): keep it then.
        // A receive buffer whose last message, within this interval, was over
        // `RX_RETAIN` is in a run of large messages: it stays grown until they stop.
        let large_run =
            self.rx.len() > super::receive::RX_RETAIN && self.heartbeat.heard_since_beat();
        if !large_run
            && !self
                .queue
                .iter()
                .any(|item| matches!(item, Pending::Dispatch { .. }))
        {
            self.rx.clear();
            self.rx.shrink_to(IDLE_BUFFER_BYTES);
        }
        // Nothing borrows `tx` between calls; this also drops the last Identify's text.
        self.tx.clear();
        self.tx.shrink_to(IDLE_BUFFER_BYTES);
    }

    pub(crate) fn push_event(&mut self, event: Event<'static>) {
        self.queue.push_back(Pending::Event(event));
    }

    /// Before `rx` is overwritten: copy out any dispatch still pointing into it. Only happens
    /// when a driver breaks the drain rule; costs nothing otherwise.
    pub(crate) fn spill_pending_dispatches(&mut self) {
        for item in self.queue.iter_mut() {
            if let Pending::Dispatch {
                name,
                sequence,
                data,
            } = item
            {
                let owned = OwnedDispatch {
                    name: self.rx.get(name.clone()).unwrap_or_default().into(),
                    sequence: *sequence,
                    data: self.rx.get(data.clone()).unwrap_or_default().into(),
                };
                *item = Pending::Spilled(owned);
            }
        }
    }

    /// The dispatch event whose name and data are these ranges of `rx`.
    #[inline]
    pub(crate) fn dispatch_in_rx(
        &self,
        name: Range<usize>,
        sequence: u64,
        data: Range<usize>,
    ) -> Output<'_> {
        let spans = if self.rx_lent {
            MessageSpans::new(&name, &data)
        } else {
            None
        };
        Output::Event(Event::Dispatch(Dispatch {
            name: self.rx.get(name).unwrap_or_default(),
            sequence,
            data: self.rx.get(data).unwrap_or_default(),
            spans,
        }))
    }

    pub(crate) fn next_output(&mut self) -> Output<'_> {
        let Some(item) = self.queue.pop_front() else {
            return Output::Wait(self.poll_timeout());
        };
        match item {
            Pending::Connect => Output::Connect { url: &self.url },
            Pending::Heartbeat => {
                let seq = self.session.as_ref().map(|s| s.sequence);
                payloads::heartbeat(&mut self.tx, seq);
                Output::Send(Frame {
                    opcode: OpCode::Heartbeat,
                    text: &self.tx,
                })
            }
            Pending::Send { opcode, text } => {
                self.tx = text;
                Output::Send(Frame {
                    opcode,
                    text: &self.tx,
                })
            }
            Pending::Close(frame) => Output::Close(frame),
            Pending::Event(event) => Output::Event(event),
            Pending::Ready => match &self.ready {
                Some(info) => Output::Event(Event::Ready(info.clone())),
                None => self.next_output(),
            },
            Pending::Dispatch {
                name,
                sequence,
                data,
            } => self.dispatch_in_rx(name, sequence, data),
            Pending::Spilled(owned) => {
                let spilled = self.spilled.insert(owned);
                Output::Event(Event::Dispatch(Dispatch {
                    name: &spilled.name,
                    sequence: spilled.sequence,
                    data: &spilled.data,
                    spans: None,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch(sequence: u64) -> Pending {
        Pending::Dispatch {
            name: 0..1,
            sequence,
            data: 1..2,
        }
    }

    fn sequences(queue: &OutputQueue) -> alloc::vec::Vec<u64> {
        queue
            .iter()
            .map(|item| match item {
                Pending::Dispatch { sequence, .. } => *sequence,
                _ => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn outputs_leave_in_the_order_they_came_through_slot_and_ring() {
        let mut queue = OutputQueue::default();
        assert!(queue.is_empty());
        assert!(queue.pop_front().is_none());
        queue.push_back(dispatch(1));
        queue.push_back(Pending::Heartbeat);
        queue.push_back(dispatch(3));
        assert_eq!(sequences(&queue), [1, u64::MAX, 3]);
        assert_eq!(queue.pop_dispatch().map(|(_, s, _)| s), Some(1));
        // The oldest is now the heartbeat: not a dispatch, so it stays.
        assert!(queue.pop_dispatch().is_none());
        queue.push_back(dispatch(4));
        assert!(matches!(queue.pop_front(), Some(Pending::Heartbeat)));
        for item in queue.iter_mut() {
            if let Pending::Dispatch { sequence, .. } = item {
                *sequence += 10;
            }
        }
        assert_eq!(sequences(&queue), [13, 14]);
        assert_eq!(queue.pop_dispatch().map(|(_, s, _)| s), Some(13));
        assert_eq!(queue.pop_dispatch().map(|(_, s, _)| s), Some(14));
        assert!(queue.is_empty());
        assert!(queue.pop_front().is_none());
        // Empty again: the next output takes the slot.
        queue.push_back(dispatch(5));
        assert_eq!(
            queue.heap_bytes(),
            queue.rest.capacity() * core::mem::size_of::<Pending>()
        );
        assert_eq!(sequences(&queue), [5]);
    }
}
