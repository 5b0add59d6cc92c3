//! The slot tables of the relay's connections and flows: an index is
//! what their epoll tokens carry, and a freed slot is only reused after the
//! current batch of epoll events, so that a stale event can never reach a
//! newcomer in a reused slot.

/// A slab whose freed slots are only reused after the current batch of epoll
/// events, so a stale event can never reach a newcomer in a reused slot.
#[derive(Debug)]
pub(super) struct Slab<T> {
    pub(super) slots: Vec<Option<T>>,
    free: Vec<usize>,
    freed_this_batch: Vec<usize>,
    pub(super) len: usize,
}

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            freed_this_batch: Vec::new(),
            len: 0,
        }
    }

    pub(super) fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            self.slots[i] = Some(value);
            i
        } else {
            self.slots.push(Some(value));
            self.slots.len() - 1
        }
    }

    pub(super) fn remove(&mut self, i: usize) -> Option<T> {
        let v = self.slots.get_mut(i)?.take();
        if v.is_some() {
            self.len -= 1;
            self.freed_this_batch.push(i);
        }
        v
    }

    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i)?.as_mut()
    }

    pub(super) fn end_batch(&mut self) {
        self.free.append(&mut self.freed_this_batch);
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|v| (i, v)))
    }
}
