//! Files, with `std::fs`'s names and signatures, each operation run through
//! [`blocking`](crate::blocking) so a coroutine waiting on the disk frees its worker.
//!
//! On a plain thread every call simply runs in place, as `std::fs` would.
//! Buffers cross to the pool thread by copy (a read of at most [`MAX_CHUNK`]
//! bytes at a time), since the caller's buffer cannot be lent to another thread.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("corun-fs-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("hello.txt");
//! let p = path.clone();
//! let text = corun::spawn(move || {
//!     corun::fs::write(&p, "hello").unwrap();
//!     corun::fs::read_to_string(&p).unwrap()
//! })
//! .join()
//! .unwrap();
//! assert_eq!(text, "hello");
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::blocking::blocking;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

/// The most bytes one [`File`] read or write moves; `Read` and `Write` allow
/// shorter transfers, and `read_to_end` / `write_all` loop.
pub const MAX_CHUNK: usize = 1 << 20;

/// Reads a whole file into a vector, as [`std::fs::read`].
///
/// ```
/// let h = corun::spawn(|| corun::fs::read("/definitely/not/here").is_err());
/// assert!(h.join().unwrap());
/// ```
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::read(path))
}

/// Reads a whole file into a string, as [`std::fs::read_to_string`].
///
/// ```
/// let h = corun::spawn(|| corun::fs::read_to_string("/definitely/not/here").is_err());
/// assert!(h.join().unwrap());
/// ```
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::read_to_string(path))
}

/// Writes `contents` as the whole file, creating or truncating it, as
/// [`std::fs::write`].
///
/// ```
/// let p = std::env::temp_dir().join(format!("corun-fs-write-{}", std::process::id()));
/// let q = p.clone();
/// corun::spawn(move || corun::fs::write(&q, [1u8, 2, 3]).unwrap()).join().unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), [1, 2, 3]);
/// std::fs::remove_file(&p).unwrap();
/// ```
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_vec();
    blocking(move || std::fs::write(path, contents))
}

/// An open file whose operations run on the blocking pool. It implements
/// [`Read`], [`Write`] and [`Seek`] (also for `&File`), so `BufReader`,
/// `BufWriter` and `io::copy` work with it.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// let p = std::env::temp_dir().join(format!("corun-fs-file-{}", std::process::id()));
/// let q = p.clone();
/// let got = corun::spawn(move || {
///     let mut f = corun::fs::File::create(&q).unwrap();
///     f.write_all(b"coroutines").unwrap();
///     f.sync_all().unwrap();
///     let mut f = corun::fs::File::open(&q).unwrap();
///     f.seek(SeekFrom::Start(4)).unwrap();
///     let mut s = String::new();
///     f.read_to_string(&mut s).unwrap();
///     s
/// })
/// .join()
/// .unwrap();
/// assert_eq!(got, "utines");
/// std::fs::remove_file(&p).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct File {
    inner: Arc<std::fs::File>,
}

impl File {
    /// Opens a file for reading, as [`std::fs::File::open`].
    ///
    /// ```
    /// let h = corun::spawn(|| corun::fs::File::open("/definitely/not/here").is_err());
    /// assert!(h.join().unwrap());
    /// ```
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        let path = path.as_ref().to_owned();
        blocking(move || std::fs::File::open(path)).map(File::from)
    }

    /// Opens a file for writing, creating or truncating it, as
    /// [`std::fs::File::create`].
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("corun-fs-create-{}", std::process::id()));
    /// let q = p.clone();
    /// corun::spawn(move || corun::fs::File::create(&q).unwrap()).join().unwrap();
    /// assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        let path = path.as_ref().to_owned();
        blocking(move || std::fs::File::create(path)).map(File::from)
    }

    /// Flushes data and metadata to the device, as [`std::fs::File::sync_all`].
    ///
    /// ```
    /// let f = corun::fs::File::from(tempfile_like());
    /// f.sync_all().unwrap();
    /// # fn tempfile_like() -> std::fs::File {
    /// #     let p = std::env::temp_dir().join(format!("corun-fs-sync-{}", std::process::id()));
    /// #     let f = std::fs::File::create(&p).unwrap();
    /// #     std::fs::remove_file(&p).unwrap();
    /// #     f
    /// # }
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        let f = self.inner.clone();
        blocking(move || f.sync_all())
    }

    /// The file's metadata, as [`std::fs::File::metadata`].
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("corun-fs-meta-{}", std::process::id()));
    /// std::fs::write(&p, "abc").unwrap();
    /// let f = corun::fs::File::open(&p).unwrap();
    /// assert_eq!(f.metadata().unwrap().len(), 3);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let f = self.inner.clone();
        blocking(move || f.metadata())
    }

    /// Truncates or extends the file, as [`std::fs::File::set_len`].
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("corun-fs-len-{}", std::process::id()));
    /// let f = corun::fs::File::create(&p).unwrap();
    /// f.set_len(10).unwrap();
    /// assert_eq!(f.metadata().unwrap().len(), 10);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        let f = self.inner.clone();
        blocking(move || f.set_len(size))
    }

    fn read_op(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let f = self.inner.clone();
        let len = buf.len().min(MAX_CHUNK);
        let (n, data) = blocking(move || {
            let mut data = vec![0u8; len];
            (&*f).read(&mut data).map(|n| (n, data))
        })?;
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn write_op(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let f = self.inner.clone();
        let data = buf[..buf.len().min(MAX_CHUNK)].to_vec();
        blocking(move || (&*f).write(&data))
    }

    fn seek_op(&self, pos: SeekFrom) -> io::Result<u64> {
        let f = self.inner.clone();
        blocking(move || (&*f).seek(pos))
    }
}

impl From<std::fs::File> for File {
    /// Wraps a std file.
    fn from(f: std::fs::File) -> File {
        File { inner: Arc::new(f) }
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_op(buf)
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_op(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_op(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // std's File has no buffer either
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_op(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek_op(pos)
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek_op(pos)
    }
}
