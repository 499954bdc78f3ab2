//! [`Chunked`]: an append-only array kept in chunks of a fixed size, so that it never
//! reallocates (issue 19, flat memory).
//!
//! Why: a `Vec` that grows copies itself into a larger block and frees the old one. For
//! the inventory's arrays (tens of thousands of records, disks and tag hashes, built while
//! the listing's pages come and go) each copy holds both blocks at once, and the allocator
//! keeps the freed ones. Sampled every 20 ms, the resident set of `amictl cleanup
//! --dry-run` over 50,000 images grew about 150 bytes an image while listing, for 80 bytes
//! of data, and 2.3 MiB at once between the 40,000th and the 45,000th image. A chunk is
//! allocated once at its final size and never moved or freed before the inventory is, so
//! what the arrays cost is what they hold, plus at most one chunk's unused room each.

/// About how many bytes a chunk holds: small enough that the last, partly filled chunk
/// costs little, large enough that the list of chunks stays short (50 chunks of records
/// at 50,000 images).
const CHUNK_BYTES: usize = 32 * 1024;

/// An append-only array in fixed-size chunks; reads as an indexed sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// Items per chunk: [`CHUNK_BYTES`] of them, at least one.
    const CHUNK: usize = {
        let size = std::mem::size_of::<T>();
        if size == 0 || size >= CHUNK_BYTES {
            1
        } else {
            CHUNK_BYTES / size
        }
    };

    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < Self::CHUNK => last.push(item),
            _ => {
                let mut chunk = Vec::with_capacity(Self::CHUNK);
                chunk.push(item);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks
            .get(index / Self::CHUNK)
            .and_then(|chunk| chunk.get(index % Self::CHUNK))
    }

    pub fn iter(&self) -> std::iter::Flatten<std::slice::Iter<'_, Vec<T>>> {
        self.chunks.iter().flatten()
    }

    /// The items from `start`, `count` of them (fewer where the array ends first).
    pub fn run(&self, start: usize, count: usize) -> impl Iterator<Item = &T> + '_ {
        (start..start.saturating_add(count)).map_while(move |i| self.get(i))
    }

    /// Gives back the unused room of the last chunk (the listing is done).
    pub fn shrink_to_fit(&mut self) {
        if let Some(last) = self.chunks.last_mut() {
            last.shrink_to_fit();
        }
        self.chunks.shrink_to_fit();
    }
}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        match self.get(index) {
            Some(item) => item,
            None => panic!("index {index} out of range for {} items", self.len),
        }
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_read_back_in_order_across_chunks_and_chunks_never_grow() {
        let mut a: Chunked<u64> = Chunked::default();
        let n = Chunked::<u64>::CHUNK * 2 + 7;
        for i in 0..n {
            a.push(i as u64 * 3);
        }
        assert_eq!(a.len(), n);
        assert_eq!(a.chunks.len(), 3);
        // Each full chunk was allocated once at its final size.
        assert!(a.chunks[..2]
            .iter()
            .all(|c| c.len() == Chunked::<u64>::CHUNK && c.capacity() == Chunked::<u64>::CHUNK));
        assert!(a.iter().copied().eq((0..n).map(|i| i as u64 * 3)));
        assert_eq!(a[Chunked::<u64>::CHUNK], Chunked::<u64>::CHUNK as u64 * 3);
        assert_eq!(a.get(n), None);
        let run: Vec<u64> = a.run(Chunked::<u64>::CHUNK - 1, 3).copied().collect();
        let start = Chunked::<u64>::CHUNK as u64 - 1;
        assert_eq!(run, [start * 3, (start + 1) * 3, (start + 2) * 3]);
        // A run past the end stops there.
        assert_eq!(a.run(n - 1, 5).count(), 1);
        a.shrink_to_fit();
        assert!(a.chunks[2].capacity() < Chunked::<u64>::CHUNK);
        assert_eq!(a.len(), n);
        assert_eq!((&a).into_iter().count(), n);
    }

    #[test]
    fn an_empty_array_reads_as_empty() {
        let a: Chunked<[u8; 40]> = Chunked::default();
        assert!(a.is_empty());
        assert_eq!(a.iter().count(), 0);
        assert_eq!(a.run(0, 2).count(), 0);
        assert_eq!(Chunked::<[u8; 40]>::CHUNK, CHUNK_BYTES / 40);
    }
}
